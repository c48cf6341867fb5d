"""The ledger use cases: open accounts, post transfers (one or a batch), read balances, audit.

:func:`apply_commands` is the one way money moves. It runs inside a caller's write transaction,
so a later use case (finalising an invoice) posts its transfers atomically with its own writes;
:class:`LedgerService` wraps it in a transaction of its own for callers that only move money.
"""

from __future__ import annotations

import threading
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
    LedgerMachine,
    Outcome,
    Rejected,
    Side,
    TransferRecord,
    WorkingSet,
    accounts_named,
    referenced_id,
)
from synor_economics.domain.ledger_audit import AuditReport, audit
from synor_economics.ports import Clock, LedgerRepository, UnitOfWork
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


class AccountCache:
    """Accounts with their balances as of ledger sequence ``seq``, kept between one process's
    write transactions so a batch need not reload the accounts the previous batch touched.

    It is used only when the ledger's head is still ``seq`` inside the next write transaction
    (writers are serialised), i.e. nobody else has moved money since; otherwise it is ignored.
    Balances change only through transfers, which always advance the head, and account specs
    never change, so the head is a complete version of what is cached.
    """

    LIMIT = 250_000
    """Most accounts kept: beyond it the cache starts over, bounding memory."""

    def __init__(self) -> None:
        self.seq = -1
        self.accounts: dict[str, Account] = {}

    def valid_at(self, head_seq: int) -> dict[str, Account]:
        """The cached accounts if the ledger is still at ``seq``; otherwise every one of them
        may be stale, so the cache is emptied (and refilled by ``absorb``)."""
        if head_seq != self.seq:
            self.accounts = {}
        return self.accounts

    def absorb(self, accounts: dict[str, Account], seq: int) -> None:
        if len(self.accounts) + len(accounts) > self.LIMIT:
            self.accounts = {}
        self.accounts.update(accounts)
        self.seq = seq


def apply_commands(
    repo: LedgerRepository, commands: Sequence[Command], now_us: int
) -> list[Outcome]:
    """Apply commands in order inside the caller's write transaction; one outcome each.

    Each command is all-or-nothing on its own: a refused one leaves no trace and does not stop
    the others. Loads only what the batch touches, then writes it back in bulk.
    """
    return _apply(repo, commands, now_us, AccountCache())[0]


def _apply(
    repo: LedgerRepository, commands: Sequence[Command], now_us: int, cache: AccountCache
) -> tuple[list[Outcome], WorkingSet]:
    if not commands:
        return [], WorkingSet({}, {}, set(), -1, 0)
    ids = {c.id for c in commands}
    refs = {r for c in commands if (r := referenced_id(c)) is not None}
    known = repo.transfers(ids | refs)
    names = {a for c in commands for a in accounts_named(c)}
    names.update(e.account for r in refs if r in known for e in known[r].entries)
    last_seq, last_ts = repo.head()
    cached = cache.valid_at(last_seq)
    accounts = {name: cached[name] for name in names if name in cached}
    if len(accounts) < len(names):
        accounts.update(repo.accounts(names - accounts.keys()))
    working = WorkingSet(
        accounts=accounts,
        known=known,
        resolved=repo.resolved(refs),
        last_seq=last_seq,
        last_ts_us=last_ts,
    )
    outcomes = LedgerMachine(working).apply_all(commands, now_us)
    repo.append([o for o in outcomes if isinstance(o, Applied)], accounts)
    repo.save_balances([accounts[a] for a in sorted(working.touched)])
    return outcomes, working


def open_accounts(
    repo: LedgerRepository, specs: Sequence[AccountSpec], now_us: int
) -> list[Account]:
    """Open accounts inside the caller's transaction; re-opening an identical spec is a no-op."""
    for spec in specs:
        spec.validate()
    existing = repo.accounts({s.id for s in specs})
    opened: list[Account] = []
    for spec in specs:
        found = existing.get(spec.id)
        if found is None:
            found = repo.add_account(spec, now_us)
            existing[spec.id] = found
        elif found.spec != spec:
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
        self._cache = AccountCache()
        self._writing = threading.Lock()
        """Serialises this process's writers; the database serialises processes."""

    def open_accounts(self, specs: Sequence[AccountSpec]) -> list[AccountView]:
        with self.uow.write() as tx:
            opened = open_accounts(tx.ledger, specs, to_us(self.clock.now()))
        return [AccountView(a.spec, a.balance) for a in opened]

    def post_batch(self, commands: Sequence[Command]) -> list[Outcome]:
        """Apply a batch in one transaction: per-command outcomes, one commit."""
        with self._writing:
            cache, self._cache = self._cache, AccountCache()  # a failed batch leaves it empty
            with self.uow.write() as tx:
                outcomes, working = _apply(tx.ledger, commands, to_us(self.clock.now()), cache)
            if working.last_seq >= 0:
                cache.absorb(working.accounts, working.last_seq)
            self._cache = cache
        return outcomes

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
