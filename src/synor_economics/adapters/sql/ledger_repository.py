"""The ledger repository over SQLAlchemy Core: the same code for SQLite and PostgreSQL.

Writes are batched: one multi-row INSERT per table per batch (executemany on SQLite,
"insertmanyvalues" on PostgreSQL) and one UPDATE per touched account. Lookups by id go through
``IN`` lists in chunks that stay under every driver's parameter limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    any_,
    bindparam,
    func,
    select,
    tuple_,
)

from synor_economics.adapters.sql.bulk import chunks, driver_of, pg_array_literal
from synor_economics.adapters.sql.tables import ledger_accounts, ledger_entries, ledger_transfers
from synor_economics.domain.ledger import (
    Account,
    AccountKind,
    AccountSpec,
    Applied,
    Balance,
    Entry,
    EntryRecord,
    Side,
    TransferKind,
    TransferRecord,
)

_T = TypeVar("_T")

_CHUNK = 2000
"""Ids per IN list: well under SQLite's 32766 and PostgreSQL's 65535 parameters."""

_PENDING = TransferKind.PENDING
_SIDE = {"debit": Side.DEBIT, "credit": Side.CREDIT}
_KIND = {k.value: k for k in TransferKind}


def _among(column: ColumnElement[Any], values: list[Any], dialect: str) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``= ANY(array)``, one parameter instead of thousands
    (psycopg otherwise re-parses a query with a different number of placeholders every time)."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def _chunks(ids: Collection[_T]) -> Iterator[list[_T]]:
    """Lists of at most ``_CHUNK`` items, for IN lists every driver accepts."""
    return chunks(ids, _CHUNK)


def _account(row: Any) -> Account:
    spec = AccountSpec(
        id=row.id,
        kind=AccountKind(row.kind),
        normal=_SIDE[row.normal],
        floor=row.floor,
        owner=row.owner,
    )
    balance = Balance(
        row.debits_posted, row.credits_posted, row.debits_pending, row.credits_pending
    )
    return Account(spec=spec, num=row.num, balance=balance)


def _record(row: Any, entries: tuple[Entry, ...]) -> TransferRecord:
    return TransferRecord(
        seq=row.seq,
        id=row.id,
        kind=_KIND[row.kind],
        ts_us=row.ts_us,
        entries=entries,
        ref=row.ref,
        code=row.code,
        memo=row.memo,
        fingerprint=row.fingerprint,
    )


_ENTRY_COLUMNS = (
    ledger_entries.c.seq,
    ledger_entries.c.leg,
    ledger_accounts.c.id.label("account"),
    ledger_entries.c.side,
    ledger_entries.c.amount,
    ledger_entries.c.pending,
    ledger_entries.c.balance_after,
)


def _entry(row: Any) -> EntryRecord:
    return EntryRecord(
        seq=row.seq,
        leg=row.leg,
        account=row.account,
        side=_SIDE[row.side],
        amount=row.amount,
        pending=row.pending,
        balance_after=row.balance_after,
    )


_TRANSFER_FIELDS = ("seq", "id", "kind", "ref", "ts_us", "code", "memo", "fingerprint")
_ENTRY_FIELDS = ("seq", "leg", "account_num", "side", "amount", "pending", "balance_after")


def _sqlite_insert_json(table: str, fields: Sequence[str], exact: Collection[str] = ()) -> str:
    """An INSERT of many rows passed as one JSON array of arrays; table and fields are this
    module's constants, never input.

    Amounts (the ``exact`` fields) travel as JSON integers of any size and are read with ``->``,
    which returns a number's JSON text, i.e. its exact digits; ``->>`` would turn an integer
    beyond 64 bits into a rounded REAL. The columns are TEXT on SQLite, so the digits are what is
    stored."""
    values = ", ".join(
        f"value->{i}" if field in exact else f"value->>{i}" for i, field in enumerate(fields)
    )
    return f"INSERT INTO {table} ({', '.join(fields)}) SELECT {values} FROM json_each(?)"  # noqa: S608


_json = msgspec.json.Encoder().encode
"""msgspec's encoder: big integers exact, enums by value, about four times faster than the
standard library's here, and the encoding holds the GIL that the next batch's preparation
needs."""

_SQLITE_INSERT_TRANSFERS = _sqlite_insert_json("ledger_transfers", _TRANSFER_FIELDS)
_SQLITE_INSERT_ENTRIES = _sqlite_insert_json(
    "ledger_entries", _ENTRY_FIELDS, exact=("amount", "balance_after")
)
_SQLITE_ADD_ACCOUNTS = (
    "INSERT INTO ledger_accounts (id, kind, normal, floor, owner, opened_us, debits_posted, "
    "credits_posted, debits_pending, credits_pending) SELECT value->>0, value->>1, value->>2, "
    "CASE WHEN value->>3 IS NULL THEN NULL ELSE value->3 END, value->>4, value->>5, "
    "'0', '0', '0', '0' FROM json_each(?)"
)
"""New accounts in one statement; a floor, an exact integer of any size, is read with ``->``."""

_SQLITE_SAVE_BALANCES = (
    "UPDATE ledger_accounts SET debits_posted = v.value->0, credits_posted = v.value->1, "
    "debits_pending = v.value->2, credits_pending = v.value->3 "
    "FROM json_each(?) AS v WHERE ledger_accounts.num = v.value->>4"
)


def _copy_rows(
    driver: Any, table: str, fields: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Stream rows into a PostgreSQL table with COPY, the fastest bulk path psycopg offers."""
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(fields)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


_PG_SAVE_BALANCES = (
    "UPDATE ledger_accounts AS a SET debits_posted = v.dp, credits_posted = v.cp, "
    "debits_pending = v.dq, credits_pending = v.cq "
    "FROM unnest(%s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::int[]) "
    "AS v(dp, cp, dq, cq, num) WHERE a.num = v.num"
)


@dataclass(frozen=True, slots=True)
class LedgerRows:
    """A batch encoded for this repository's dialect: row tuples for PostgreSQL's ``COPY``
    (and array literals for the balance update), JSON documents for SQLite. ``None`` where the
    batch has nothing for that table."""

    transfers: int
    transfer_rows: Any
    entry_rows: Any
    balance_rows: Any


def _transfer_rows(
    applied: Sequence[Applied], accounts: Mapping[str, Account]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The transfer rows and entry rows of applied transfers (entries name accounts by their
    storage key)."""
    nums = {account_id: account.num for account_id, account in accounts.items()}
    transfers = [
        (r.seq, r.id, r.kind.value, r.ref, r.ts_us, r.code, r.memo, r.fingerprint)
        for r in (a.record for a in applied)
    ]
    entries = [
        (r.seq, leg, nums[account], side, amount, r.kind is _PENDING, after)
        for r, afters in applied
        for leg, ((account, side, amount), after) in enumerate(zip(r.entries, afters, strict=True))
    ]
    return transfers, entries


class SqlLedgerRepository:
    """Implements ``ports.LedgerRepository`` on one connection inside a transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._dialect = conn.dialect.name

    def _driver(self) -> Any:
        """The DB-API connection under this transaction (sqlite3 or psycopg), for bulk paths."""
        return driver_of(self.conn)

    # -- writing ---------------------------------------------------------------------------

    def head(self) -> tuple[int, int]:
        query = (
            select(ledger_transfers.c.seq, ledger_transfers.c.ts_us)
            .order_by(ledger_transfers.c.seq.desc())
            .limit(1)
        )
        row = self.conn.execute(query).first()
        return (0, 0) if row is None else (row.seq, row.ts_us)

    def accounts(self, ids: Collection[str]) -> dict[str, Account]:
        found: dict[str, Account] = {}
        for chunk in _chunks(ids):
            rows = self.conn.execute(
                select(ledger_accounts).where(_among(ledger_accounts.c.id, chunk, self._dialect))
            )
            for row in rows:
                account = _account(row)
                found[account.spec.id] = account
        return found

    def add_accounts(self, specs: Sequence[AccountSpec], opened_us: int) -> dict[str, Account]:
        """One multi-row INSERT, then the storage keys read back: a period close opens three
        accounts per new customer, thousands at a time."""
        if not specs:
            return {}
        if self._dialect == "sqlite":
            values = [
                (s.id, s.kind.value, s.normal.value, s.floor, s.owner, opened_us) for s in specs
            ]
            self._driver().execute(_SQLITE_ADD_ACCOUNTS, (_json(values),))
            return self.accounts([spec.id for spec in specs])
        rows = [
            {
                "id": spec.id,
                "kind": spec.kind.value,
                "normal": spec.normal.value,
                "floor": spec.floor,
                "owner": spec.owner,
                "opened_us": opened_us,
                "debits_posted": 0,
                "credits_posted": 0,
                "debits_pending": 0,
                "credits_pending": 0,
            }
            for spec in specs
        ]
        self.conn.execute(ledger_accounts.insert(), rows)
        return self.accounts([spec.id for spec in specs])

    def transfers(self, ids: Collection[str]) -> dict[str, TransferRecord]:
        rows: list[Any] = []
        for chunk in _chunks(ids):
            rows.extend(
                self.conn.execute(
                    select(ledger_transfers).where(
                        _among(ledger_transfers.c.id, chunk, self._dialect)
                    )
                )
            )
        if not rows:
            return {}
        entries = self._entries_by_seq([row.seq for row in rows])
        return {row.id: _record(row, entries.get(row.seq, ())) for row in rows}

    def _entries_by_seq(self, seqs: Sequence[int]) -> dict[int, tuple[Entry, ...]]:
        grouped: dict[int, list[Entry]] = defaultdict(list)
        for chunk in _chunks(seqs):
            query = (
                select(*_ENTRY_COLUMNS)
                .join(ledger_accounts, ledger_accounts.c.num == ledger_entries.c.account_num)
                .where(_among(ledger_entries.c.seq, chunk, self._dialect))
                .order_by(ledger_entries.c.seq, ledger_entries.c.leg)
            )
            for row in self.conn.execute(query):
                grouped[row.seq].append(Entry(row.account, _SIDE[row.side], row.amount))
        return {seq: tuple(entries) for seq, entries in grouped.items()}

    def resolved(self, ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(ids):
            query = select(ledger_transfers.c.ref).where(
                _among(ledger_transfers.c.ref, chunk, self._dialect)
            )
            found.update(self.conn.execute(query).scalars())
        return found

    def encode(
        self,
        applied: Sequence[Applied],
        accounts: Mapping[str, Account],
        changed: Sequence[Account],
    ) -> LedgerRows:
        """A batch's rows, built as tuples for the driver itself (SQLAlchemy's per-row parameter
        processing costs more than the database's own work here) and, on SQLite, already
        serialised as the JSON arrays the insert statements read."""
        transfers, entries = _transfer_rows(applied, accounts)
        balances = [
            (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending, a.num)
            for a in changed
            for b in (a.balance,)
        ]
        if self._dialect == "postgresql":
            # Each balance column is sent as one array literal ("{1,2,3}"): psycopg adapts a
            # list element by element, which cost more than the update itself.
            columns = [pg_array_literal(column) for column in zip(*balances, strict=True)]
            return LedgerRows(len(transfers), transfers, entries, columns if balances else None)
        return LedgerRows(
            len(transfers),
            _json(transfers) if transfers else None,
            _json(entries) if entries else None,
            _json(balances) if balances else None,
        )

    def write(self, batch: object) -> None:
        """Insert the transfers and entries, then rewrite the touched accounts' balances, each
        table in one statement on the transaction's own driver connection (the ledger's hot
        path): ``COPY`` on PostgreSQL, one JSON array per table on SQLite, which then stores
        the whole table's rows in one call with the interpreter released (``executemany`` takes
        it back after every row, which stalls against the thread preparing the next batch)."""
        if not isinstance(batch, LedgerRows):
            raise TypeError(f"not a batch this repository encoded: {type(batch).__name__}")
        driver = self._driver()
        if self._dialect == "postgresql":
            if batch.transfer_rows is not None:
                _copy_rows(driver, "ledger_transfers", _TRANSFER_FIELDS, batch.transfer_rows)
                _copy_rows(driver, "ledger_entries", _ENTRY_FIELDS, batch.entry_rows)
            if batch.balance_rows is not None:
                with driver.cursor() as cursor:
                    cursor.execute(_PG_SAVE_BALANCES, batch.balance_rows)
            return
        if batch.transfer_rows is not None:
            driver.execute(_SQLITE_INSERT_TRANSFERS, (batch.transfer_rows,))
        if batch.entry_rows is not None:
            driver.execute(_SQLITE_INSERT_ENTRIES, (batch.entry_rows,))
        if batch.balance_rows is not None:
            driver.execute(_SQLITE_SAVE_BALANCES, (batch.balance_rows,))

    # -- reading ---------------------------------------------------------------------------

    def all_accounts(self) -> list[Account]:
        rows = self.conn.execute(select(ledger_accounts).order_by(ledger_accounts.c.id))
        return [_account(row) for row in rows]

    def last_seq_at(self, ts_us: int) -> int:
        """Binary search over the primary key: timestamps increase with ``seq`` (see tables)."""
        low, high = 0, self.head()[0]
        probe = select(ledger_transfers.c.ts_us).where(ledger_transfers.c.seq == bindparam("seq"))
        while low < high:
            middle = (low + high + 1) // 2
            if self.conn.execute(probe, {"seq": middle}).scalar_one() <= ts_us:
                low = middle
            else:
                high = middle - 1
        return low

    def net_as_of(self, seq: int) -> dict[str, int]:
        latest = (
            select(
                ledger_entries.c.account_num.label("num"),
                func.max(ledger_entries.c.seq).label("seq"),
            )
            .where(ledger_entries.c.seq <= seq)
            .group_by(ledger_entries.c.account_num)
            .subquery()
        )
        query = (
            select(ledger_accounts.c.id, ledger_entries.c.balance_after, ledger_entries.c.leg)
            .join(latest, latest.c.num == ledger_accounts.c.num)
            .join(
                ledger_entries,
                (ledger_entries.c.seq == latest.c.seq)
                & (ledger_entries.c.account_num == latest.c.num),
            )
            .order_by(ledger_entries.c.leg)
        )
        # An account may appear on several legs of one transfer: the last leg holds its balance.
        return {row.id: row.balance_after for row in self.conn.execute(query)}

    def entries_of(
        self, account_id: str, *, limit: int, before: tuple[int, int] | None
    ) -> list[tuple[TransferRecord, EntryRecord]]:
        query = (
            select(*_ENTRY_COLUMNS)
            .join(ledger_accounts, ledger_accounts.c.num == ledger_entries.c.account_num)
            .where(ledger_accounts.c.id == account_id)
            .order_by(ledger_entries.c.seq.desc(), ledger_entries.c.leg.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(
                tuple_(ledger_entries.c.seq, ledger_entries.c.leg) < tuple_(*before)
            )
        entries = [_entry(row) for row in self.conn.execute(query)]
        seqs = sorted({e.seq for e in entries})
        records = self._records_by_seq(seqs)
        return [(records[e.seq], e) for e in entries]

    def _records_by_seq(self, seqs: Sequence[int]) -> dict[int, TransferRecord]:
        entries = self._entries_by_seq(seqs)
        records: dict[int, TransferRecord] = {}
        for chunk in _chunks(seqs):
            for row in self.conn.execute(
                select(ledger_transfers).where(_among(ledger_transfers.c.seq, chunk, self._dialect))
            ):
                records[row.seq] = _record(row, entries.get(row.seq, ()))
        return records

    def history(
        self, *, after_seq: int, limit: int
    ) -> list[tuple[TransferRecord, tuple[EntryRecord, ...]]]:
        rows = list(
            self.conn.execute(
                select(ledger_transfers)
                .where(ledger_transfers.c.seq > after_seq)
                .order_by(ledger_transfers.c.seq)
                .limit(limit)
            )
        )
        if not rows:
            return []
        query = (
            select(*_ENTRY_COLUMNS)
            .join(ledger_accounts, ledger_accounts.c.num == ledger_entries.c.account_num)
            .where(ledger_entries.c.seq > after_seq, ledger_entries.c.seq <= rows[-1].seq)
            .order_by(ledger_entries.c.seq, ledger_entries.c.leg)
        )
        grouped: dict[int, list[EntryRecord]] = defaultdict(list)
        for row in self.conn.execute(query):
            grouped[row.seq].append(_entry(row))
        result = []
        for row in rows:
            entries = tuple(grouped.get(row.seq, ()))
            plain = tuple(Entry(e.account, e.side, e.amount) for e in entries)
            result.append((_record(row, plain), entries))
        return result
