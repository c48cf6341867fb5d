"""The SYNOR/USD oracle end to end on real parts: genuine Uniswap v2 pairs on the in-process
EVM, JSON feeds over HTTP, rounds stored in SQLite, prices submitted to the PriceOracle
contract, and billing locking (or refusing) the rate.

Includes the manipulation tests of the issue: a 10× spike in one pool for one block, a pool
under the liquidity floor, and the loss of the quorum.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from web3.contract import Contract

from synor_economics.adapters.chain.deployment import deploy_all, local_plan
from synor_economics.adapters.chain.evm import EvmChain
from synor_economics.adapters.oracle.json_feed import JsonFeedSource
from synor_economics.adapters.oracle.publisher import OracleContractPublisher
from synor_economics.adapters.oracle.uniswap_v2 import UniswapV2Source
from synor_economics.adapters.sql.uow import ORACLE_LOCK_KEY, SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.price_aggregate import Policy
from synor_economics.ports import OracleRound, PriceSource
from synor_economics.services.billing import BillingService
from synor_economics.services.oracle import OracleConfig, OracleService, OracleStaleError
from tests.conftest import migrated_engine
from tests.integration.uniswap_kit import (
    ChainClock,
    Pair,
    create_pair,
    deploy_factory,
    deploy_test_token,
)

E18 = 10**18
WINDOW = 1800


class Feed(BaseHTTPRequestHandler):
    """A JSON feed; ``prices`` maps the path to the price it answers (absent: 503)."""

    prices: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        price = self.prices.get(self.path)
        body = b"{}" if price is None else json.dumps({"price": price}).encode()
        self.send_response(200 if price is not None else 503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Market:
    chain: EvmChain
    synor: Contract
    pairs: list[Pair]
    thin: Pair
    oracle_address: str
    feeds_url: str


@pytest.fixture(scope="module")
def chain() -> EvmChain:
    return EvmChain.in_process()


@pytest.fixture(scope="module")
def feeds() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def deployed(chain: EvmChain, feeds: str) -> Market:
    """The project's contracts, five SYNOR/stablecoin pools near 0.02 USD and a thin one."""
    signers = chain.funded_signers()
    owner = signers[0]
    addresses = deploy_all(chain, local_plan(chain, reporters=3, heartbeat=WINDOW)).addresses
    synor = chain.contract("SynorToken", addresses["SynorToken"])
    factory = deploy_factory(chain, owner)
    pairs = []
    # (SYNOR in the pool, USD in the pool): 0.0199, 0.02, 0.02, 0.0201, 0.0202 USD per SYNOR
    for synor_amount, usd in (
        (1_000_000, 19_900),
        (2_500_000, 50_000),
        (1_500_000, 30_000),
        (4_000_000, 80_400),
        (1_000_000, 20_200),
        (100_000, 2_000),  # the thin pool: 4,000 USD of liquidity, under the 10,000 floor
    ):
        stable = deploy_test_token(chain, owner, 10**9 * E18)
        pair = create_pair(chain, owner, factory, synor, stable)
        pair.fund(owner, synor, synor_amount * E18, usd * E18)
        pairs.append(pair)
    return Market(chain, synor, pairs[:5], pairs[5], addresses["PriceOracle"], feeds)


@pytest.fixture
def market(deployed: Market) -> Iterator[Market]:
    snapshot = deployed.chain.snapshot()
    Feed.prices = {}
    yield deployed
    deployed.chain.revert(snapshot)


def oracle_on(
    market: Market, sqlite_url: str, *, feeds: int = 0, quorum: int = 3
) -> tuple[OracleService, ChainClock]:
    chain = market.chain
    clock = ChainClock(chain)
    sources: list[PriceSource] = [
        UniswapV2Source(chain, f"v2:{i}", pair.pair.address, market.synor.address)
        for i, pair in enumerate([*market.pairs, market.thin])
    ]
    sources += [
        JsonFeedSource(
            f"feed:{i}",
            f"{market.feeds_url}/{i}",
            weight=Fraction(30_000),
            now=lambda: int(clock.now().timestamp()),
        )
        for i in range(feeds)
    ]
    publisher = OracleContractPublisher(chain, market.oracle_address, chain.funded_signers()[1:4])
    config = OracleConfig(
        window=WINDOW,
        max_age=3600,
        policy=Policy(quorum=quorum, min_history=WINDOW, liquidity_floor=Fraction(10_000)),
    )
    uow = SqlUnitOfWork(migrated_engine(sqlite_url), lock_key=ORACLE_LOCK_KEY)
    service = OracleService(
        uow, clock, config, sources=lambda: sources, publisher=lambda: publisher
    )
    return service, clock


def later(chain: EvmChain, seconds: int) -> None:
    """Let ``seconds`` pass on the chain (the next block is mined then)."""
    chain.travel(chain.block("latest")[2] + seconds)


def first_good_round(oracle: OracleService, chain: EvmChain) -> OracleRound:
    """A first round (its readings start the history), then one a window later: the first
    that can have a price."""
    oracle.run_round()
    later(chain, WINDOW + 60)
    return oracle.run_round()


def test_a_round_needs_history_then_publishes_the_liquidity_weighted_median(
    market: Market, sqlite_url: str
) -> None:
    oracle, _ = oracle_on(market, sqlite_url)
    first = oracle.run_round()
    assert not first.quorum_met
    assert first.price is None
    with pytest.raises(OracleStaleError, match="no price yet"):
        oracle.price()

    later(market.chain, WINDOW + 60)
    second = oracle.run_round()
    assert second.quorum_met
    assert second.price is not None
    # Liquidity: 39,800 / 100,000 / 60,000 / 160,800 / 40,400 USD; half of 401,000 is reached
    # in the 0.02 pools (39,800 + 100,000 + 60,000 = 199,800 < 200,500 ≤ +160,800 → 0.0201).
    assert second.price == Fraction(201, 10_000)
    detail = json.loads(second.detail)
    assert detail["v2:5"]["used"] is False
    assert "liquidity below the floor" in detail["v2:5"]["reason"]  # the thin pool
    assert second.low is not None
    assert second.high is not None
    assert second.low < second.price < second.high

    # Submitted by the three reporters: the contract's median is the round's price.
    price, _, round_id, stale = (
        market.chain.contract("PriceOracle", market.oracle_address).functions.latest().call()
    )
    assert price == int(second.price * E18)
    assert round_id == 1
    assert not stale
    assert second.submitted is not None
    assert json.loads(second.submitted)["chain_round"] == 1

    current = oracle.price()
    assert current.price == second.price
    assert not current.stale


def test_a_ten_fold_spike_in_one_pool_for_one_block_moves_the_price_less_than_one_percent(
    market: Market, sqlite_url: str
) -> None:
    oracle, _ = oracle_on(market, sqlite_url)
    chain = market.chain
    trader = chain.funded_signers()[0]
    before = first_good_round(oracle, chain).price
    assert before is not None

    # The biggest pool (the median's own) is pushed to ten times its price for one block:
    # someone buys SYNOR with enough stablecoin, and sells it all back in the next block.
    biggest = market.pairs[3]
    stable = biggest.other(market.synor)
    later(chain, 600)
    usd_reserve, _ = biggest.reserves(stable)
    bought = biggest.swap(trader, stable, usd_reserve * 216 // 100)  # ≈ 10.0× the price
    assert biggest.spot(market.synor) > 9 * Fraction(201, 10_000)  # the spike really is there
    biggest.swap(trader, market.synor, bought)  # and gone one block later

    later(chain, 600)
    after = oracle.run_round()
    assert after.price is not None
    assert abs(after.price - before) / before < Fraction(1, 100)


def test_losing_the_quorum_marks_the_price_stale_and_billing_refuses_it_past_its_max_age(
    market: Market, sqlite_url: str
) -> None:
    Feed.prices = {"/0": "0.02", "/1": "0.02", "/2": "0.0201"}
    oracle, clock = oracle_on(market, sqlite_url, feeds=3, quorum=6)
    good = first_good_round(oracle, market.chain)
    assert good.quorum_met, good.detail  # five pools and three feeds: eight sources

    Feed.prices = {}  # the feeds go down: five sources left, six needed
    later(market.chain, 60)
    lost = oracle.run_round()
    assert not lost.quorum_met
    assert lost.price is None
    assert "unreadable" in json.loads(lost.detail)["feed:0"]["reason"]
    current = oracle.price()
    assert current.stale
    assert current.price == good.price
    assert "no quorum" in (current.reason or "")

    billing = BillingService(
        SqlUnitOfWork(migrated_engine(sqlite_url)),
        clock,
        load_default_catalog(),
        rate_source=oracle.display_rate,
        lock_rate=oracle.lock_rate,
    )
    assert billing.lock_rate() is not None  # within its max age: still usable

    later(market.chain, 3600)
    with pytest.raises(OracleStaleError, match="not finalised"):
        oracle.lock_rate()
    from synor_economics.domain.period import Period

    with pytest.raises(OracleStaleError):
        billing.close_period(Period.month(2026, 10))
    assert billing.rate_source() == good.price  # drafts still show the last price


def test_the_twap_of_published_prices_is_arithmetic_and_geometric(
    market: Market, sqlite_url: str
) -> None:
    oracle, _ = oracle_on(market, sqlite_url)
    chain = market.chain
    trader = chain.funded_signers()[0]
    first = first_good_round(oracle, chain)
    for pair in market.pairs:  # SYNOR is bought everywhere: its price rises
        pair.swap(trader, pair.other(market.synor), 4_000 * E18)
    later(chain, 1200)
    second = oracle.run_round()
    assert first.price is not None
    assert second.price is not None
    assert second.price > first.price
    later(chain, 300)

    twap = oracle.twap(1200)
    assert twap.points == 2
    assert twap.end - twap.start == 1200
    expected = (
        first.price * (second.at - twap.start) + second.price * (twap.end - second.at)
    ) / 1200
    assert twap.arithmetic == expected
    assert first.price < twap.geometric < twap.arithmetic  # AM-GM, strictly: prices differ
    assert [r.round for r in oracle.history(7200) if r.quorum_met] == [first.round, second.round]
    with pytest.raises(OracleStaleError, match="at least one second"):
        oracle.twap(0)
