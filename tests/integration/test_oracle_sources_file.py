"""The oracle's sources file: what it accepts, and each mistake named with its place; and
readings of every kind (accumulator, pool TWAP, feed quote) going through one round."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.oracle.json_feed import JsonFeedSource
from synor_economics.adapters.oracle.sources_file import (
    SourcesFileError,
    build_sources,
    read_sources_file,
)
from synor_economics.adapters.sql.uow import ORACLE_LOCK_KEY, SqlUnitOfWork
from synor_economics.domain.price_aggregate import Policy
from synor_economics.ports import PriceReading
from synor_economics.services.oracle import OracleConfig, OracleService
from tests.conftest import migrated_engine

GOOD = """
[[source]]
name = "v2"
kind = "uniswap-v2"
pair = "0x0000000000000000000000000000000000000001"

[[source]]
name = "v3"
kind = "uniswap-v3"
pool = "0x0000000000000000000000000000000000000002"

[[source]]
name = "feed"
kind = "json-feed"
url = "http://127.0.0.1:1/price"
weight = "25000"
"""


def test_a_good_file_is_read_and_feeds_need_no_chain(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(GOOD)
    entries = read_sources_file(path)
    assert [e["kind"] for e in entries] == ["uniswap-v2", "uniswap-v3", "json-feed"]

    def no_chain() -> object:
        raise AssertionError("a feed alone must not reach the chain")

    (feed,) = build_sources(entries[2:], no_chain, no_chain, lambda: 0, 1800)  # type: ignore[arg-type]
    assert isinstance(feed, JsonFeedSource)
    assert feed.name == "feed"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no \\[\\[source\\]\\] entries"),
        ("[[source]]\nkind = 'json-feed'\n", "source\\[0\\]: name is required"),
        ("[[source]]\nname = 'a'\nkind = 'oracle'\n", "kind must be one of"),
        ("[[source]]\nname = 'a'\nkind = 'uniswap-v2'\n", "pair is required for uniswap-v2"),
        ("[[source]]\nname = 'a'\nkind = 'uniswap-v3'\n", "pool is required for uniswap-v3"),
        (
            "[[source]]\nname = 'a'\nkind = 'json-feed'\nurl = 'http://x'\nweight = 1.5\n",
            "weight must be a positive decimal string",
        ),
        (
            "[[source]]\nname = 'a'\nkind = 'json-feed'\nurl = 'http://x'\nweight = '-1'\n",
            "weight must be a positive decimal string",
        ),
        (
            "[[source]]\nname = 'a'\nkind = 'uniswap-v2'\npair = '0x1'\n"
            "[[source]]\nname = 'a'\nkind = 'uniswap-v2'\npair = '0x1'\n",
            "source\\[1\\]: the name 'a' is used twice",
        ),
        ("[[source]\n", "sources.toml"),
    ],
)
def test_each_mistake_is_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    with pytest.raises(SourcesFileError, match=problem):
        read_sources_file(path)


class Scripted:
    """A source answering readings the test writes (the real ones are tested on chain)."""

    def __init__(self, name: str, readings: list[PriceReading]) -> None:
        self._name = name
        self.readings = readings

    @property
    def name(self) -> str:
        return self._name

    def read(self) -> PriceReading:
        return self.readings.pop(0)


def test_accumulators_pool_twaps_and_feed_quotes_meet_in_one_round(sqlite_url: str) -> None:
    t0, t1 = 1_900_000_000, 1_900_001_800
    unit = Fraction(1, 10**6)  # one accumulator unit per second = 0.000001 USD
    accumulator = Scripted(
        "v2",
        [
            PriceReading("v2", t0, 2**256 - 10_000, unit, None, Fraction(50_000)),
            PriceReading("v2", t1, 20_000 * 1800 - 10_000, unit, None, Fraction(50_000)),
        ],  # the accumulator wrapped: 20,000 units/s = 0.02 USD, across the 2**256 edge
    )
    pool = Scripted(
        "v3",
        [
            PriceReading("v3", t0, None, Fraction(1), None, Fraction(40_000), Fraction(0), 0),
            PriceReading(
                "v3", t1, None, Fraction(1), None, Fraction(40_000), Fraction(201, 10_000), 1800
            ),
        ],
    )
    feed = Scripted(
        "feed",
        [
            PriceReading("feed", t0, None, Fraction(1), Fraction(19, 1000), Fraction(30_000)),
            PriceReading("feed", t1, None, Fraction(1), Fraction(21, 1000), Fraction(30_000)),
        ],
    )
    clock = FixedClock(datetime.fromtimestamp(t0, UTC))
    oracle = OracleService(
        SqlUnitOfWork(migrated_engine(sqlite_url), lock_key=ORACLE_LOCK_KEY),
        clock,
        OracleConfig(window=1800, policy=Policy(min_history=1800)),
        sources=lambda: [accumulator, pool, feed],
    )
    assert not oracle.run_round().quorum_met
    clock.at = datetime.fromtimestamp(t1, UTC)
    row = oracle.run_round()
    assert row.quorum_met
    quotes = {name: q["twap"] for name, q in json.loads(row.detail).items()}
    # v2 from the accumulator's difference; v3 as the pool gave it; the feed's 0.019 held
    # the whole window (its 0.021 arrived at the window's end)
    assert quotes == {"v2": "0.02", "v3": "0.0201", "feed": "0.019"}
    assert row.price == Fraction(2, 100)  # weights 30,000 / 50,000 / 40,000


class RefusingChain:
    def submit(self, price_e18: int) -> dict[str, object]:
        from synor_economics.adapters.chain.evm import ChainError

        raise ChainError(f"submit of {price_e18} reverted: paused")


def test_a_round_stands_when_the_chain_refuses_its_submission(sqlite_url: str) -> None:
    t0 = 1_900_000_000
    feeds = [
        Scripted(
            f"feed:{n}",
            [
                PriceReading(
                    f"feed:{n}", t0, None, Fraction(1), Fraction(2, 100), Fraction(20_000)
                ),
                PriceReading(
                    f"feed:{n}", t0 + 60, None, Fraction(1), Fraction(2, 100), Fraction(20_000)
                ),
            ],
        )
        for n in range(3)
    ]
    clock = FixedClock(datetime.fromtimestamp(t0, UTC))
    oracle = OracleService(
        SqlUnitOfWork(migrated_engine(sqlite_url), lock_key=ORACLE_LOCK_KEY),
        clock,
        OracleConfig(window=60, policy=Policy(min_history=60)),
        sources=lambda: feeds,
        publisher=RefusingChain,
    )
    oracle.run_round()
    clock.at = datetime.fromtimestamp(t0 + 60, UTC)
    row = oracle.run_round()
    assert row.price == Fraction(2, 100)
    assert row.submitted is not None
    assert json.loads(row.submitted) == {"error": "submit of 20000000000000000 reverted: paused"}
    assert oracle.price().price == Fraction(2, 100)  # the round stands
