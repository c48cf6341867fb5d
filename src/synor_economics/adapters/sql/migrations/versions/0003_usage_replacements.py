"""Replacement backfills: event generations, superseded events, the replacements themselves.

Revision ID: 0003_usage_replacements
Revises: 0002_usage
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from synor_economics.adapters.sql.tables import Seq

revision = "0003_usage_replacements"
down_revision = "0002_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(
            sa.Column("generation", sa.BigInteger, nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("superseded_by", sa.BigInteger, nullable=True))
        batch.drop_constraint("uq_usage_events_account_event_id", type_="unique")
        batch.create_unique_constraint(
            "uq_usage_events_account_event_id", ["account", "event_id", "generation"]
        )
    op.create_table(
        "usage_replacements",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("reverted_us", sa.BigInteger, nullable=True),
        sa.Column("superseded", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_usage_replacements"),
    )


def downgrade() -> None:
    op.drop_table("usage_replacements")
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_constraint("uq_usage_events_account_event_id", type_="unique")
        batch.create_unique_constraint("uq_usage_events_account_event_id", ["account", "event_id"])
        batch.drop_column("superseded_by")
        batch.drop_column("generation")
