"""Usage events' body fingerprints are 128 bits of xxh3 instead of blake2b.

A fingerprint only tells a duplicate from a conflict, and blake2b took about a quarter of the
columnar path's validation time (``domain.usage.body_digest`` says why xxh3 is enough). The
stored fingerprints are made again from the stored bodies, each first checked against the one
it replaces (a body that does not give its stored fingerprint stops the migration: it could not
be rewritten faithfully). On SQLite the key index's checks mix in the fingerprint, so its runs
are rebuilt. The downgrade does the same the other way.

Revision ID: 0010_usage_fingerprints
Revises: 0009_usage_key_checks
Create Date: 2026-11-24
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import xxhash
from alembic import op

from synor_economics.adapters.sql.key_index import index_stored

revision = "0010_usage_fingerprints"
down_revision = "0009_usage_key_checks"
branch_labels = None
depends_on = None

_BODIES = sa.text(
    "SELECT seq, resource, quantity, ts_us, subject, operator, meta, fingerprint "
    "FROM usage_events WHERE seq > :after ORDER BY seq LIMIT :rows"
)
_SET = sa.text("UPDATE usage_events SET fingerprint = :fingerprint WHERE seq = :seq")
_ROWS_PER_UPDATE = 10_000
"""Events read and rewritten at a time: memory stays bounded however many are stored."""

Digest = Callable[[bytes], str]


def _blake2b(text: bytes) -> str:
    return hashlib.blake2b(text, digest_size=16).hexdigest()


_XXH3: Digest = xxhash.xxh3_128_hexdigest


def upgrade() -> None:
    _rewrite(_blake2b, _XXH3)


def downgrade() -> None:
    _rewrite(_XXH3, _blake2b)


def _rewrite(old: Digest, new: Digest) -> None:
    """Every event's fingerprint made with ``new`` from its body, which must give its stored
    fingerprint with ``old``; then (SQLite) the key index rebuilt."""
    bind = op.get_bind()
    after = 0
    while rows := bind.execute(_BODIES, {"after": after, "rows": _ROWS_PER_UPDATE}).all():
        bind.execute(_SET, [{"seq": row.seq, "fingerprint": _again(row, old, new)} for row in rows])
        after = rows[-1].seq
    if bind.dialect.name == "sqlite":
        index_stored(bind.connection.driver_connection)


def _again(row: sa.Row[Any], old: Digest, new: Digest) -> str:
    """The event's fingerprint made with ``new``, once its body is seen to give its stored
    one with ``old`` (the text ``domain.usage.usage_event`` digests)."""
    seq, resource, quantity, ts_us, subject, operator, meta, stored = tuple(row)
    normal = format(Decimal(str(quantity)).normalize(), "f")
    body = "\x1f".join(map(str, (resource, normal, ts_us, subject, operator, meta))).encode()
    if old(body) != stored:
        raise RuntimeError(
            f"usage event {seq}: its body does not give its stored fingerprint, so it cannot "
            "be fingerprinted again; the database was left as it was"
        )
    return new(body)
