"""The SQLite fold of the rollup log (``usage_repository._FOLD``) adds small whole numbers in
SQL and leaves every other pair to ``synor_exact_add``: for every pair, its sum is the text
``synor_exact_add`` makes, exactly."""

from __future__ import annotations

import itertools
import sqlite3

from synor_economics.adapters.sql.engine import exact_add
from synor_economics.adapters.sql.usage_repository import _FOLD

_QUANTITIES = [
    "0", "-0", "5", "-5", "7", "12", "017", "1E3", "1.5", "-2.25", "0.000000000000000001",
    "99999999999999999", "999999999999999999", "-99999999999999999", "9999999999999999999",
    "9223372036854775807", "100000000000000000000", "123456789012345678901234567890.5",
]  # fmt: skip


def test_every_pair_folds_to_its_exact_sum() -> None:
    db = sqlite3.connect(":memory:")
    calls: list[tuple[str, str]] = []

    def counted_add(left: str, right: str) -> str:
        calls.append((left, right))
        return exact_add(left, right)

    db.create_function("synor_exact_add", 2, counted_add, deterministic=True)
    db.execute(
        "CREATE TABLE usage_hourly (series INTEGER, hour_us INTEGER, quantity TEXT, "
        "events INTEGER, PRIMARY KEY (series, hour_us)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE usage_hourly_log (seq INTEGER PRIMARY KEY, series INTEGER, "
        "hour_us INTEGER, quantity TEXT, events INTEGER)"
    )
    pairs = list(itertools.product(_QUANTITIES, repeat=2))
    db.executemany(
        "INSERT INTO usage_hourly_log (series, hour_us, quantity, events) VALUES (?, 0, ?, 1)",
        [(n, quantity) for n, pair in enumerate(pairs) for quantity in pair],
    )
    db.execute(_FOLD)
    folded = dict(db.execute("SELECT series, quantity FROM usage_hourly").fetchall())
    assert folded == {n: exact_add(left, right) for n, (left, right) in enumerate(pairs)}
    assert db.execute("SELECT SUM(events) FROM usage_hourly").fetchone() == (2 * len(pairs),)
    whole = {"0", "5", "-5", "7", "12", "99999999999999999", "999999999999999999"}
    in_sql = {pair for pair in pairs if set(pair) <= {*whole, "-99999999999999999"}}
    assert in_sql  # the pairs SQLite adds itself never reach the callback; the rest all do
    assert set(calls) == set(pairs) - in_sql
