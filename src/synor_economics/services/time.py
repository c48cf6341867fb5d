"""Instants as the ledger stores them: integer microseconds since the Unix epoch, UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from synor_economics.domain.instants import from_us, to_us

__all__ = ["from_us", "instant", "to_us"]


def instant(moment: datetime | None) -> str | None:
    """An RFC 3339 UTC instant with a ``Z``, as every document writes times."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
