"""The double-entry ledger: accounts, transfers, entries, and immutability triggers.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from synor_economics.adapters.sql.tables import BigAmount, Seq

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

_IMMUTABLE = ("ledger_transfers", "ledger_entries")


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("num", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("normal", sa.String(6), nullable=False),
        sa.Column("floor", BigAmount(), nullable=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("opened_us", sa.BigInteger, nullable=False),
        sa.Column("debits_posted", BigAmount(), nullable=False),
        sa.Column("credits_posted", BigAmount(), nullable=False),
        sa.Column("debits_pending", BigAmount(), nullable=False),
        sa.Column("credits_pending", BigAmount(), nullable=False),
        sa.PrimaryKeyConstraint("num", name="pk_ledger_accounts"),
        sa.UniqueConstraint("id", name="uq_ledger_accounts_id"),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("seq", Seq, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref", sa.String(200), nullable=True),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("memo", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_ledger_transfers"),
        sa.UniqueConstraint("id", name="uq_ledger_transfers_id"),
    )
    op.create_index(
        "ix_ledger_transfers_ref",
        "ledger_transfers",
        ["ref"],
        unique=True,
        sqlite_where=sa.text("ref IS NOT NULL"),
        postgresql_where=sa.text("ref IS NOT NULL"),
    )

    op.create_table(
        "ledger_entries",
        sa.Column("seq", Seq, nullable=False),
        sa.Column("leg", sa.SmallInteger, nullable=False),
        sa.Column("account_num", sa.Integer, nullable=False),
        sa.Column("side", sa.String(6), nullable=False),
        sa.Column("amount", BigAmount(), nullable=False),
        sa.Column("pending", sa.Boolean, nullable=False),
        sa.Column("balance_after", BigAmount(), nullable=False),
        sa.PrimaryKeyConstraint("seq", "leg", name="pk_ledger_entries"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_ledger_entries_account_seq", "ledger_entries", ["account_num", "seq"])
    _create_immutability_triggers()


def _create_immutability_triggers() -> None:
    """Entries and transfers are append-only: the database itself refuses UPDATE and DELETE."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION synor_ledger_immutable() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'ledger rows are immutable: % on %', TG_OP, TG_TABLE_NAME; END "
            "$$ LANGUAGE plpgsql"
        )
        for table in _IMMUTABLE:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION synor_ledger_immutable()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION synor_ledger_immutable()"
            )
        return
    for table in _IMMUTABLE:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'ledger rows are immutable: {action} on {table}'); END"
            )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_account_seq", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS synor_ledger_immutable()")
