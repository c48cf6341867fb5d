"""The SQLite key index gets a check per entry, so a replayed event is known without its row.

Each entry of ``usage_key_runs`` held a 64-bit hash of the key and the row's ``seq``: every
candidate's row was read back to compare keys and fingerprints, and for a replayed file that
read cost more than the rest of ingestion. Keys are now hashed to 128 bits, and an entry also
holds a check (the other 64 bits mixed with the body fingerprint's first 64), so an event whose
sort key and check agree is a duplicate without a read (``key_index.py`` says why that is exact
enough). The runs are rebuilt from the events stored (generation 0); on PostgreSQL,
which keeps its UNIQUE constraint, the table stays empty.

Revision ID: 0009_usage_key_checks
Revises: 0008_usage_hourly_log
Create Date: 2026-11-24
"""

from __future__ import annotations

import secrets

import numpy as np
import sqlalchemy as sa
import xxhash
from alembic import op

from synor_economics.adapters.sql.key_index import index_stored

revision = "0009_usage_key_checks"
down_revision = "0008_usage_hourly_log"
branch_labels = None
depends_on = None

_STORED = sa.text(
    "SELECT seq, account, event_id, fingerprint FROM usage_events WHERE generation = 0 ORDER BY seq"
)


def upgrade() -> None:
    op.execute("DELETE FROM usage_key_runs")  # runs of the old form: rebuilt below
    with op.batch_alter_table("usage_key_runs", recreate="always") as batch:  # SQLite: a new table
        batch.add_column(sa.Column("checks", sa.LargeBinary, nullable=False))
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        index_stored(bind.connection.driver_connection)


def downgrade() -> None:
    """Back to 0008's form: one run of 64-bit key hashes (xxh3) and rows, spelled out here
    because the key index no longer writes it."""
    op.execute("DELETE FROM usage_key_runs")
    with op.batch_alter_table("usage_key_runs", recreate="always") as batch:
        batch.drop_column("checks")
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    stored = bind.execute(_STORED).all()
    if not stored:
        return
    hashes = np.array(
        [xxhash.xxh3_64_intdigest(f"{a}\x1f{i}".encode()) for _, a, i, _ in stored],
        dtype=np.uint64,
    )
    seqs = np.array([seq for seq, _, _, _ in stored], dtype=np.int64)
    order = np.argsort(hashes, kind="stable")
    driver = bind.connection.driver_connection
    assert driver is not None
    driver.execute(
        "INSERT INTO usage_key_runs (token, entries, hashes, seqs) VALUES (?, ?, ?, ?)",
        (
            secrets.token_bytes(16),
            len(stored),
            hashes[order].astype("<u8").tobytes(),
            seqs[order].astype("<i8").tobytes(),
        ),
    )
