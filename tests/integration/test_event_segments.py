"""Event segments on SQLite (``adapters/sql/event_segments.py``): a batch's plain events are one
row of columns, numbered from the sequence rows use; dedup finds them by seq (through hash
collisions too: ``test_key_index``), a replacement takes an account's events out as rows and
its revert counts them again, and migration 0012 puts them back as rows and takes them
again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from sqlalchemy import Engine, text

from synor_economics.adapters.sql import event_segments
from synor_economics.adapters.sql.usage_repository import _segment_events
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.usage import EventStatus
from synor_economics.services.replacement import ReplacementService
from synor_economics.services.usage_input import Lines
from tests.conftest import migrated_engine
from tests.integration.test_key_index import service
from tests.integration.test_usage import event, raw_of, statuses
from tests.integration.test_usage_series import migrate_to


def lines(*events: dict[str, object]) -> Lines:
    """Events as NDJSON lines: the columnar path, which stores segments."""
    return Lines([json.dumps(e).encode() for e in events])


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def segments(engine: Engine) -> list[tuple[int, int, bytes | None]]:
    return rows(engine, "SELECT first_seq, events, moved FROM usage_event_segments ORDER BY 1")


def test_plain_batches_are_segments_numbered_with_the_rows(sqlite_url: str) -> None:
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    usage.ingest(lines(event("e1", "1"), event("e2", "2"), event("e3", "3")), source="file")
    usage.ingest([event("g1", "5", resource="storage.storage", subject="b")], source="http")
    usage.ingest(lines(event("e4", "4"), event("e5", "5")), source="file")
    usage.ingest([event("m1", "6", meta={"k": "v"})], source="http")  # meta: a row
    assert segments(engine) == [(1, 3, None), (5, 2, None)]
    assert rows(engine, "SELECT seq, event_id FROM usage_events ORDER BY seq") == [
        (4, "g1"),
        (7, "m1"),
    ]
    assert raw_of(usage, "compute.cpu") == 1 + 2 + 3 + 4 + 5 + 6
    engine.dispose()


def test_events_in_segments_are_found_by_both_paths(sqlite_url: str) -> None:
    """A re-sent event is a duplicate and a changed one a conflict, whether it comes one by one
    (which reads the stored event by seq) or as columns (which reads it only for a conflict)."""
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    usage.ingest(lines(*(event(f"e{i}", str(i)) for i in range(1, 6))), source="file")
    again = [event("e2", "2"), event("e4", "40"), event("e9", "9")]
    one_by_one = usage.ingest(again, source="http")
    as_columns = usage.ingest(lines(event("e3", "3"), event("e5", "50")), source="file")
    assert statuses(one_by_one) == ["duplicate", "conflict", "accepted"]
    assert statuses(as_columns) == ["duplicate", "conflict"]
    assert raw_of(usage, "compute.cpu") == 1 + 2 + 3 + 4 + 5 + 9
    engine.dispose()


def cpu(event_id: str, quantity: int, ts: str, account: str = "acct_42") -> dict[str, object]:
    return event(event_id, str(quantity), account=account, ts=ts)


def test_a_replacement_takes_its_account_s_events_out_of_segments(sqlite_url: str) -> None:
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    replacements = ReplacementService(usage.uow, usage.clock, load_default_catalog())
    sent = [
        cpu("before", 1, "2026-11-09T23:00:00Z"),
        cpu("in-1", 100, "2026-11-10T05:00:00Z"),
        cpu("theirs", 7, "2026-11-10T05:00:00Z", account="acct_2"),
        cpu("in-2", 200, "2026-11-10T23:00:00Z"),
        cpu("after", 1000, "2026-11-11T00:00:00Z"),
    ]
    usage.ingest(lines(*sent), source="file")
    report = replacements.replace(
        "acct_42",
        datetime(2026, 11, 10, tzinfo=UTC),
        datetime(2026, 11, 11, tzinfo=UTC),
        [cpu("in-1", 150, "2026-11-10T05:00:00Z")],
    )
    assert report.replacement.superseded == 2
    assert raw_of(usage, "compute.cpu") == 1 + 150 + 1000
    # The two events are rows now, with their seqs, out of the count; the segment skips them.
    assert rows(engine, "SELECT seq, event_id, superseded_by FROM usage_events ORDER BY 1")[:2] == [
        (2, "in-1", report.replacement.seq),
        (4, "in-2", report.replacement.seq),
    ]
    ((_, _, moved),) = segments(engine)
    assert moved is not None
    (segment,) = event_segments.scan(engine.raw_connection().driver_connection)
    assert [segment.columns[1][row] for row in segment.live()] == ["before", "theirs", "after"]
    late = usage.ingest(lines(cpu("in-2", 200, "2026-11-10T23:00:00Z")), source="file")
    assert statuses(late) == ["duplicate"]  # a late copy of what was first sent
    replacements.revert(report.replacement.seq)
    assert raw_of(usage, "compute.cpu") == 1301
    # A second replacement of the window takes nothing more out of the segment.
    again = replacements.replace(
        "acct_42",
        datetime(2026, 11, 10, tzinfo=UTC),
        datetime(2026, 11, 11, tzinfo=UTC),
        [cpu("in-9", 9, "2026-11-10T06:00:00Z")],
    )
    assert again.replacement.superseded == 2
    assert raw_of(usage, "compute.cpu") == 1 + 9 + 1000
    assert [r.raw for r in usage.period_usage("acct_2", "2026-11").resources] == [7]
    engine.dispose()


def test_migration_0012_puts_segments_back_as_rows_and_back(sqlite_url: str) -> None:
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    replacements = ReplacementService(usage.uow, usage.clock, load_default_catalog())
    usage.ingest(lines(*(event(f"e{i}", str(i)) for i in range(1, 6))), source="file")
    usage.ingest(lines(event("x1", "10", ts="2026-11-12T01:00:00Z")), source="file")
    replacements.replace(  # takes x1 out as a row
        "acct_42", datetime(2026, 11, 12, tzinfo=UTC), datetime(2026, 11, 13, tzinfo=UTC), []
    )
    total = raw_of(usage, "compute.cpu")
    migrate_to(engine, "0011_usage_series")
    assert rows(engine, "SELECT seq, event_id FROM usage_events ORDER BY seq") == [
        *((i, f"e{i}") for i in range(1, 6)),
        (6, "x1"),
    ]
    migrate_to(engine, "head")
    usage = service(engine)
    assert raw_of(usage, "compute.cpu") == total
    assert statuses(usage.ingest([event("e3", "3"), event("e4", "44")], source="http")) == [
        "duplicate",
        "conflict",
    ]
    replay = usage.ingest(lines(*(event(f"e{i}", str(i)) for i in range(1, 7))), source="file")
    assert replay.counts() == {EventStatus.DUPLICATE: 5, EventStatus.ACCEPTED: 1}
    assert segments(engine) == [(7, 1, None)]  # e6: numbered after the rows
    assert raw_of(usage, "compute.cpu") == total + 6
    engine.dispose()


def test_a_segment_of_an_unknown_format_is_refused() -> None:
    packed = event_segments.pack((["a"], ["e"], ["compute.cpu"], ["1"], [0], [""], [""], ["f"]))
    assert msgspec.msgpack.decode(event_segments.unpack(packed)[1]) == ["e"]
    with pytest.raises(ValueError, match="format"):
        event_segments.unpack(b"\x99\x02" + packed[2:])


def test_a_segment_decodes_only_the_columns_read(sqlite_url: str) -> None:
    """A gauge's history looks at a segment's resources and no further; a reader of one column
    decodes that column alone."""
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    usage.ingest(lines(event("e1", "1"), event("e2", "2")), source="file")
    driver = engine.raw_connection().driver_connection
    (segment,) = event_segments.scan(driver)
    assert list(_segment_events(segment, "acct_42", {"storage.storage"}, 0, None)) == []
    assert set(segment._decoded) == {event_segments.RESOURCE}
    assert segment.column(event_segments.EVENT_ID) == ["e1", "e2"]
    assert set(segment._decoded) == {event_segments.RESOURCE, event_segments.EVENT_ID}
    counted = list(_segment_events(segment, "acct_42", {"compute.cpu"}, 0, None))
    assert [(e.quantity, e.seq) for e in counted] == [(Decimal(1), 1), (Decimal(2), 2)]
    engine.dispose()
