"""Hourly rollups are appended to a log and folded into ``usage_hourly`` in bulk.

Adding each batch's deltas to ``usage_hourly`` in place put nearly every event of a batch on a
page of its own (accounts and hours are spread out): SQLite writes every page a transaction
touched to its log at commit, about 4 KiB per event for a batch of 1,000, and PostgreSQL made
an index probe and a row version per event (see ``usage_repository.add_hourly``). The log takes
the deltas in arrival order; readers add the two tables.

Revision ID: 0008_usage_hourly_log
Revises: 0007_usage_key_index
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from synor_economics.adapters.sql.tables import ExactDecimal, Seq

revision = "0008_usage_hourly_log"
down_revision = "0007_usage_key_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_hourly_log",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(100), nullable=False),
        sa.Column("hour_us", sa.BigInteger, nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_usage_hourly_log"),
    )


def downgrade() -> None:
    op.drop_table("usage_hourly_log")
