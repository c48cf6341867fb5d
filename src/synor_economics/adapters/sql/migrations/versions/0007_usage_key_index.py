"""SQLite deduplicates usage events through the key index instead of a UNIQUE constraint.

Random event ids put every new key on a random page of the constraint's B-tree, which cost more
than the rest of ingestion (see ``key_index.py``). On SQLite the constraint is dropped; the
events already stored are indexed by 0009, which builds the index in its present form (this
revision built a first run in the form of its day, which 0009 would only have rebuilt).
PostgreSQL keeps its constraint (writers there run side by side); ``usage_key_runs`` exists
there too but stays empty.

Revision ID: 0007_usage_key_index
Revises: 0006_chain
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_usage_key_index"
down_revision = "0006_chain"
branch_labels = None
depends_on = None

_KEY = ["account", "event_id", "generation"]


def upgrade() -> None:
    op.create_table(
        "usage_key_runs",
        sa.Column("run", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token", sa.LargeBinary(16), nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
        sa.Column("seqs", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("run", name="pk_usage_key_runs"),
        sa.UniqueConstraint("token", name="uq_usage_key_runs_token"),
    )
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_constraint("uq_usage_events_account_event_id", type_="unique")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("usage_events") as batch:
            batch.create_unique_constraint("uq_usage_events_account_event_id", _KEY)
    op.drop_table("usage_key_runs")
