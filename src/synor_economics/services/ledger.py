"""The ledger use cases: open accounts, post transfers (one or a batch), read balances, audit.

Money moves in one of two ways, both in ``posting.py``: :func:`apply_commands` inside a caller's
write transaction, so a later use case (finalising an invoice) posts its transfers atomically with
its own writes; and :meth:`LedgerService.post_batch`, a transaction of its own per batch, through
the posting pipeline that overlaps one batch's storage with the next batch's preparation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from synor_economics.domain.errors import LedgerError
from synor_economics.domain.ledger import (
    Account,
    AccountKind,
    AccountSpec,
    Applied,
    Balance,
    Command,
    Duplicate,
    EntryRecord,
    Outcome,
    Rejected,
    Side,
    TransferRecord,
)
from synor_economics.domain.ledger_audit import AuditReport, audit
from synor_economics.ports import Clock, LedgerRepository, UnitOfWork
from synor_economics.services.posting import PostingPipeline
from synor_economics.services.time import to_us


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account and its balances as a reader sees them (normal-side figures)."""

    spec: AccountSpec
    balance: Balance

    @property
    def posted(self) -> int:
        return self.balance.posted(self.spec.normal)

    @property
    def available(self) -> int:
        return self.balance.available(self.spec.normal)

    @property
    def pending_in(self) -> int:
        b = self.balance
        return b.debits_pending if self.spec.normal is Side.DEBIT else b.credits_pending

    @property
    def pending_out(self) -> int:
        b = self.balance
        return b.credits_pending if self.spec.normal is Side.DEBIT else b.debits_pending


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One entry of an account's statement, with the transfer it belongs to."""

    transfer: TransferRecord
    entry: EntryRecord
    normal: Side

    @property
    def balance_after(self) -> int:
        """The posted balance on the account's normal side right after this entry."""
        net = self.entry.balance_after
        return net if self.normal is Side.DEBIT else -net


def open_accounts(
    repo: LedgerRepository, specs: Sequence[AccountSpec], now_us: int
) -> list[Account]:
    """Open accounts inside the caller's transaction; re-opening an identical spec is a no-op."""
    for spec in specs:
        spec.validate()
    existing = repo.accounts({s.id for s in specs})
    fresh = {s.id: s for s in specs if s.id not in existing}
    existing.update(repo.add_accounts(list(fresh.values()), now_us))
    opened: list[Account] = []
    for spec in specs:
        found = existing[spec.id]
        if found.spec != spec:
            raise LedgerError(
                "account_conflict",
                f"account {spec.id} exists as {found.spec}; it cannot be reopened as {spec}",
            )
        opened.append(found)
    return opened


class LedgerService:
    """Ledger use cases in transactions of their own."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock
        self._pipeline = PostingPipeline(uow, clock)

    def open_accounts(self, specs: Sequence[AccountSpec]) -> list[AccountView]:
        with self.uow.write() as tx:
            opened = open_accounts(tx.ledger, specs, to_us(self.clock.now()))
        return [AccountView(a.spec, a.balance) for a in opened]

    def post_batch(self, commands: Sequence[Command]) -> list[Outcome]:
        """Apply a batch in one transaction: per-command outcomes, returned once it is durable.
        Concurrent callers overlap (see ``posting.py``): one batch is stored while the next is
        worked out."""
        if not commands:
            return []
        return self._pipeline.post(commands)

    @property
    def in_flight(self) -> int:
        """Batches being stored right now (prepared, not yet durable)."""
        return self._pipeline.in_flight

    def close(self) -> None:
        self._pipeline.close()

    def post(self, command: Command) -> TransferRecord:
        """Apply one command; return its record (also for a replay). Raise if refused."""
        (outcome,) = self.post_batch([command])
        if isinstance(outcome, Rejected):
            raise outcome.error
        assert isinstance(outcome, Applied | Duplicate)
        return outcome.record

    def account(self, account_id: str, *, as_of: datetime | None = None) -> AccountView:
        views = self._views({account_id}, as_of)
        if not views:
            raise LedgerError("unknown_account", f"account {account_id} does not exist")
        return views[0]

    def balances(
        self, *, as_of: datetime | None = None, kind: AccountKind | None = None
    ) -> list[AccountView]:
        """Every account (of one kind, if given) with its balance now, or its posted balance
        as of a time."""
        views = self._views(None, as_of)
        return views if kind is None else [v for v in views if v.spec.kind is kind]

    def _views(self, only: set[str] | None, as_of: datetime | None) -> list[AccountView]:
        with self.uow.read() as tx:
            repo = tx.ledger
            accounts = list(repo.accounts(only).values()) if only else repo.all_accounts()
            if as_of is None:
                return [AccountView(a.spec, a.balance) for a in accounts]
            net = repo.net_as_of(repo.last_seq_at(to_us(as_of)))
        return [AccountView(a.spec, _posted_only(net.get(a.spec.id, 0))) for a in accounts]

    def transfer(self, transfer_id: str) -> TransferRecord:
        with self.uow.read() as tx:
            found = tx.ledger.transfers({transfer_id})
        if transfer_id not in found:
            raise LedgerError("not_found", f"transfer {transfer_id} does not exist")
        return found[transfer_id]

    def statement(
        self, account_id: str, *, limit: int = 100, before: tuple[int, int] | None = None
    ) -> list[StatementLine]:
        """An account's entries, newest first, ``limit`` at a time; the next page starts
        ``before`` the ``(seq, leg)`` of the last line seen (a transfer may touch an account on
        several legs, so the cursor needs both)."""
        view = self.account(account_id)
        with self.uow.read() as tx:
            rows = tx.ledger.entries_of(account_id, limit=limit, before=before)
        return [StatementLine(record, entry, view.spec.normal) for record, entry in rows]

    def check(self) -> AuditReport:
        """Verify every ledger invariant over what is stored (one consistent snapshot)."""
        with self.uow.read() as tx:
            repo = tx.ledger
            accounts = {a.spec.id: (a.spec, a.balance) for a in repo.all_accounts()}
            return audit(accounts, _history(repo))


def _posted_only(net: int) -> Balance:
    """A balance that holds only a posted net (what history records)."""
    return Balance(debits_posted=max(net, 0), credits_posted=max(-net, 0))


def _history(
    repo: LedgerRepository, chunk: int = 5000
) -> Iterator[tuple[TransferRecord, tuple[EntryRecord, ...]]]:
    after = 0
    while True:
        page = repo.history(after_seq=after, limit=chunk)
        if not page:
            return
        yield from page
        after = page[-1][0].seq
