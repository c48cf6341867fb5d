"""SQLite deduplicates usage events through the key index instead of a UNIQUE constraint.

Random event ids put every new key on a random page of the constraint's B-tree, which cost more
than the rest of ingestion (see ``key_index.py``). On SQLite the constraint is dropped, and the
events already stored become the index's first run. PostgreSQL keeps its constraint (writers
there run side by side); ``usage_key_runs`` exists there too but stays empty.

Revision ID: 0007_usage_key_index
Revises: 0006_chain
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from synor_economics.adapters.sql.key_index import first_run

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
    stored = bind.execute(
        sa.text("SELECT seq, account, event_id FROM usage_events WHERE generation = 0")
    ).all()
    first_run(bind.connection.driver_connection, [tuple(row) for row in stored])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("usage_events") as batch:
            batch.create_unique_constraint("uq_usage_events_account_event_id", _KEY)
    op.drop_table("usage_key_runs")
