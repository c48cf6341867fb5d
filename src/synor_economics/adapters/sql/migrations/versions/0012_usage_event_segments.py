"""Event segments: on SQLite, the plain counter events of a batch are stored as one row of
columns (``usage_event_segments``) instead of a row each (``adapters/sql/event_segments.py``
says why and how).

The upgrade only makes the table: events stored as rows stay rows, and are read as before. The
downgrade puts every event still held in a segment back as a row of ``usage_events``, with its
seq (those a replacement took out are rows already), then drops the table.

Revision ID: 0012_usage_event_segments
Revises: 0011_usage_series
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from synor_economics.adapters.sql import event_segments
from synor_economics.adapters.sql.bulk import insert_rows
from synor_economics.adapters.sql.tables import Seq

revision = "0012_usage_event_segments"
down_revision = "0011_usage_series"
branch_labels = None
depends_on = None

_ROWS = (
    "INSERT INTO usage_events (seq, account, event_id, resource, quantity, ts_us, subject, "
    "operator, meta, fingerprint, received_us, source, generation)"
)


def upgrade() -> None:
    op.create_table(
        "usage_event_segments",
        sa.Column("segment", Seq, primary_key=True, autoincrement=True),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("min_ts_us", sa.BigInteger, nullable=False),
        sa.Column("max_ts_us", sa.BigInteger, nullable=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("columns", sa.LargeBinary, nullable=False),
        sa.Column("moved", sa.LargeBinary, nullable=True),
        sa.UniqueConstraint("first_seq", name="uq_usage_event_segments_first_seq"),
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # PostgreSQL never stores segments
        driver = bind.connection.driver_connection
        for segment in event_segments.scan(driver):
            rows = [segment.event_row(row) for row in segment.live()]
            insert_rows(driver, _ROWS, 13, rows)
    op.drop_table("usage_event_segments")
