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
from synor_economics.domain.usage import (
    EventError,
    EventKeys,
    UsageEvent,
    _checked_event,
    parse_event,
)
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


def _outcome(call: Any) -> Any:
    try:
        return call()
    except EventError as error:
        return ("error", error.field, error.reason)


_TEXT = st.one_of(
    st.sampled_from(["evt_1", "acct_42", "vm 17", "", "x" * 201, "node/7:a-b.c", "é"]),
    st.text(min_size=0, max_size=12),
    st.integers(),
    st.none(),
)
_QUANTITIES = st.one_of(
    st.sampled_from(["7200", "7200.50", "007", "-5", "-0", "0", "1e3", " 1", "1.", ".5"]),
    st.decimals(-(10**31), 10**31, places=19, allow_nan=False, allow_infinity=False).map(str),
    st.integers(),
    st.floats(allow_nan=False),
)
_TIMES = st.one_of(
    st.sampled_from([
        "2026-11-03T10:00:00Z", "2026-11-03t10:00:00z", "2026-11-03T10:00:00.5Z",
        "2026-11-03T10:00:00.123456+00:00", "2026-11-03T10:00:00.1234567Z",
        "2026-11-03 10:00:00Z", "2026-02-30T10:00:00Z", "2026-11-03T24:00:00Z",
        "2026-11-20T12:05:00Z", "2026-11-20T12:05:00.000001Z", "2026-10-16T12:00:00Z",
        "2026-10-16T11:59:59.999999Z", "2026-11-03T10:00:00+01:00", "2026-11-03T10:00:60Z",
    ]),
    st.datetimes(datetime(2026, 9, 1), datetime(2027, 1, 1)).map(
        lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ),
)  # fmt: skip


_PLAIN = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,30}", fullmatch=True),
        "account": st.from_regex(r"[!-~]{1,30}", fullmatch=True),
        "resource": st.sampled_from(["compute.cpu", "storage.deal", "network.egress"]),
        "quantity": st.decimals(0, 10**12, places=6, allow_nan=False).map(lambda d: f"{d:f}"),
        "ts": st.datetimes(datetime(2026, 10, 15), datetime(2026, 11, 21)).map(
            lambda moment: (
                moment.strftime("%Y-%m-%dT%H:%M:%S")
                + moment.strftime(".%f")[: moment.microsecond % 7 + 1] * (moment.microsecond % 2)
                + ("Z" if moment.second % 2 else "+00:00")
            )
        ),
    },
    optional={"subject": st.from_regex(r"[!-~]{1,20}", fullmatch=True), "operator": _TEXT},
)
_FIELDS = ["id", "account", "quantity", "ts", "subject", "operator", "meta", "resource", "x"]
_ODD = st.dictionaries(
    st.sampled_from(_FIELDS),
    st.one_of(_TEXT, _QUANTITIES, _TIMES, st.just({"a": 1}), st.just({"a": 1.5})),
    max_size=2,
)  # fmt: skip


@given(_PLAIN, _ODD)
def test_the_fast_path_gives_the_careful_paths_answer(
    plain: dict[str, Any], odd: dict[str, Any]
) -> None:
    """``parse_event`` takes plain events on a fast path; whatever it answers (an event or the
    first thing wrong) must be what the field-by-field reference answers."""
    body = {**plain, **odd}
    fast = _outcome(lambda: parse_event(body, RESOURCES, NOW_US))
    careful = _outcome(lambda: _checked_event(body, RESOURCES, NOW_US))
    assert fast == careful
    assert _outcome(lambda: parse_event(body, RESOURCES, None)) == _outcome(
        lambda: _checked_event(body, RESOURCES, None)
    )


def test_event_keys_are_the_pairs_of_their_columns() -> None:
    """Keys made only when read are the (account, id) pairs a list of them would hold."""
    accounts, ids = ["a", "b", "a"], ["1", "2", "3"]
    keys = EventKeys(accounts, ids)
    pairs = list(zip(accounts, ids, strict=True))
    assert len(keys) == 3
    assert list(keys) == pairs
    assert [keys[row] for row in range(3)] == pairs
    assert keys[-1] == ("a", "3")
    assert keys[1:] == pairs[1:]
    assert ("b", "2") in keys
    assert ("b", "3") not in keys
    assert set(keys) == set(pairs)
    with pytest.raises(IndexError):
        keys[3]
    with pytest.raises(ValueError, match="as many"):
        EventKeys(accounts, ids[:2])
