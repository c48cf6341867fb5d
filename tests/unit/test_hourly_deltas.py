"""A columnar batch's rollup deltas, by key (``services/usage._hourly_deltas``) and as columns
made where a batch is screened (``services/usage_columns.hourly_deltas``): sums by account,
resource and hour made in C where each hour has one event, added up exactly where it has
several; both held to a plain loop of exact additions."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from synor_economics.domain.meters import HOUR_US
from synor_economics.domain.usage import EventColumns
from synor_economics.ports import HourlyDeltas
from synor_economics.services.usage import _hourly_deltas
from synor_economics.services.usage_columns import hourly_deltas

_START = 1_790_000_000_000_000 - 1_790_000_000_000_000 % HOUR_US
_EVENT = st.tuples(
    st.sampled_from(["acct_a", "acct_b"]),
    st.sampled_from(["compute.cpu", "database.queries"]),
    st.integers(0, 5 * HOUR_US - 1).map(lambda offset: _START + offset),
    st.one_of(  # as canonical text: fractions, and whole numbers (added up by numpy) of
        # counters, negative ones of corrections, and some so large a sum might not fit 64 bits
        st.decimals(min_value=0, max_value=10**6, places=6).map(lambda q: format(q, "f")),
        st.integers(-(10**6), 10**6).map(str),
        st.integers(-(10**18) + 1, 10**18 - 1).map(str),
    ),
)


@settings(max_examples=300)
@given(st.lists(_EVENT, max_size=40))
def test_deltas_are_the_exact_sums_by_hour(events: list[tuple[str, str, int, str]]) -> None:
    columns = _event_columns(events)
    expected: dict[tuple[str, str, int], tuple[Decimal, int]] = {}
    for account, resource, ts_us, quantity in events:
        key = (account, resource, ts_us - ts_us % HOUR_US)
        total, count = expected.get(key, (Decimal(0), 0))
        expected[key] = (total + Decimal(quantity), count + 1)
    deltas = _hourly_deltas(columns)
    assert all(type(quantity) is str for quantity, _ in deltas.values())
    assert {key: (Decimal(q), n) for key, (q, n) in deltas.items()} == expected
    singles = {key for key, (_, n) in expected.items() if n == 1}
    for account, resource, ts_us, quantity in events:  # one event: its text, as it is
        key = (account, resource, ts_us - ts_us % HOUR_US)
        if key in singles:
            assert deltas[key][0] == quantity


@settings(max_examples=300)
@given(st.lists(_EVENT, max_size=40))
def test_columnar_deltas_are_the_same_sums(events: list[tuple[str, str, int, str]]) -> None:
    """``usage_columns.hourly_deltas``, made from the screened columns, holds the same sums
    and counts, and a single event's quantity text as it is."""
    accounts = [a for a, _, _, _ in events]
    resources = [r for _, r, _, _ in events]
    stamps = [t for _, _, t, _ in events]
    quantities = [q for _, _, _, q in events]
    columns = hourly_deltas(
        pa.chunked_array([pa.array(accounts, pa.string())]),
        pa.chunked_array([pa.array(resources, pa.string())]),
        np.array(stamps, dtype=np.int64),
        pa.chunked_array([pa.array(quantities, pa.string())]),
    )
    by_key = {
        (*columns.pairs[pair], hour): (quantity, n)
        for pair, hour, quantity, n in zip(
            columns.pair, columns.hour_us, columns.quantity, columns.events, strict=True
        )
    }
    assert len(by_key) == len(columns)
    reference = _hourly_deltas(_event_columns(events))
    assert by_key == reference


def _event_columns(events: list[tuple[str, str, int, str]]) -> EventColumns:
    return EventColumns(
        accounts=[a for a, _, _, _ in events],
        ids=[str(n) for n in range(len(events))],
        resources=[r for _, r, _, _ in events],
        quantities=[q for _, _, _, q in events],
        ts_us=[t for _, _, t, _ in events],
        subjects=[""] * len(events),
        operators=[""] * len(events),
        fingerprints=[""] * len(events),
        digests=bytes(16 * len(events)),
    )


def test_deltas_by_key_become_columns() -> None:
    deltas = HourlyDeltas.of(
        {
            ("a", "cpu", 0): (Decimal("1.50"), 2),
            ("b", "cpu", 3600): ("7", 1),
            ("a", "cpu", 7200): ("2", 1),
        }
    )
    assert deltas.pairs == [("a", "cpu"), ("b", "cpu")]
    assert (deltas.pair, deltas.hour_us, deltas.quantity, deltas.events) == (
        [0, 1, 0],
        [0, 3600, 7200],
        ["1.50", "7", "2"],
        [2, 1, 1],
    )


def test_whole_sums_too_large_for_64_bits_are_exact() -> None:
    """Ten 18-digit counts in one hour add up past 2^63: they are added in ``Decimal``, not
    numpy's wrapping integers."""
    events = [("acct_a", "compute.cpu", _START + n, "999999999999999999") for n in range(10)]
    events += [
        ("acct_a", "compute.cpu", _START + HOUR_US, "2"),
        ("acct_a", "compute.cpu", _START + HOUR_US, "-3"),
    ]
    columns = hourly_deltas(
        pa.chunked_array([pa.array([a for a, _, _, _ in events], pa.string())]),
        pa.chunked_array([pa.array([r for _, r, _, _ in events], pa.string())]),
        np.array([t for _, _, t, _ in events], dtype=np.int64),
        pa.chunked_array([pa.array([q for _, _, _, q in events], pa.string())]),
    )
    assert columns.quantity == ["9999999999999999990", "-1"]
    assert columns.events == [10, 2]
