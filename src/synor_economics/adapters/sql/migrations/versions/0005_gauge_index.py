"""The gauge lookup index covers only events with a subject (every gauge event has one).

Counter events, nearly all of usage, were each adding an entry to an index that only gauge
lookups read: about a third of the database's work per ingested event. Rare account-wide reads
(replacements) now go through the account prefix of the dedup key instead.

Revision ID: 0005_gauge_index
Revises: 0004_billing
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_gauge_index"
down_revision = "0004_billing"
branch_labels = None
depends_on = None

_COLUMNS = ["account", "resource", "subject", "ts_us"]


def upgrade() -> None:
    op.drop_index("ix_usage_events_gauge", table_name="usage_events")
    op.create_index(
        "ix_usage_events_gauge",
        "usage_events",
        _COLUMNS,
        sqlite_where=sa.text("subject <> ''"),
        postgresql_where=sa.text("subject <> ''"),
    )


def downgrade() -> None:
    op.drop_index("ix_usage_events_gauge", table_name="usage_events")
    op.create_index("ix_usage_events_gauge", "usage_events", _COLUMNS)
