"""The chain: contract deployments, oracle readings and rounds, payments seen and watcher cursors.

Revision ID: 0006_chain
Revises: 0005_gauge_index
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from synor_economics.adapters.sql.tables import BigAmount

revision = "0006_chain"
down_revision = "0005_gauge_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_deployments",
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("genesis", sa.String(66), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("first_block", sa.BigInteger, nullable=False),
        sa.Column("deployed_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "genesis", "name", name="pk_chain_deployments"),
    )
    op.create_table(
        "oracle_readings",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("cumulative", BigAmount(), nullable=True),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("spot", sa.Text, nullable=True),
        sa.Column("liquidity", sa.Text, nullable=False),
        sa.Column("twap", sa.Text, nullable=True),
        sa.Column("history", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("source", "at", name="pk_oracle_readings"),
    )
    op.create_table(
        "oracle_rounds",
        sa.Column("round", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("price", sa.Text, nullable=True),
        sa.Column("low", sa.Text, nullable=True),
        sa.Column("high", sa.Text, nullable=True),
        sa.Column("quorum_met", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("submitted", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("round", name="pk_oracle_rounds"),
    )
    op.create_table(
        "chain_payments",
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payer", sa.String(42), nullable=False),
        sa.Column("receiver", sa.String(42), nullable=False),
        sa.Column("amount", BigAmount(), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("seen_us", sa.BigInteger, nullable=False),
        sa.Column("credited_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("chain_id", "tx_hash", "log_index", name="pk_chain_payments"),
    )
    op.create_table(
        "chain_cursors",
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "name", name="pk_chain_cursors"),
    )
    op.create_table(
        "deposit_addresses",
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_deposit_addresses"),
    )


def downgrade() -> None:
    for table in (
        "deposit_addresses",
        "chain_cursors",
        "chain_payments",
        "oracle_rounds",
        "oracle_readings",
        "chain_deployments",
    ):
        op.drop_table(table)
