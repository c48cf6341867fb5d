"""Price sources against real counterparts: genuine Uniswap v2 pairs on the in-process EVM, and
an off-chain JSON feed served over HTTP on this machine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from web3.contract import Contract

from synor_economics.adapters.chain.compiled import load_artifact
from synor_economics.adapters.chain.evm import EvmChain
from synor_economics.adapters.oracle.json_feed import FeedError, JsonFeedSource
from synor_economics.adapters.oracle.uniswap_v2 import UniswapV2Source
from synor_economics.domain.twap import Cumulative, v2_twap
from tests.integration.uniswap_kit import Pair, deploy_pair, deploy_test_token

E18 = 10**18
START = 1_900_000_000


@pytest.fixture(scope="module")
def chain() -> EvmChain:
    return EvmChain.in_process()


@pytest.fixture
def market(chain: EvmChain) -> Iterator[tuple[Pair, Contract]]:
    """A SYNOR/stablecoin pair holding 1,000,000 SYNOR and 20,000 USD: 0.02 USD per SYNOR."""
    snapshot = chain.snapshot()
    owner = chain.funded_signers()[0]
    synor_artifact = load_artifact("SynorToken")
    synor = chain.bind(
        synor_artifact, chain.deploy(synor_artifact, owner, "Synor", "SYNOR", 10**9 * E18)
    )
    stable = deploy_test_token(chain, owner, 10**9 * E18)
    pair = deploy_pair(chain, owner, synor, stable)
    amounts = {synor.address: 1_000_000 * E18, stable.address: 20_000 * E18}
    pair.add_liquidity(owner, amounts[pair.token0.address], amounts[pair.token1.address])
    yield pair, synor
    chain.revert(snapshot)


def test_a_v2_pair_reads_as_its_time_weighted_average_not_its_spot(
    chain: EvmChain, market: tuple[Pair, Contract]
) -> None:
    pair, synor = market
    owner = chain.funded_signers()[0]
    source = UniswapV2Source(chain, "v2:test", pair.pair.address, synor.address)
    first = source.read()
    assert first.spot is None
    assert first.cumulative is not None
    assert first.liquidity == 40_000  # twice the stablecoin side, in USD

    # 600 s at 0.02, then a trade moves the price; 1200 s more at the new price.
    chain.travel(first.timestamp + 600)
    stable = pair.token1 if pair.token0.address == synor.address else pair.token0
    pair.swap(owner, stable, 5_000 * E18)  # buys SYNOR: its price rises
    trade_time = chain.block("latest")[2]
    chain.travel(trade_time + 1200)
    chain.mine()
    second = source.read()
    assert second.cumulative is not None

    after = pair.spot(synor)
    # The pair accumulates in UQ112.112, truncating each price: compare within that grain.
    expected = (Fraction(2, 100) * (trade_time - first.timestamp)) + after * (
        second.timestamp - trade_time
    )
    expected /= second.timestamp - first.timestamp
    span = second.timestamp - first.timestamp
    twap = (second.cumulative - first.cumulative) % 2**256 * second.unit / span
    # The domain's reading of the same accumulators agrees (18 decimals on both sides).
    assert twap == v2_twap(
        Cumulative(first.timestamp, first.cumulative),
        Cumulative(second.timestamp, second.cumulative),
    )
    assert abs(twap - expected) < Fraction(1, 10**25)
    assert Fraction(2, 100) < twap < after  # between the two prices it held


def test_a_pair_without_synor_is_refused(chain: EvmChain, market: tuple[Pair, Contract]) -> None:
    pair, _ = market
    from synor_economics.adapters.chain.evm import ChainError

    with pytest.raises(ChainError, match="does not trade the SYNOR token"):
        UniswapV2Source(chain, "v2:bad", pair.pair.address, "0x" + "11" * 20)


class FeedHandler(BaseHTTPRequestHandler):
    """Answers whatever the test put in ``answer``."""

    answer: bytes = b"{}"
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FeedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/price"
    server.shutdown()
    server.server_close()


def test_a_json_feed_is_read_exactly(feed_server: str) -> None:
    FeedHandler.status = 200
    FeedHandler.answer = b'{"data": {"price": 0.0123456789012345678901, "timestamp": 1899999990}}'
    source = JsonFeedSource(
        "feed:a",
        feed_server,
        weight=Fraction(50_000),
        now=lambda: START,
        price_path="data.price",
        time_path="data.timestamp",
    )
    reading = source.read()
    assert reading.spot == Fraction("0.0123456789012345678901")  # no float on the way
    assert reading.timestamp == START - 10
    assert reading.liquidity == 50_000
    source.close()


@pytest.mark.parametrize(
    ("status", "answer", "problem"),
    [
        (200, b"not json", "did not answer with JSON"),
        (500, b"{}", "did not answer with JSON"),
        (200, b'{"other": 1}', "has no price"),
        (200, b'{"price": "-1"}', "is not positive"),
        (200, b'{"price": "abc"}', "is not a decimal number"),
        (200, json.dumps({"price": "0.02", "timestamp": START - 301}).encode(), "s old"),
        (200, b'{"price": "0.02", "timestamp": "yesterday"}', "neither seconds nor RFC 3339"),
    ],
)
def test_a_feed_that_answers_badly_is_refused_with_the_reason(
    feed_server: str, status: int, answer: bytes, problem: str
) -> None:
    FeedHandler.status = status
    FeedHandler.answer = answer
    source = JsonFeedSource("feed:b", feed_server, weight=Fraction(1), now=lambda: START)
    with pytest.raises(FeedError, match=problem):
        source.read()
    source.close()


def test_a_feed_time_may_be_rfc3339(feed_server: str) -> None:
    FeedHandler.status = 200
    FeedHandler.answer = b'{"price": "0.02", "timestamp": "2030-03-17T17:46:40Z"}'
    source = JsonFeedSource("feed:c", feed_server, weight=Fraction(1), now=lambda: START)
    assert source.read().timestamp == START
    source.close()
