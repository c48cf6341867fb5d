"""The double-entry ledger's rules: accounts, transfers, balances, and the state machine that
applies transfers (SPEC §7: every balance change is a transfer with an idempotency id).

The shape follows TigerBeetle's, adapted to journal entries:

* An **account** has a kind (what it is for), a normal side (debit for assets such as
  receivables, credit for liabilities and income such as prepaid balances and revenue) and an
  optional **floor**: its balance on the normal side may never go below it. A prepaid balance has
  floor 0, so a customer can never spend SYNOR they have not deposited.
* A **transfer** is a journal entry: one or more debit entries and one or more credit entries whose
  amounts must balance. Its id is chosen by the caller; re-sending the same id with the same body
  is a no-op, with a different body it is refused, and the first copy stands.
* **Two-phase transfers**: a pending transfer reserves the amounts (pending debits count against a
  floor at once); later exactly one ``post`` or ``void`` resolves it.
* Nothing is ever updated or deleted. A mistake is corrected by a **reversal**, a new transfer with
  the sides swapped that names the transfer it reverses; each transfer can be reversed once.

The ledger assigns every applied transfer a gapless sequence number and a strictly increasing
timestamp (microseconds), so sequence order is time order, and "balance as of T" is the running
balance after the last entry at or before T.

This module is pure: it works on an in-memory working set that a service loads from a repository,
mutates here, and writes back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from synor_economics.domain.errors import LedgerError

MAX_AMOUNT = 10**36 - 1
"""Largest amount of one entry: 10^18 SYNOR. Far above any supply, far below NUMERIC(78) limits."""

MAX_CODE = 100
"""Longest transfer code ("invoice.finalize"): a short machine-readable label."""

MAX_MEMO = 2000
"""Longest memo: a human note, not a document store."""

_ACCOUNT_ID = re.compile(r"[a-z0-9][a-z0-9_.:\-]{0,199}")
_TRANSFER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-/]{0,199}")
# Both are used with ``fullmatch``: "$" would also accept a trailing newline.


class Side(StrEnum):
    """Which side of an account an entry lands on."""

    DEBIT = "debit"
    CREDIT = "credit"

    @property
    def opposite(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


_DEBIT = Side.DEBIT
_CREDIT = Side.CREDIT


class AccountKind(StrEnum):
    """What an account is for. The kind fixes its normal side and default floor."""

    CUSTOMER_PREPAID = "customer_prepaid"
    CUSTOMER_RECEIVABLE = "customer_receivable"
    CREDIT_GRANTS = "credit_grants"
    REVENUE = "revenue"
    TREASURY = "treasury"
    BURN = "burn"
    OPERATOR_PAYABLE = "operator_payable"
    STAKER_POOL = "staker_pool"
    COMMUNITY_POOL = "community_pool"
    VALIDATORS = "validators"
    BREAKAGE = "breakage"
    CHAIN_CLEARING = "chain_clearing"
    EQUITY = "equity"


NORMAL_SIDE: Mapping[AccountKind, Side] = {
    # Assets: what customers owe us, and tokens we hold or have destroyed.
    AccountKind.CUSTOMER_RECEIVABLE: Side.DEBIT,
    AccountKind.TREASURY: Side.DEBIT,
    AccountKind.BURN: Side.DEBIT,
    AccountKind.CHAIN_CLEARING: Side.DEBIT,
    # Liabilities: what we owe customers (prepaid SYNOR, unspent grants) and the parties we pay.
    AccountKind.CUSTOMER_PREPAID: Side.CREDIT,
    AccountKind.CREDIT_GRANTS: Side.CREDIT,
    AccountKind.OPERATOR_PAYABLE: Side.CREDIT,
    AccountKind.STAKER_POOL: Side.CREDIT,
    AccountKind.COMMUNITY_POOL: Side.CREDIT,
    AccountKind.VALIDATORS: Side.CREDIT,
    # Income, and the other side of grants the protocol funds.
    AccountKind.REVENUE: Side.CREDIT,
    AccountKind.BREAKAGE: Side.CREDIT,
    AccountKind.EQUITY: Side.CREDIT,
}

DEFAULT_FLOOR: Mapping[AccountKind, int | None] = {
    AccountKind.CUSTOMER_PREPAID: 0,
    AccountKind.CREDIT_GRANTS: 0,
}
"""Floors a kind gets unless the account says otherwise: balances that must never go negative."""


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What an account is: opened once, never changed (re-opening the same spec is a no-op)."""

    id: str
    kind: AccountKind
    normal: Side
    floor: int | None = None
    owner: str = ""
    """Who the account belongs to: a customer account id, a service name, an operator id."""

    @staticmethod
    def of(
        id: str, kind: AccountKind, *, owner: str = "", floor: int | str | None = "default"
    ) -> AccountSpec:
        """An account spec with its kind's normal side and default floor."""
        chosen = DEFAULT_FLOOR.get(kind) if floor == "default" else floor
        assert not isinstance(chosen, str)
        return AccountSpec(id=id, kind=kind, normal=NORMAL_SIDE[kind], floor=chosen, owner=owner)

    def validate(self) -> None:
        if not isinstance(self.id, str) or not _ACCOUNT_ID.fullmatch(self.id):
            raise LedgerError(
                "invalid_account_id",
                f"account id {self.id!r} must be 1-200 chars of a-z 0-9 _ . : - (lowercase)",
            )
        if self.floor is not None and (
            isinstance(self.floor, bool) or not isinstance(self.floor, int)
        ):
            raise LedgerError("invalid_floor", f"floor of {self.id} must be an int of base units")


@dataclass(slots=True)
class Balance:
    """An account's running totals. ``net`` is posted debits − credits; the normal balance is
    that net seen from the account's normal side."""

    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    def copy(self) -> Balance:
        return Balance(
            self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending
        )

    @property
    def net(self) -> int:
        return self.debits_posted - self.credits_posted

    def posted(self, normal: Side) -> int:
        """The posted balance on the normal side."""
        return self.net if normal is Side.DEBIT else -self.net

    def available(self, normal: Side) -> int:
        """The posted balance less pending amounts leaving it: what a floor is checked against."""
        if normal is Side.DEBIT:
            return self.debits_posted - self.credits_posted - self.credits_pending
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(slots=True)
class Account:
    """An account with its balance, as the working set holds it. ``num`` is its storage key."""

    spec: AccountSpec
    num: int
    balance: Balance = field(default_factory=Balance)


class Entry(NamedTuple):
    """One side of a transfer: ``amount`` base units on ``side`` of ``account``.

    Entries and records are named tuples rather than frozen dataclasses: they are made by the
    hundred thousand per second on the posting path, and a tuple is several times cheaper.
    """

    account: str
    side: Side
    amount: int


class TransferKind(StrEnum):
    POSTED = "posted"
    PENDING = "pending"
    POST_PENDING = "post_pending"
    VOID_PENDING = "void_pending"
    REVERSAL = "reversal"


_POSTED_KIND = TransferKind.POSTED


@dataclass(frozen=True, slots=True)
class Transfer:
    """A request to move money: balanced entries, posted now or reserved as pending."""

    id: str
    entries: tuple[Entry, ...]
    pending: bool = False
    code: str = ""
    """What kind of movement this is ("invoice.finalize", "prepaid.deposit"): for reports."""
    memo: str = ""

    @staticmethod
    def between(
        id: str,
        *,
        debit: str,
        credit: str,
        amount: int,
        code: str = "",
        memo: str = "",
        pending: bool = False,
    ) -> Transfer:
        """The common two-entry transfer: ``amount`` from ``credit`` to ``debit``."""
        return Transfer(
            id=id,
            entries=(Entry(debit, Side.DEBIT, amount), Entry(credit, Side.CREDIT, amount)),
            pending=pending,
            code=code,
            memo=memo,
        )


@dataclass(frozen=True, slots=True)
class PostPending:
    """Resolve a pending transfer by posting it in full."""

    id: str
    pending_id: str
    memo: str = ""


@dataclass(frozen=True, slots=True)
class VoidPending:
    """Resolve a pending transfer by releasing its reservation."""

    id: str
    pending_id: str
    memo: str = ""


@dataclass(frozen=True, slots=True)
class Reverse:
    """Correct a posted transfer by a new one with the sides swapped."""

    id: str
    transfer_id: str
    memo: str = ""


Command = Transfer | PostPending | VoidPending | Reverse


class TransferRecord(NamedTuple):
    """A transfer as the ledger applied it: immutable, sequenced, timestamped."""

    seq: int
    id: str
    kind: TransferKind
    ts_us: int
    entries: tuple[Entry, ...]
    ref: str | None = None
    """The pending transfer a post/void resolves, or the transfer a reversal reverses."""
    code: str = ""
    memo: str = ""
    fingerprint: str = ""

    @property
    def amount(self) -> int:
        """The transfer's size: the sum of its debit entries."""
        return sum(e.amount for e in self.entries if e.side is Side.DEBIT)


class EntryRecord(NamedTuple):
    """An applied entry with the account's posted net (debits − credits) right after it."""

    seq: int
    leg: int
    account: str
    side: Side
    amount: int
    pending: bool
    balance_after: int


class Applied(NamedTuple):
    """The outcome of a command that changed the ledger.

    ``balances_after`` holds, per entry, the account's posted net (debits − credits) right after
    it: what storage keeps as each entry's running balance.
    """

    record: TransferRecord
    balances_after: tuple[int, ...]

    def entry_records(self) -> tuple[EntryRecord, ...]:
        record = self.record
        pending = record.kind is TransferKind.PENDING
        return tuple(
            EntryRecord(record.seq, leg, e.account, e.side, e.amount, pending, after)
            for leg, (e, after) in enumerate(zip(record.entries, self.balances_after, strict=True))
        )


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The command was applied before with the same body: nothing changed."""

    record: TransferRecord


@dataclass(frozen=True, slots=True)
class Rejected:
    """The command was refused; nothing changed."""

    id: str
    error: LedgerError


Outcome = Applied | Duplicate | Rejected


def fingerprint(command: Command) -> str:
    """A digest of a command's whole body, to tell a true retry from a clashing reuse of an id."""
    if isinstance(command, Transfer):
        kind = "pending" if command.pending else "posted"
        body = ";".join([f"{account},{side},{amount}" for account, side, amount in command.entries])
        # Free-text fields are length-prefixed so no split of "x|y" between them collides;
        # account ids, sides and amounts cannot contain the separators.
        code, memo = command.code, command.memo
        text = f"{kind}|{len(code)}:{code}|{len(memo)}:{memo}|{body}"
    elif isinstance(command, PostPending):
        text = f"post_pending|{command.pending_id}|{command.memo}"
    elif isinstance(command, VoidPending):
        text = f"void_pending|{command.pending_id}|{command.memo}"
    else:
        text = f"reversal|{command.transfer_id}|{command.memo}"
    # (Transfer ids cannot contain "|", so the memo, last, is unambiguous in these three.)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def referenced_id(command: Command) -> str | None:
    """The id of the earlier transfer a command acts on, if any."""
    if isinstance(command, PostPending | VoidPending):
        return command.pending_id
    if isinstance(command, Reverse):
        return command.transfer_id
    return None


def accounts_named(command: Command) -> Iterator[str]:
    if isinstance(command, Transfer):
        yield from (e.account for e in command.entries)


@dataclass(slots=True)
class WorkingSet:
    """The slice of the ledger a batch of commands needs, loaded by the service.

    ``known`` holds existing transfers by id (those the batch names or refers to); ``resolved``
    the ids of transfers already posted/voided/reversed (their ``ref`` targets).
    """

    accounts: dict[str, Account]
    known: dict[str, TransferRecord]
    resolved: set[str]
    last_seq: int
    last_ts_us: int
    touched: set[str] = field(default_factory=set)


class LedgerMachine:
    """Applies commands to a working set, one at a time, each all-or-nothing."""

    def __init__(self, working: WorkingSet) -> None:
        self.w = working

    def apply_all(self, commands: Iterable[Command], now_us: int) -> list[Outcome]:
        return [self.apply(command, now_us) for command in commands]

    def apply(self, command: Command, now_us: int) -> Outcome:
        digest = fingerprint(command)
        existing = self.w.known.get(command.id)
        if existing is not None:
            if existing.fingerprint == digest:
                return Duplicate(existing)
            return Rejected(
                command.id,
                LedgerError(
                    "id_conflict",
                    f"transfer {command.id} exists with a different body; the first copy stands",
                ),
            )
        try:
            kind, ref, entries = self._plan(command)
        except LedgerError as error:
            return Rejected(command.id, error)
        return self._commit(command, digest, now_us, kind=kind, ref=ref, entries=entries)

    def _plan(self, command: Command) -> tuple[TransferKind, str | None, tuple[Entry, ...]]:
        """Validate a command and work out the kind, reference and entries it writes."""
        _check_transfer_id(command.id)
        if not isinstance(command.memo, str) or len(command.memo) > MAX_MEMO:
            raise LedgerError("invalid_memo", f"memo must be text of at most {MAX_MEMO} characters")
        if isinstance(command, Transfer):
            if not isinstance(command.code, str) or len(command.code) > MAX_CODE:
                raise LedgerError(
                    "invalid_code", f"code must be text of at most {MAX_CODE} characters"
                )
            self._check_entries(command.entries)
            kind = TransferKind.PENDING if command.pending else TransferKind.POSTED
            return kind, None, command.entries
        target_id = referenced_id(command)
        assert target_id is not None
        target = self.w.known.get(target_id)
        if target is None:
            raise LedgerError("not_found", f"transfer {target_id} does not exist")
        if isinstance(command, PostPending | VoidPending):
            if target.kind is not TransferKind.PENDING:
                raise LedgerError("not_pending", f"transfer {target_id} is not a pending transfer")
            if target_id in self.w.resolved:
                raise LedgerError(
                    "already_resolved", f"pending transfer {target_id} is already resolved"
                )
            kind = (
                TransferKind.POST_PENDING
                if isinstance(command, PostPending)
                else TransferKind.VOID_PENDING
            )
            return kind, target_id, target.entries
        if target.kind not in (TransferKind.POSTED, TransferKind.POST_PENDING):
            raise LedgerError(
                "not_reversible", f"transfer {target_id} ({target.kind}) moved no posted money"
            )
        if target_id in self.w.resolved:
            raise LedgerError("already_reversed", f"transfer {target_id} is already reversed")
        swapped = tuple(Entry(e.account, e.side.opposite, e.amount) for e in target.entries)
        return TransferKind.REVERSAL, target_id, swapped

    def _check_entries(self, entries: tuple[Entry, ...]) -> None:
        if not entries:
            raise LedgerError("empty", "a transfer needs at least one debit and one credit entry")
        debits = credits = 0
        accounts = self.w.accounts
        for account, side, amount in entries:
            if type(amount) is not int:
                raise LedgerError(
                    "invalid_amount", f"amount for {account} must be an int of base units"
                )
            if amount <= 0 or amount > MAX_AMOUNT:
                raise LedgerError(
                    "invalid_amount",
                    f"amount for {account} must be between 1 and 10^36-1 base units",
                )
            if account not in accounts:
                raise LedgerError("unknown_account", f"account {account} does not exist")
            if side is _DEBIT:
                debits += amount
            elif side is _CREDIT:
                credits += amount
            else:
                raise LedgerError(
                    "invalid_side", f"entry side for {account} must be Side.DEBIT or Side.CREDIT"
                )
        if debits == 0 or credits == 0:
            raise LedgerError(
                "one_sided", "a transfer needs at least one debit and one credit entry"
            )
        if debits != credits:
            raise LedgerError("unbalanced", f"debits {debits} != credits {credits}")

    def _commit(
        self,
        command: Command,
        digest: str,
        now_us: int,
        *,
        kind: TransferKind,
        ref: str | None,
        entries: tuple[Entry, ...],
    ) -> Outcome:
        w = self.w
        accounts = w.accounts
        involved = [accounts[entry[0]] for entry in entries]
        nets = _move_all(involved, entries, kind)
        broken = None if kind is TransferKind.VOID_PENDING else _floor_breach(involved, entries)
        if broken is not None:
            _move_all(involved, entries, kind, undo=True)
            return Rejected(command.id, broken)
        w.last_seq += 1
        w.last_ts_us = max(now_us, w.last_ts_us + 1)
        code = command.code if type(command) is Transfer else ""
        record = TransferRecord(
            w.last_seq, command.id, kind, w.last_ts_us, entries, ref, code, command.memo, digest
        )
        w.known[command.id] = record
        if ref is not None:
            w.resolved.add(ref)
        touched = w.touched
        for entry in entries:
            touched.add(entry[0])
        return Applied(record, nets)


def _move_all(
    involved: list[Account], entries: tuple[Entry, ...], kind: TransferKind, *, undo: bool = False
) -> tuple[int, ...]:
    """Move every entry's account, leg by leg; return each account's posted net right after its
    leg (an account on two legs shows two running figures).

    Plain posted transfers, nearly all of them, take an inline path: this loop runs for every
    entry the ledger ever posts.
    """
    if kind is not _POSTED_KIND or undo:
        nets = []
        for account, entry in zip(involved, entries, strict=True):
            balance = account.balance
            move_balance(balance, entry, kind, undo=undo)
            nets.append(balance.debits_posted - balance.credits_posted)
        return tuple(nets)
    nets = []
    for account, (_, side, amount) in zip(involved, entries, strict=True):
        balance = account.balance
        if side is _DEBIT:
            balance.debits_posted += amount
        else:
            balance.credits_posted += amount
        nets.append(balance.debits_posted - balance.credits_posted)
    return tuple(nets)


def _floor_breach(involved: list[Account], entries: tuple[Entry, ...]) -> LedgerError | None:
    """A floor may only stop a movement that lowers an account's available balance (a void,
    which only releases a reservation, is never checked)."""
    for account, entry in zip(involved, entries, strict=True):
        spec = account.spec
        floor = spec.floor
        if floor is None or entry[1] is spec.normal:
            continue  # no floor, or this entry raises the balance
        after = account.balance.available(spec.normal)
        if after < floor:
            return LedgerError(
                "floor_exceeded",
                f"account {spec.id} would fall to {after}, below its floor {floor}",
            )
    return None


def move_balance(balance: Balance, entry: Entry, kind: TransferKind, *, undo: bool = False) -> None:
    """Apply (or, with ``undo``, take back) one entry's effect on the four running totals."""
    amount = -entry.amount if undo else entry.amount
    debit = entry.side is _DEBIT
    if kind is TransferKind.PENDING:
        if debit:
            balance.debits_pending += amount
        else:
            balance.credits_pending += amount
        return
    if kind is TransferKind.POST_PENDING or kind is TransferKind.VOID_PENDING:
        if debit:
            balance.debits_pending -= amount
        else:
            balance.credits_pending -= amount
        if kind is TransferKind.VOID_PENDING:
            return
    if debit:
        balance.debits_posted += amount
    else:
        balance.credits_posted += amount


def _check_transfer_id(transfer_id: str) -> None:
    if not isinstance(transfer_id, str) or not _TRANSFER_ID.fullmatch(transfer_id):
        raise LedgerError(
            "invalid_transfer_id",
            f"transfer id {transfer_id!r} must be 1-200 chars of A-Z a-z 0-9 _ . : - /",
        )
