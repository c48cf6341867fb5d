"""The ports: what the use cases need from the outside world, as ``typing.Protocol`` classes.

Services depend on these, never on an adapter. ``adapters/sql`` and ``adapters/memory`` implement
them; ``bootstrap.py`` picks which. One write transaction (``UnitOfWork.write``) serialises writers
and spans every repository, so a later use case (closing an invoice) can post its ledger
transfers in the same transaction as the invoice itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from synor_economics.domain.ledger import (
    Account,
    AccountSpec,
    Applied,
    EntryRecord,
    TransferRecord,
)


class Clock(Protocol):
    """Time, injected so tests and simulations can fix it."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class LedgerRepository(Protocol):
    """Storage of the ledger: accounts with running balances, transfers and their entries.

    Write methods are called inside ``UnitOfWork.write``; the ledger is append-only, and only the
    derived balance columns of accounts are ever rewritten.
    """

    def head(self) -> tuple[int, int]:
        """(last sequence number, last timestamp in µs); (0, 0) for an empty ledger."""
        ...

    def accounts(self, ids: Collection[str]) -> dict[str, Account]:
        """The named accounts that exist, with their current balances (copies the caller owns)."""
        ...

    def add_account(self, spec: AccountSpec, opened_us: int) -> Account: ...

    def transfers(self, ids: Collection[str]) -> dict[str, TransferRecord]:
        """The named transfers that exist, with their entries."""
        ...

    def resolved(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` a later transfer already resolved (post/void) or reversed."""
        ...

    def append(self, applied: Sequence[Applied], accounts: Mapping[str, Account]) -> None:
        """Store newly applied transfers and their entries, in sequence order; ``accounts``
        holds (at least) every account the entries name, with its storage key."""
        ...

    def save_balances(self, accounts: Sequence[Account]) -> None:
        """Store the running balances of accounts a batch changed."""
        ...

    def all_accounts(self) -> list[Account]: ...

    def net_as_of(self, seq: int) -> dict[str, int]:
        """Posted net (debits − credits) of every account after transfer ``seq``."""
        ...

    def last_seq_at(self, ts_us: int) -> int:
        """The sequence number of the last transfer at or before ``ts_us`` (0 if none)."""
        ...

    def entries_of(
        self, account_id: str, *, limit: int, before: tuple[int, int] | None
    ) -> list[tuple[TransferRecord, EntryRecord]]:
        """An account's entries, newest first, with the transfer each belongs to; only those
        strictly before the ``(seq, leg)`` cursor when one is given."""
        ...

    def history(
        self, *, after_seq: int, limit: int
    ) -> list[tuple[TransferRecord, tuple[EntryRecord, ...]]]:
        """Transfers after ``after_seq`` in sequence order, with their stored entries."""
        ...


class Transaction(Protocol):
    """One database transaction and the repositories that work inside it."""

    @property
    def ledger(self) -> LedgerRepository: ...


class UnitOfWork(Protocol):
    """Opens transactions. ``write`` serialises writers (one at a time, ledger-wide)."""

    def write(self) -> AbstractContextManager[Transaction]: ...

    def read(self) -> AbstractContextManager[Transaction]: ...
