"""Usage metering: events deduplicated per account, hourly rollups, gauge levels, dead letters.

Revision ID: 0002_usage
Revises: 0001_ledger
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from synor_economics.adapters.sql.tables import ExactDecimal, Seq

revision = "0002_usage"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(100), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_usage_events"),
        sa.UniqueConstraint("account", "event_id", name="uq_usage_events_account_event_id"),
    )
    op.create_index(
        "ix_usage_events_gauge", "usage_events", ["account", "resource", "subject", "ts_us"]
    )
    op.create_table(
        "usage_hourly",
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(100), nullable=False),
        sa.Column("hour_us", sa.BigInteger, nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("account", "resource", "hour_us", name="pk_usage_hourly"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_gauges",
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("level", ExactDecimal(), nullable=False),
        sa.Column("since_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account", "resource", "subject", name="pk_usage_gauges"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_rejections",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_usage_rejections"),
    )


def downgrade() -> None:
    op.drop_table("usage_rejections")
    op.drop_table("usage_gauges")
    op.drop_table("usage_hourly")
    op.drop_index("ix_usage_events_gauge", table_name="usage_events")
    op.drop_table("usage_events")
