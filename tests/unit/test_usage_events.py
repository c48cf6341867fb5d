"""Usage event validation (SPEC §2): every rejection names its field; equal bodies written
differently have one fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synor_economics.catalog import load_default_catalog
from synor_economics.domain.usage import EventError, UsageEvent, parse_event
from synor_economics.services.time import to_us

RESOURCES = load_default_catalog().resources
NOW_US = to_us(datetime(2026, 11, 20, 12, tzinfo=UTC))


def raw(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "evt_01J",
        "account": "acct_42",
        "resource": "compute.cpu",
        "quantity": "7200",
        "ts": "2026-11-03T10:00:00Z",
        "subject": "vm-17",
        "operator": "node_7",
        "meta": {"region": "eu"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def parse(**changes: Any) -> UsageEvent:
    return parse_event(raw(**changes), RESOURCES, NOW_US)


def test_the_spec_example_parses() -> None:
    event = parse()
    assert event.quantity == Decimal(7200)
    assert event.ts_us == to_us(datetime(2026, 11, 3, 10, tzinfo=UTC))
    assert (event.subject, event.operator, event.meta) == ("vm-17", "node_7", '{"region":"eu"}')


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"id": ...}, "id", "required"),
        ({"id": "has space"}, "id", "A-Z"),
        ({"id": 7}, "id", "string"),
        ({"account": ""}, "account", "printable"),
        ({"resource": "compute.quantum"}, "resource", "unknown"),
        ({"quantity": 7200}, "quantity", "decimal string"),
        ({"quantity": 7200.5}, "quantity", "number"),
        ({"quantity": "7e3"}, "quantity", "plain decimal"),
        ({"quantity": "1." + "1" * 19}, "quantity", "18 decimals"),
        ({"quantity": "NaN"}, "quantity", "plain decimal"),
        ({"quantity": " 1"}, "quantity", "plain decimal"),
        ({"quantity": "-5", "resource": "storage.deal"}, "quantity", "corrections"),
        ({"quantity": "-5", "resource": "storage.storage"}, "quantity", "corrections"),
        ({"ts": "2026-11-03T10:00:00+01:00"}, "ts", "UTC"),
        ({"ts": "2026-11-03 10:00"}, "ts", "RFC 3339"),
        ({"ts": "2026-02-30T10:00:00Z"}, "ts", "real date"),
        ({"ts": "2026-11-03T10:00:00.1234567Z"}, "ts", "RFC 3339"),
        ({"ts": "2026-11-20T12:05:01Z"}, "ts", "future"),
        ({"ts": "2026-10-16T11:59:59Z"}, "ts", "35 days"),
        ({"resource": "storage.storage", "subject": ...}, "subject", "gauge"),
        ({"meta": [1]}, "meta", "object"),
        ({"meta": {"load": 0.5}}, "meta.load", "number"),
        ({"meta": {"k": "x" * 300}}, "meta.k", "longer"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_each_rejection_names_its_field(changes: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(EventError) as caught:
        parse(**changes)
    assert caught.value.field == field
    assert words in caught.value.reason


def test_not_an_object_is_rejected() -> None:
    with pytest.raises(EventError) as caught:
        parse_event(["x"], RESOURCES, NOW_US)
    assert caught.value.field == "event"


def test_window_edges_are_inclusive() -> None:
    assert parse(ts="2026-11-20T12:05:00Z").ts_us == NOW_US + 300_000_000
    assert parse(ts="2026-10-16T12:00:00Z").ts_us == NOW_US - 35 * 86_400_000_000


def test_corrections_where_allowed_and_zero_everywhere() -> None:
    assert parse(quantity="-30").quantity == -30
    assert parse(quantity="0", resource="storage.storage", subject="b").quantity == 0
    assert parse(quantity="-0", resource="storage.deal").quantity == 0


def test_equal_bodies_written_differently_share_a_fingerprint() -> None:
    first = parse()
    same = parse(quantity="7200.000", ts="2026-11-03t10:00:00.000000+00:00", meta={"region": "eu"})
    assert same.fingerprint == first.fingerprint
    for changes in ({"quantity": "7201"}, {"subject": "vm-18"}, {"meta": None}, {"operator": ...}):
        assert parse(**changes).fingerprint != first.fingerprint, changes


@given(st.decimals(-(10**29), 10**29, places=18, allow_nan=False, allow_infinity=False))
def test_any_plain_decimal_round_trips_exactly(value: Decimal) -> None:
    assert parse(quantity=format(value, "f")).quantity == value
