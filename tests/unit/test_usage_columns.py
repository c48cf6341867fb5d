"""The columnar intake path (``services/usage_columns.py``) against the reference validator: a
row it takes is the event ``parse_event`` makes of it, fingerprint and all; a row the reference
refuses is never taken; and plain events are in fact taken (the path is not idle)."""

from __future__ import annotations

import builtins
import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synor_economics.catalog import load_default_catalog
from synor_economics.domain import usage as usage_domain
from synor_economics.domain.usage import EventError, parse_event
from synor_economics.services.usage_columns import ndjson_table, plain_rows
from tests.unit.test_usage_events import _ODD, _PLAIN, NOW_US, RESOURCES, parse, raw

COUNTERS = load_default_catalog().counter_ids


def lines_of(bodies: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(body).encode() for body in bodies]


def reference(body: dict[str, Any]) -> Any:
    try:
        return parse_event(body, RESOURCES, NOW_US)
    except EventError:
        return None


@settings(max_examples=300)
@given(st.lists(st.tuples(_PLAIN, _ODD), min_size=1, max_size=12))
def test_a_row_taken_as_a_column_is_the_reference_event(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    bodies = [{**plain, **odd} for plain, odd in pairs]
    table = ndjson_table(lines_of(bodies))
    if table is None:  # pyarrow could not read the batch: it all goes to the reference
        return
    plain, rest = plain_rows(table, COUNTERS, NOW_US)
    assert sorted([*plain.positions, *rest]) == list(range(len(bodies)))
    for position, event in zip(plain.positions, plain.events.events(), strict=True):
        assert event == reference(bodies[position])


@given(st.lists(_PLAIN, min_size=1, max_size=12))
def test_plain_counter_events_are_all_taken(bodies: list[dict[str, Any]]) -> None:
    counters = [b for b in bodies if b["resource"] in COUNTERS and reference(b) is not None]
    table = ndjson_table(lines_of(counters)) if counters else None
    if table is None:
        assert not counters
        return
    plain, rest = plain_rows(table, COUNTERS, NOW_US)
    assert rest == []
    assert plain.events.events() == [reference(body) for body in counters]


def test_unreadable_batches_are_left_to_the_reference() -> None:
    good = b'{"id":"a","account":"x","resource":"compute.cpu","quantity":"1","ts":"2026-11-03T10:00:00Z"}'  # noqa: E501
    for odd in (
        b'{"id":"b","quantity":7}',  # a number where text belongs
        b'{"id":"b","id":"c"}',  # a repeated key
        b'{"id":"b"}{"id":"c"}',  # two objects on one line
        b'{"id":"b"}\n{"id":"c"}',  # one text of two lines
        b'{"id":"b",\n"account":"y"}',  # one object over two lines
        b'{"id":"b",\r"account":"y"}',
        b"[1, 2]",
        b'{"id": "b"',  # malformed
    ):
        assert ndjson_table([good, odd]) is None, odd
    # Two halves of an object, and a text of two objects: as many rows as texts, out of step.
    halves = [b'{"id":"b",', b'"account":"y"}', b'{"id":"c"}\r{"id":"d"}']
    assert ndjson_table(halves) is None
    assert ndjson_table([b'{"id":"c"} {"id":"d"}', b"  "]) is None  # two objects and a blank
    for readable in (b'{"id":"b","meta":{"a":1}}', b'{"id":"b\xff"}', b'{"id":"b","x":null}'):
        table = ndjson_table([good, readable])
        assert table is not None
        _, rest = plain_rows(table, COUNTERS, NOW_US)
        assert rest == ([0, 1] if b"x" in readable else [1]), readable


def test_dates_that_do_not_exist_and_odd_spellings_go_to_the_reference() -> None:
    stamps = [
        "2026-11-03T10:00:00Z", "2024-02-29T10:00:00Z", "2026-02-29T10:00:00Z",
        "2026-04-31T10:00:00Z", "2026-11-03t10:00:00Z", "2026-11-03T10:00:00.5+00:00",
        "2026-11-03T10:00:00.123456Z", "2026-11-03T10:00:60Z",
    ]  # fmt: skip
    bodies = [
        {"id": f"e{i}", "account": "a", "resource": "compute.cpu", "quantity": "1", "ts": ts}
        for i, ts in enumerate(stamps)
    ]
    table = ndjson_table(lines_of(bodies))
    assert table is not None
    plain, rest = plain_rows(table, COUNTERS, NOW_US)
    assert plain.positions == [0, 5, 6]
    assert rest == [1, 2, 3, 4, 7]  # 2024-02-29 is outside the 35-day window: the reference
    assert [e.ts_us for e in plain.events.events()] == [
        reference(bodies[i]).ts_us for i in plain.positions
    ]


def test_lengths_and_fractions_of_a_second_match_the_reference() -> None:
    """The length limits (checked apart from the patterns) and every spelling of a fraction."""
    fractions = [".120Z", ".000000+00:00", ".1+00:00", ".000001Z", ".999999Z", "+00:00", "Z"]
    bodies = [
        {"id": f"f{i}", "account": "a", "resource": "compute.cpu", "quantity": "1",
         "ts": f"2026-11-03T10:00:00{tail}"}
        for i, tail in enumerate(fractions)
    ] + [
        {"id": "i" * size, "account": "b" * other, "resource": "compute.cpu", "quantity": "1",
         "ts": "2026-11-03T10:00:00Z", "subject": "s" * third}
        for size, other, third in (
            (200, 1, 200), (201, 1, 1), (1, 200, 1), (2, 201, 1), (3, 1, 201)
        )
    ]  # fmt: skip
    table = ndjson_table(lines_of(bodies))
    assert table is not None
    plain, rest = plain_rows(table, COUNTERS, NOW_US)
    assert rest == [8, 10, 11]  # one over 200: the reference refuses it, by name
    assert all(reference(bodies[i]) is None for i in rest)
    assert plain.events.events() == [reference(bodies[i]) for i in plain.positions]


@pytest.mark.parametrize("collide", [False, True], ids=["digests", "every digest colliding"])
def test_rows_are_independent_unless_a_key_repeats(
    monkeypatch: pytest.MonkeyPatch, collide: bool
) -> None:
    """Keys are told apart by their digests' first 64 bits, and where those agree (every key's,
    here, when all digests collide) by the keys themselves: the answer is the same."""
    if collide:
        monkeypatch.setattr(usage_domain, "_key_hash", lambda _: bytes(16))
    bodies = [raw(id=f"e{n}", quantity=str(n + 1), meta=...) for n in range(5)]
    table = ndjson_table(lines_of(bodies))
    assert table is not None
    plain, rest = plain_rows(table, COUNTERS, NOW_US)
    assert rest == []
    assert len(plain.events) == 5
    other = parse(id="x9")
    assert plain.independent_of([])
    assert plain.independent_of([(9, other, None)])
    assert not plain.independent_of([(9, parse(id="e3"), None)])
    table = ndjson_table(lines_of([*bodies, raw(id="e2", quantity="7", meta=...)]))
    assert table is not None
    repeated, _ = plain_rows(table, COUNTERS, NOW_US)
    assert not repeated.independent_of([])
    assert not repeated.independent_of([(9, other, None)])


def test_quantities_written_differently_share_the_reference_fingerprint() -> None:
    """Trailing zeros of a fraction, and a point with nothing after it once they go, are
    dropped for the fingerprint as ``Decimal.normalize`` drops them; a whole number's zeros
    stay."""
    quantities = ["100", "100.00", "100.5", "100.50", "0.000", "0.0100", "10.0", "7", "0", "1.25"]
    bodies = [raw(id=f"e{n}", quantity=q, meta=...) for n, q in enumerate(quantities)]
    table = ndjson_table(lines_of(bodies))
    assert table is not None
    plain, rest = plain_rows(table, COUNTERS, NOW_US)
    assert rest == []
    assert plain.events.events() == [reference(body) for body in bodies]


def test_rows_taken_keep_their_key_digests() -> None:
    bodies = [raw(id=f"e{n}", quantity="1", meta=...) for n in range(6)]
    table = ndjson_table(lines_of(bodies))
    assert table is not None
    events = plain_rows(table, COUNTERS, NOW_US)[0].events
    kept = events.without({1, 4})
    assert kept.ids == ["e0", "e2", "e3", "e5"]
    assert kept.digests == usage_domain.key_digests(usage_domain.key_texts(kept.keys()))
    assert events.take([5, 0]).digests == events.digests[80:96] + events.digests[:16]


def test_a_batch_is_read_without_trying_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow infers the type of a Python value passed to it, and each inference tries an
    import of a package that is not installed; a failed import is not remembered, so each
    searched the path again (~0.1 ms, five times a batch). Values go to it typed."""
    bodies = [raw(quantity=f"{n}.50", meta=...) for n in range(50)]
    for n, body in enumerate(bodies):
        body["id"] = f"e{n}"
    table = ndjson_table(lines_of(bodies))
    assert table is not None
    plain_rows(table, COUNTERS, NOW_US)  # anything imported once is imported now
    tried: list[str] = []
    real_import = builtins.__import__

    def watched(name: str, *args: Any, **kwargs: Any) -> Any:
        absolute = not args[3:4] or args[3] == 0  # a relative import names no module
        if absolute and name not in sys.modules:
            tried.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", watched)
    plain, rest = plain_rows(ndjson_table(lines_of(bodies)) or table, COUNTERS, NOW_US)
    assert len(plain.positions) == 50
    assert not rest
    assert tried == []
