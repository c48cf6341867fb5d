"""The payment watcher's records over SQLAlchemy Core: chain payments by
``(chain_id, tx_hash, log_index)``, the watcher's cursor per chain, and deposit addresses."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, tuple_, update

from synor_economics.adapters.sql.tables import chain_cursors, chain_payments, deposit_addresses
from synor_economics.ports import ChainPayment, PaymentRow

_CURSOR = "payments"
_KEY_CHUNK = 300


def _row(row: Any) -> PaymentRow:
    return PaymentRow(
        payment=ChainPayment(
            chain_id=int(row.chain_id),
            tx_hash=row.tx_hash,
            log_index=int(row.log_index),
            block_number=int(row.block_number),
            block_hash=row.block_hash,
            kind=row.kind,
            payer=row.payer,
            receiver=row.receiver,
            amount=int(row.amount),
            reference=row.reference,
        ),
        status=row.status,
        note=row.note,
        seen_us=int(row.seen_us),
        credited_us=None if row.credited_us is None else int(row.credited_us),
    )


def _values(row: PaymentRow) -> dict[str, Any]:
    return row.payment._asdict() | {
        "status": row.status,
        "note": row.note,
        "seen_us": row.seen_us,
        "credited_us": row.credited_us,
    }


def _key_of(row: PaymentRow) -> tuple[int, str, int]:
    return (row.payment.chain_id, row.payment.tx_hash, row.payment.log_index)


_BY_KEY = (
    (chain_payments.c.chain_id == bindparam("k_chain"))
    & (chain_payments.c.tx_hash == bindparam("k_tx"))
    & (chain_payments.c.log_index == bindparam("k_log"))
)
"""One payment by its key: the statements below run once per row given (executemany)."""

_COLUMNS = (*ChainPayment._fields, "status", "note", "seen_us", "credited_us")
_FIELDS: dict[str, Any] = {name: bindparam(f"v_{name}") for name in _COLUMNS}
"""Every column set from a row's ``v_``-named values (a bound name may not be a column's)."""


def _key_values(key: tuple[int, str, int]) -> dict[str, Any]:
    return {"k_chain": key[0], "k_tx": key[1], "k_log": key[2]}


class SqlPaymentWatchRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def cursor(self, chain_id: int) -> tuple[int, str] | None:
        row = self.conn.execute(
            select(chain_cursors.c.block_number, chain_cursors.c.block_hash).where(
                chain_cursors.c.chain_id == chain_id, chain_cursors.c.name == _CURSOR
            )
        ).first()
        return None if row is None else (int(row.block_number), row.block_hash)

    def set_cursor(self, chain_id: int, block_number: int, block_hash: str) -> None:
        key = (chain_cursors.c.chain_id == chain_id) & (chain_cursors.c.name == _CURSOR)
        self.conn.execute(delete(chain_cursors).where(key))
        self.conn.execute(
            insert(chain_cursors),
            {
                "chain_id": chain_id,
                "name": _CURSOR,
                "block_number": block_number,
                "block_hash": block_hash,
            },
        )

    def seen(
        self, keys: Collection[tuple[int, str, int]]
    ) -> dict[tuple[int, str, int], PaymentRow]:
        found: dict[tuple[int, str, int], PaymentRow] = {}
        ordered = sorted(keys)
        columns = tuple_(
            chain_payments.c.chain_id, chain_payments.c.tx_hash, chain_payments.c.log_index
        )
        for start in range(0, len(ordered), _KEY_CHUNK):
            chunk = ordered[start : start + _KEY_CHUNK]
            for row in self.conn.execute(select(chain_payments).where(columns.in_(chunk))):
                record = _row(row)
                found[_key_of(record)] = record
        return found

    def add(self, rows: Sequence[PaymentRow]) -> None:
        if rows:
            self.conn.execute(insert(chain_payments), [_values(r) for r in rows])

    def replace(self, rows: Sequence[PaymentRow]) -> None:
        if rows:
            self.conn.execute(
                update(chain_payments).where(_BY_KEY).values(**_FIELDS),
                [
                    {f"v_{name}": value for name, value in _values(r).items()}
                    | _key_values(_key_of(r))
                    for r in rows
                ],
            )

    def pending(self, chain_id: int) -> list[PaymentRow]:
        rows = self.conn.execute(
            select(chain_payments)
            .where(chain_payments.c.chain_id == chain_id, chain_payments.c.status == "pending")
            .order_by(chain_payments.c.block_number, chain_payments.c.log_index)
        )
        return [_row(row) for row in rows]

    def set_statuses(
        self, changes: Sequence[tuple[tuple[int, str, int], str, str | None, int | None]]
    ) -> None:
        if changes:
            self.conn.execute(
                update(chain_payments)
                .where(_BY_KEY)
                .values(
                    status=bindparam("status"), note=bindparam("note"), credited_us=bindparam("at")
                ),
                [
                    _key_values(key) | {"status": status, "note": note, "at": at}
                    for key, status, note, at in changes
                ],
            )

    def listing(self, *, limit: int, status: str | None = None) -> list[PaymentRow]:
        query = (
            select(chain_payments)
            .order_by(
                chain_payments.c.block_number.desc(),
                chain_payments.c.log_index.desc(),
            )
            .limit(limit)
        )
        if status is not None:
            query = query.where(chain_payments.c.status == status)
        return [_row(row) for row in self.conn.execute(query)]

    def deposit_addresses(self) -> dict[str, str]:
        rows = self.conn.execute(select(deposit_addresses.c.address, deposit_addresses.c.account))
        return {str(address): str(account) for address, account in rows}

    def add_deposit_address(self, address: str, account: str) -> None:
        self.conn.execute(delete(deposit_addresses).where(deposit_addresses.c.address == address))
        self.conn.execute(insert(deposit_addresses), {"address": address, "account": account})
