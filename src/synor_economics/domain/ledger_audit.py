"""Verifies every ledger invariant over a stored ledger, from first principles.

The auditor replays the stored transfers in sequence order, rebuilding every balance from zero,
and compares what it derives with what storage says: a tampered, truncated or inconsistent ledger
shows up as violations, each naming the transfer or account and what is wrong. It streams, so it
keeps per-account totals and one small digest per transfer, not the transfers themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from synor_economics.domain.ledger import (
    AccountSpec,
    Balance,
    Entry,
    EntryRecord,
    PostPending,
    Reverse,
    Side,
    Transfer,
    TransferKind,
    TransferRecord,
    VoidPending,
    fingerprint,
    move_balance,
)

_MAX_LISTED = 100
"""Violations listed in full; the count goes on past it."""


@dataclass(frozen=True, slots=True)
class Violation:
    code: str
    where: str
    detail: str


@dataclass(slots=True)
class AuditReport:
    transfers: int = 0
    entries: int = 0
    accounts: int = 0
    total_debits: int = 0
    total_credits: int = 0
    violations: list[Violation] = field(default_factory=list)
    violation_count: int = 0

    @property
    def ok(self) -> bool:
        return self.violation_count == 0

    def add(self, code: str, where: str, detail: str) -> None:
        self.violation_count += 1
        if len(self.violations) < _MAX_LISTED:
            self.violations.append(Violation(code, where, detail))


def _command_of(record: TransferRecord) -> Transfer | PostPending | VoidPending | Reverse:
    """Rebuild the command a record was made from, to recompute its fingerprint."""
    ref = record.ref or ""
    if record.kind in (TransferKind.POSTED, TransferKind.PENDING):
        return Transfer(
            record.id,
            record.entries,
            pending=record.kind is TransferKind.PENDING,
            code=record.code,
            memo=record.memo,
        )
    if record.kind is TransferKind.POST_PENDING:
        return PostPending(record.id, ref, record.memo)
    if record.kind is TransferKind.VOID_PENDING:
        return VoidPending(record.id, ref, record.memo)
    return Reverse(record.id, ref, record.memo)


def _entries_key(entries: tuple[Entry, ...]) -> int:
    return hash(entries)


class LedgerAuditor:
    """Feed it accounts, then transfers in sequence order; ``finish`` returns the report."""

    def __init__(self, accounts: Mapping[str, tuple[AccountSpec, Balance]]) -> None:
        self.specs = {account_id: spec for account_id, (spec, _) in accounts.items()}
        self.stored = {account_id: balance for account_id, (_, balance) in accounts.items()}
        self.replayed = {account_id: Balance() for account_id in accounts}
        self.report = AuditReport(accounts=len(accounts))
        self.seen: dict[str, tuple[TransferKind, int]] = {}
        self.resolved: set[str] = set()
        self.last_seq = 0
        self.last_ts = 0

    def feed(self, record: TransferRecord, entries: tuple[EntryRecord, ...]) -> None:
        report, where = self.report, f"transfer {record.id} (seq {record.seq})"
        report.transfers += 1
        report.entries += len(entries)
        self._check_order(record, where)
        if fingerprint(_command_of(record)) != record.fingerprint:
            report.add("fingerprint", where, "stored body does not match its fingerprint")
        self._check_balanced(record, where)
        self._check_reference(record, where)
        known = [e for e in entries if e.account in self.specs]
        if len(known) != len(entries):
            report.add("unknown_account", where, "an entry names an account that does not exist")
        before = {e.account: self.replayed[e.account].copy() for e in known}
        for entry in known:
            balance = self.replayed[entry.account]
            move_balance(balance, Entry(entry.account, entry.side, entry.amount), record.kind)
            if balance.net != entry.balance_after:
                report.add(
                    "running_balance",
                    f"{where} leg {entry.leg}",
                    f"{entry.account} balance_after {entry.balance_after} "
                    f"!= replayed {balance.net}",
                )
        self._check_floors(before, record.kind, where)
        self.seen[record.id] = (record.kind, _entries_key(record.entries))

    def _check_order(self, record: TransferRecord, where: str) -> None:
        if record.seq != self.last_seq + 1:
            self.report.add("sequence_gap", where, f"expected seq {self.last_seq + 1}")
        if record.ts_us <= self.last_ts:
            self.report.add("timestamp_order", where, "timestamp does not increase")
        self.last_seq, self.last_ts = record.seq, record.ts_us
        if record.id in self.seen:
            self.report.add("duplicate_id", where, "transfer id appears twice")

    def _check_balanced(self, record: TransferRecord, where: str) -> None:
        debits = sum(e.amount for e in record.entries if e.side is Side.DEBIT)
        credits = sum(e.amount for e in record.entries if e.side is Side.CREDIT)
        if any(e.amount <= 0 for e in record.entries):
            self.report.add("invalid_amount", where, "an entry amount is not positive")
        if debits != credits or debits == 0:
            self.report.add("unbalanced", where, f"debits {debits} != credits {credits}")
        self.report.total_debits += debits
        self.report.total_credits += credits

    def _check_reference(self, record: TransferRecord, where: str) -> None:
        if record.kind in (TransferKind.POSTED, TransferKind.PENDING):
            if record.ref is not None:
                self.report.add("reference", where, "a plain transfer refers to another")
            return
        target = self.seen.get(record.ref or "")
        if target is None:
            self.report.add("reference", where, f"refers to unknown or later transfer {record.ref}")
            return
        kind, entries_key = target
        if record.ref in self.resolved:
            self.report.add("resolved_twice", where, f"{record.ref} is resolved or reversed twice")
        self.resolved.add(record.ref or "")
        expected_kinds = (
            (TransferKind.POSTED, TransferKind.POST_PENDING)
            if record.kind is TransferKind.REVERSAL
            else (TransferKind.PENDING,)
        )
        if kind not in expected_kinds:
            self.report.add("reference", where, f"{record.kind} of a {kind} transfer")
        expected = record.entries
        if record.kind is TransferKind.REVERSAL:
            expected = tuple(Entry(e.account, e.side.opposite, e.amount) for e in record.entries)
        if _entries_key(expected) != entries_key:
            self.report.add("reference", where, f"entries do not match those of {record.ref}")

    def _check_floors(self, before: Mapping[str, Balance], kind: TransferKind, where: str) -> None:
        if kind is TransferKind.VOID_PENDING:
            return
        for account_id, old in before.items():
            spec = self.specs[account_id]
            if spec.floor is None:
                continue
            after = self.replayed[account_id].available(spec.normal)
            if after < spec.floor and after < old.available(spec.normal):
                self.report.add("floor", where, f"{account_id} fell to {after}, below {spec.floor}")

    def finish(self) -> AuditReport:
        """Compare replayed balances with stored ones and close the report."""
        for account_id, stored in self.stored.items():
            replayed = self.replayed[account_id]
            if stored != replayed:
                self.report.add(
                    "stored_balance",
                    f"account {account_id}",
                    f"stored {_totals(stored)} != replayed from entries {_totals(replayed)}",
                )
        if self.report.total_debits != self.report.total_credits:
            self.report.add(
                "trial_balance",
                "ledger",
                f"debits {self.report.total_debits} != credits {self.report.total_credits}",
            )
        return self.report


def _totals(balance: Balance) -> str:
    return (
        f"(debits {balance.debits_posted}, credits {balance.credits_posted}, pending debits "
        f"{balance.debits_pending}, pending credits {balance.credits_pending})"
    )


def audit(
    accounts: Mapping[str, tuple[AccountSpec, Balance]],
    transfers: Iterable[tuple[TransferRecord, tuple[EntryRecord, ...]]],
) -> AuditReport:
    """Audit a whole ledger: accounts with their stored balances, and transfers in seq order."""
    auditor = LedgerAuditor(accounts)
    for record, entries in transfers:
        auditor.feed(record, entries)
    return auditor.finish()
