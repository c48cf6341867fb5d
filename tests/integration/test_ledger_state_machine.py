"""Random operation sequences against the real stores (Hypothesis state machines).

A small reference model, written independently of the ledger machine, predicts every outcome
and balance. After every step: debits equal credits, floors hold, the store agrees with the
model, and replays change nothing. At the end ``check()`` audits the stored ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.memory.ledger import MemoryUnitOfWork
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.domain.ledger import (
    AccountKind,
    AccountSpec,
    Command,
    Duplicate,
    Entry,
    PostPending,
    Reverse,
    Side,
    Transfer,
    VoidPending,
)
from synor_economics.services.ledger import LedgerService
from tests.conftest import migrated_engine

SPECS = [
    AccountSpec.of("prepaid:a", AccountKind.CUSTOMER_PREPAID),
    AccountSpec.of("prepaid:b", AccountKind.CUSTOMER_PREPAID),
    AccountSpec.of("receivable:a", AccountKind.CUSTOMER_RECEIVABLE),
    AccountSpec.of("revenue:compute", AccountKind.REVENUE),
    AccountSpec.of("clearing", AccountKind.CHAIN_CLEARING),
]
NAMES = [s.id for s in SPECS]
FLOORS = {s.id: s.floor for s in SPECS if s.floor is not None}
NORMAL = {s.id: s.normal for s in SPECS}
IDS = st.sampled_from([f"t{i}" for i in range(12)])


@dataclass
class Model:
    """What the ledger should hold: posted net, pending debits/credits, transfers by id."""

    net: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NAMES, 0))
    pend_debit: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NAMES, 0))
    pend_credit: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NAMES, 0))
    sent: dict[str, Command] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    entries: dict[str, tuple[Entry, ...]] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)

    def available(self, account: str) -> int:
        if NORMAL[account] is Side.DEBIT:
            return self.net[account] - self.pend_credit[account]
        return -self.net[account] - self.pend_debit[account]

    def expect(self, command: Command) -> str:
        """Predict the outcome class and apply it to the model."""
        if command.id in self.sent:
            return "Duplicate" if self.sent[command.id] == command else "Rejected"
        plan = self._plan(command)
        if plan is None:
            return "Rejected"
        kind, entries = plan
        saved = (dict(self.net), dict(self.pend_debit), dict(self.pend_credit))
        before = {a: self.available(a) for a in FLOORS}
        self._move(kind, entries)
        if kind != "void":
            for account, floor in FLOORS.items():
                if self.available(account) < floor and self.available(account) < before[account]:
                    self.net, self.pend_debit, self.pend_credit = saved
                    return "Rejected"
        self.sent[command.id] = command
        self.kinds[command.id] = kind
        self.entries[command.id] = entries
        ref = getattr(command, "pending_id", None) or getattr(command, "transfer_id", None)
        if ref is not None:
            self.resolved.add(ref)
        return "Applied"

    def _plan(self, command: Command) -> tuple[str, tuple[Entry, ...]] | None:
        if isinstance(command, Transfer):
            return ("pending" if command.pending else "posted"), command.entries
        if isinstance(command, PostPending | VoidPending):
            target = command.pending_id
            if self.kinds.get(target) != "pending" or target in self.resolved:
                return None
            return ("post" if isinstance(command, PostPending) else "void"), self.entries[target]
        target = command.transfer_id
        if self.kinds.get(target) not in ("posted", "post", "reversal") or target in self.resolved:
            return None
        if self.kinds[target] == "reversal":
            return None
        flipped = tuple(Entry(e.account, e.side.opposite, e.amount) for e in self.entries[target])
        return "reversal", flipped

    def _move(self, kind: str, entries: tuple[Entry, ...]) -> None:
        for e in entries:
            sign = 1 if e.side is Side.DEBIT else -1
            pending = self.pend_debit if e.side is Side.DEBIT else self.pend_credit
            if kind == "pending":
                pending[e.account] += e.amount
                continue
            if kind in ("post", "void"):
                pending[e.account] -= e.amount
                if kind == "void":
                    continue
            self.net[e.account] += sign * e.amount


class LedgerMachineTest(RuleBasedStateMachine):
    make_uow: Callable[[], tuple[Any, Callable[[], None]]]

    def __init__(self) -> None:
        super().__init__()
        uow, self._cleanup = type(self).make_uow()
        self.ledger = LedgerService(uow, FixedClock(datetime(2026, 11, 1, tzinfo=UTC)))
        self.ledger.open_accounts(SPECS)
        self.model = Model()

    def teardown(self) -> None:
        try:
            report = self.ledger.check()
            assert report.ok, report.violations
        finally:
            self._cleanup()

    def _send(self, commands: list[Command]) -> None:
        expected = [self.model.expect(c) for c in commands]
        outcomes = self.ledger.post_batch(commands)
        assert [type(o).__name__ for o in outcomes] == expected, (commands, outcomes)

    @rule(
        transfer_id=IDS,
        debit=st.sampled_from(NAMES),
        credit=st.sampled_from(NAMES),
        amount=st.integers(1, 50),
        pending=st.booleans(),
    )
    def transfer(
        self, transfer_id: str, debit: str, credit: str, amount: int, pending: bool
    ) -> None:
        self._send(
            [
                Transfer.between(
                    transfer_id, debit=debit, credit=credit, amount=amount, pending=pending
                )
            ]
        )

    @rule(transfer_id=IDS, amounts=st.lists(st.integers(1, 30), min_size=2, max_size=3))
    def multi_leg(self, transfer_id: str, amounts: list[int]) -> None:
        credited = zip(["prepaid:a", "prepaid:b", "revenue:compute"], amounts, strict=False)
        entries = (
            Entry("clearing", Side.DEBIT, sum(amounts)),
            *(Entry(account, Side.CREDIT, amount) for account, amount in credited),
        )
        self._send([Transfer(transfer_id, entries)])

    @rule(transfer_id=IDS, pending_id=IDS, post=st.booleans())
    def resolve(self, transfer_id: str, pending_id: str, post: bool) -> None:
        command = (
            PostPending(transfer_id, pending_id) if post else VoidPending(transfer_id, pending_id)
        )
        self._send([command])

    @rule(transfer_id=IDS, reversed_id=IDS)
    def reverse(self, transfer_id: str, reversed_id: str) -> None:
        self._send([Reverse(transfer_id, reversed_id)])

    @precondition(lambda self: bool(self.model.sent))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        command = data.draw(st.sampled_from(sorted(self.model.sent.values(), key=lambda c: c.id)))
        before = {v.spec.id: v.balance for v in self.ledger.balances()}
        (outcome,) = self.ledger.post_batch([command])
        assert isinstance(outcome, Duplicate)
        assert {v.spec.id: v.balance for v in self.ledger.balances()} == before

    @rule(
        batch=st.lists(
            st.tuples(IDS, st.sampled_from(NAMES), st.sampled_from(NAMES), st.integers(1, 40)),
            min_size=2,
            max_size=6,
        )
    )
    def batch(self, batch: list[tuple[str, str, str, int]]) -> None:
        self._send([Transfer.between(i, debit=d, credit=c, amount=a) for i, d, c, a in batch])

    @invariant()
    def agrees_with_the_model(self) -> None:
        views = {v.spec.id: v for v in self.ledger.balances()}
        assert sum(v.balance.net for v in views.values()) == 0
        for account, floor in FLOORS.items():
            assert views[account].available >= floor
        assert {a: views[a].balance.net for a in NAMES} == self.model.net
        assert {a: views[a].balance.debits_pending for a in NAMES} == self.model.pend_debit
        assert {a: views[a].balance.credits_pending for a in NAMES} == self.model.pend_credit


def _run(make_uow: Callable[[], tuple[Any, Callable[[], None]]], examples: int) -> None:
    machine: Any = type("Machine", (LedgerMachineTest,), {"make_uow": staticmethod(make_uow)})
    machine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()


def test_memory_store_random_sequences() -> None:
    _run(lambda: (MemoryUnitOfWork(), lambda: None), examples=150)


def test_sqlite_store_random_sequences(tmp_path: Path) -> None:
    counter = iter(range(10**6))

    def make() -> tuple[Any, Callable[[], None]]:
        engine = migrated_engine(f"sqlite:///{tmp_path / f'ledger-{next(counter)}.db'}")
        return SqlUnitOfWork(engine), engine.dispose

    _run(make, examples=40)


@pytest.mark.postgres
def test_postgres_store_random_sequences(postgres_url: str) -> None:
    from sqlalchemy import text

    def make() -> tuple[Any, Callable[[], None]]:
        engine = migrated_engine(postgres_url)

        def reset() -> None:
            # Each example starts from an empty schema; dropping it is how a DBA would, since
            # the immutability triggers rightly refuse DELETE and TRUNCATE.
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()

        return SqlUnitOfWork(engine), reset

    _run(make, examples=15)
