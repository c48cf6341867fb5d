"""An in-memory ledger store with real transaction semantics: a write works on a copy of the
state and publishes it only on success, so a failed transaction leaves nothing behind."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from synor_economics.domain.ledger import (
    Account,
    AccountSpec,
    Applied,
    Balance,
    EntryRecord,
    TransferRecord,
)


@dataclass(slots=True)
class _State:
    specs: dict[str, tuple[AccountSpec, int]] = field(default_factory=dict)
    balances: dict[str, Balance] = field(default_factory=dict)
    transfers: dict[str, TransferRecord] = field(default_factory=dict)
    by_seq: list[tuple[TransferRecord, tuple[EntryRecord, ...]]] = field(default_factory=list)
    refs: set[str] = field(default_factory=set)
    by_account: dict[str, list[EntryRecord]] = field(default_factory=dict)

    def clone(self) -> _State:
        return _State(
            specs=dict(self.specs),
            balances={k: v.copy() for k, v in self.balances.items()},
            transfers=dict(self.transfers),
            by_seq=list(self.by_seq),
            refs=set(self.refs),
            by_account={k: list(v) for k, v in self.by_account.items()},
        )


@dataclass(frozen=True, slots=True)
class MemoryWrite:
    """A batch encoded for the in-memory store: the applied transfers and balance copies."""

    applied: tuple[Applied, ...]
    changed: tuple[Account, ...]

    @property
    def transfers(self) -> int:
        return len(self.applied)


class MemoryLedgerRepository:
    """Implements ``ports.LedgerRepository`` over a ``_State``."""

    def __init__(self, state: _State) -> None:
        self.s = state

    def head(self) -> tuple[int, int]:
        if not self.s.by_seq:
            return (0, 0)
        last = self.s.by_seq[-1][0]
        return (last.seq, last.ts_us)

    def _account(self, account_id: str) -> Account:
        spec, num = self.s.specs[account_id]
        return Account(spec=spec, num=num, balance=self.s.balances[account_id].copy())

    def accounts(self, ids: Collection[str]) -> dict[str, Account]:
        return {i: self._account(i) for i in ids if i in self.s.specs}

    def add_accounts(self, specs: Sequence[AccountSpec], opened_us: int) -> dict[str, Account]:
        for spec in specs:
            num = len(self.s.specs) + 1
            self.s.specs[spec.id] = (spec, num)
            self.s.balances[spec.id] = Balance()
            self.s.by_account[spec.id] = []
        return {spec.id: self._account(spec.id) for spec in specs}

    def transfers(self, ids: Collection[str]) -> dict[str, TransferRecord]:
        return {i: self.s.transfers[i] for i in ids if i in self.s.transfers}

    def resolved(self, ids: Collection[str]) -> set[str]:
        return {i for i in ids if i in self.s.refs}

    def encode(
        self,
        applied: Sequence[Applied],
        accounts: Mapping[str, Account],
        changed: Sequence[Account],
    ) -> MemoryWrite:
        """The batch as it stands now: balances copied, since the caller's accounts move on."""
        return MemoryWrite(
            tuple(applied), tuple(Account(a.spec, a.num, a.balance.copy()) for a in changed)
        )

    def write(self, batch: object) -> None:
        if not isinstance(batch, MemoryWrite):
            raise TypeError(f"not a batch this repository encoded: {type(batch).__name__}")
        for item in batch.applied:
            record, entries = item.record, item.entry_records()
            self.s.transfers[record.id] = record
            self.s.by_seq.append((record, entries))
            if record.ref is not None:
                self.s.refs.add(record.ref)
            for entry in entries:
                self.s.by_account[entry.account].append(entry)
        for account in batch.changed:
            self.s.balances[account.spec.id] = account.balance.copy()

    def all_accounts(self) -> list[Account]:
        return [self._account(i) for i in sorted(self.s.specs)]

    def last_seq_at(self, ts_us: int) -> int:
        stamps = [record.ts_us for record, _ in self.s.by_seq]
        index = bisect.bisect_right(stamps, ts_us)
        return self.s.by_seq[index - 1][0].seq if index else 0

    def net_as_of(self, seq: int) -> dict[str, int]:
        result: dict[str, int] = {}
        for account_id, entries in self.s.by_account.items():
            before = [e for e in entries if e.seq <= seq]
            if before:
                result[account_id] = before[-1].balance_after
        return result

    def entries_of(
        self, account_id: str, *, limit: int, before: tuple[int, int] | None
    ) -> list[tuple[TransferRecord, EntryRecord]]:
        entries = self.s.by_account.get(account_id, [])
        chosen = [e for e in reversed(entries) if before is None or (e.seq, e.leg) < before][:limit]
        return [(self.s.by_seq[e.seq - 1][0], e) for e in chosen]

    def history(
        self, *, after_seq: int, limit: int
    ) -> list[tuple[TransferRecord, tuple[EntryRecord, ...]]]:
        return self.s.by_seq[after_seq : after_seq + limit]


class MemoryTransaction:
    def __init__(self, state: _State) -> None:
        self._ledger = MemoryLedgerRepository(state)

    @property
    def ledger(self) -> MemoryLedgerRepository:
        return self._ledger


class MemoryUnitOfWork:
    """One writer at a time; readers see the last committed state."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[MemoryTransaction]:
        with self._lock:
            draft = self._state.clone()
            yield MemoryTransaction(draft)
            self._state = draft

    @contextmanager
    def read(self) -> Iterator[MemoryTransaction]:
        yield MemoryTransaction(self._state)
