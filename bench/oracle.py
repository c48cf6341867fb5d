"""One oracle round with ten sources (goal: ≤ 50 ms plus chain time).

Seven genuine Uniswap v2 SYNOR/stablecoin pairs on the in-process EVM (the npm artifacts the
tests install) and three JSON feeds served on this machine; rounds stored in SQLite and
submitted to the PriceOracle contract by three reporters. Each round is timed in parts:
reading the sources (chain and HTTP time), submitting (chain time), and the rest: TWAPs from
stored readings, aggregation, storing the round (the oracle's own time, the figure the goal
is about).

Usage: python bench/oracle.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from synor_economics.adapters.chain.deployment import deploy_all, local_plan
from synor_economics.adapters.chain.evm import EvmChain
from synor_economics.adapters.oracle.json_feed import JsonFeedSource
from synor_economics.adapters.oracle.publisher import OracleContractPublisher
from synor_economics.adapters.oracle.uniswap_v2 import UniswapV2Source
from synor_economics.adapters.sql.engine import make_engine
from synor_economics.adapters.sql.schema import SqlSchema
from synor_economics.adapters.sql.uow import ORACLE_LOCK_KEY, SqlUnitOfWork
from synor_economics.domain.price_aggregate import Policy
from synor_economics.ports import PriceReading, PriceSource
from synor_economics.services.oracle import OracleConfig, OracleService, PricePublisher

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' Uniswap kit
from tests.integration.uniswap_kit import (
    ChainClock,
    create_pair,
    deploy_factory,
    deploy_test_token,
)

E18 = 10**18
WINDOW = 1800


class Timed:
    """Adds up the seconds spent in the wrapped calls (the chain's and the feeds' time)."""

    def __init__(self) -> None:
        self.seconds = 0.0


class TimedSource:
    def __init__(self, inner: PriceSource, timer: Timed) -> None:
        self.inner = inner
        self.timer = timer

    @property
    def name(self) -> str:
        return self.inner.name

    def read(self) -> PriceReading:
        started = time.perf_counter()
        try:
            return self.inner.read()
        finally:
            self.timer.seconds += time.perf_counter() - started


class TimedPublisher:
    def __init__(self, inner: PricePublisher, timer: Timed) -> None:
        self.inner = inner
        self.timer = timer

    def submit(self, price_e18: int) -> Mapping[str, object]:
        started = time.perf_counter()
        try:
            return self.inner.submit(price_e18)
        finally:
            self.timer.seconds += time.perf_counter() - started


class Feed(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"price": "0.0200"}).encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def market(chain: EvmChain) -> tuple[list[PriceSource], OracleContractPublisher]:
    signers = chain.funded_signers()
    owner = signers[0]
    addresses = deploy_all(chain, local_plan(chain, reporters=3, heartbeat=WINDOW)).addresses
    synor = chain.contract("SynorToken", addresses["SynorToken"])
    factory = deploy_factory(chain, owner)
    sources: list[PriceSource] = []
    for index in range(7):
        stable = deploy_test_token(chain, owner, 10**9 * E18)
        pair = create_pair(chain, owner, factory, synor, stable)
        usd = 20_000 + 5_000 * index
        pair.fund(owner, synor, usd * 50 * E18, usd * E18)  # 0.02 USD per SYNOR
        sources.append(UniswapV2Source(chain, f"v2:{index}", pair.pair.address, synor.address))
    publisher = OracleContractPublisher(chain, addresses["PriceOracle"], signers[1:4])
    return sources, publisher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    chain = EvmChain.in_process()
    clock = ChainClock(chain)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pools, publisher = market(chain)
    feeds: list[PriceSource] = [
        JsonFeedSource(
            f"feed:{n}",
            f"http://127.0.0.1:{server.server_address[1]}/{n}",
            weight=Fraction(30_000),
            now=lambda: int(clock.now().timestamp()),
        )
        for n in range(3)
    ]
    reads, submits = Timed(), Timed()
    sources = [TimedSource(s, reads) for s in [*pools, *feeds]]
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'oracle.db'}")
        SqlSchema(engine).upgrade()
        oracle = OracleService(
            SqlUnitOfWork(engine, lock_key=ORACLE_LOCK_KEY),
            clock,
            OracleConfig(window=WINDOW, policy=Policy(min_history=WINDOW)),
            sources=lambda: sources,
            publisher=lambda: TimedPublisher(publisher, submits),
        )
        oracle.run_round()  # the first readings: no history yet
        chain.travel(chain.block("latest")[2] + WINDOW + 60)
        totals, own, chain_part = [], [], []
        for _ in range(args.rounds):
            chain.travel(chain.block("latest")[2] + 60)
            reads.seconds = submits.seconds = 0.0
            started = time.perf_counter()
            row = oracle.run_round()
            total = time.perf_counter() - started
            assert row.quorum_met, row.detail
            totals.append(total)
            chain_part.append(reads.seconds + submits.seconds)
            own.append(total - reads.seconds - submits.seconds)
        engine.dispose()
    server.shutdown()

    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        p90 = ordered[math.ceil(len(ordered) * 0.9) - 1]  # nearest rank
        return f"median {statistics.median(values) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms"

    print(f"oracle round, 10 sources (7 Uniswap v2 pairs, 3 JSON feeds), {args.rounds} rounds")
    print(f"  whole round:                      {ms(totals)}")
    print(f"  chain and feeds (reads, 3 submits): {ms(chain_part)}")
    print(f"  the oracle's own work:            {ms(own)}   (goal ≤ 50 ms)")


if __name__ == "__main__":
    main()
