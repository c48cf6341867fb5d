"""The genuine Uniswap v2 contracts on the in-process EVM: factory, pairs, liquidity and trades.

The build artifacts come from the npm package ``@uniswap/v2-core`` (``tests/chain/package.json``),
installed here on first use and never committed. Without npm the chain tests skip, except under
``SYNOR_REQUIRE_SERVICES=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from synor_economics.adapters.chain.compiled import Artifact, read_artifact
from synor_economics.adapters.chain.evm import EvmChain

PACKAGES = Path(__file__).resolve().parents[1] / "chain"
V2_BUILD = PACKAGES / "node_modules" / "@uniswap" / "v2-core" / "build"


class ChainClock:
    """The chain's own time (its latest block): what the oracle's rounds are stamped with when
    a test or a benchmark moves the in-process chain's clock."""

    def __init__(self, chain: EvmChain) -> None:
        self.chain = chain

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.chain.block("latest")[2], UTC)


def install_packages(marker: Path) -> None:
    """Install ``tests/chain``'s npm packages unless ``marker`` (a file they bring) is there:
    once, under a lock that parallel test workers share. Without npm the test skips, or fails
    under ``SYNOR_REQUIRE_SERVICES=1``."""
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        reason = "npm is not installed: the Uniswap artifacts cannot be fetched"
        if os.environ.get("SYNOR_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with (PACKAGES / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=PACKAGES,
                check=True,
                timeout=300,
            )


def uniswap_v2_build() -> Path:
    """The folder of v2-core's artifacts, installed with npm if missing."""
    install_packages(V2_BUILD / "UniswapV2Factory.json")
    return V2_BUILD


def v2_artifact(name: str) -> Artifact:
    return read_artifact(uniswap_v2_build() / f"{name}.json")


@dataclass
class Pair:
    """A deployed pair with the two tokens it trades."""

    chain: EvmChain
    pair: Contract
    token0: Contract
    token1: Contract

    def other(self, token: Contract) -> Contract:
        return self.token1 if token.address == self.token0.address else self.token0

    def fund(self, trader: LocalAccount, synor: Contract, synor_amount: int, other: int) -> None:
        """Liquidity of ``synor_amount`` SYNOR against ``other`` of the other token."""
        if self.token0.address == synor.address:
            self.add_liquidity(trader, synor_amount, other)
        else:
            self.add_liquidity(trader, other, synor_amount)

    def add_liquidity(self, trader: LocalAccount, amount0: int, amount1: int) -> None:
        self.chain.transact(self.token0.functions.transfer(self.pair.address, amount0), trader)
        self.chain.transact(self.token1.functions.transfer(self.pair.address, amount1), trader)
        self.chain.transact(self.pair.functions.mint(trader.address), trader, gas=400_000)

    def reserves(self, token: Contract) -> tuple[int, int]:
        """(the pair's reserve of ``token``, its reserve of the other token)."""
        reserve0, reserve1, _ = self.pair.functions.getReserves().call()
        if token.address == self.token0.address:
            return int(reserve0), int(reserve1)
        return int(reserve1), int(reserve0)

    def spot(self, token: Contract) -> Fraction:
        """The price of ``token`` in the other token, from the reserves now."""
        mine, other = self.reserves(token)
        return Fraction(other, mine)

    def swap(self, trader: LocalAccount, token_in: Contract, amount_in: int) -> int:
        """Sell ``amount_in`` of ``token_in`` into the pair (the constant-product rule with the
        0.3% fee, as the router computes it), in one block; the amount bought."""
        selling_0 = token_in.address == self.token0.address
        r_in, r_out = self.reserves(token_in)
        out: int = amount_in * 997 * r_out // (r_in * 1000 + amount_in * 997)
        outs = (0, out) if selling_0 else (out, 0)
        # eth-tester checks a pending transaction's nonce against the last block, so one
        # sender cannot put two in a block: a second account calls ``swap`` (anyone may; the
        # tokens bought go to ``to``).
        caller = self.chain.funded_signers()[5]
        self.chain.transact_in_one_block(
            [
                (token_in.functions.transfer(self.pair.address, amount_in), trader, 100_000),
                (self.pair.functions.swap(outs[0], outs[1], trader.address, b""), caller, 300_000),
            ]
        )
        return out

    def sync(self, trader: LocalAccount) -> None:
        """Record the reserves (and accumulate the price) in a block of its own."""
        self.chain.transact(self.pair.functions.sync(), trader, gas=200_000)


def deploy_factory(chain: EvmChain, owner: LocalAccount) -> Contract:
    artifact = v2_artifact("UniswapV2Factory")
    return chain.bind(artifact, chain.deploy(artifact, owner, owner.address))


def create_pair(
    chain: EvmChain, owner: LocalAccount, factory: Contract, token_a: Contract, token_b: Contract
) -> Pair:
    """A new pair of the two tokens on the factory (one pair per two tokens)."""
    chain.transact(
        factory.functions.createPair(token_a.address, token_b.address), owner, gas=4_000_000
    )
    address = factory.functions.getPair(token_a.address, token_b.address).call()
    pair = chain.bind(v2_artifact("UniswapV2Pair"), address)
    token0 = pair.functions.token0().call()
    first, second = (token_a, token_b) if token0 == token_a.address else (token_b, token_a)
    return Pair(chain, pair, first, second)


def deploy_pair(chain: EvmChain, owner: LocalAccount, token_a: Contract, token_b: Contract) -> Pair:
    """A factory of its own and a pair of the two tokens on it."""
    return create_pair(chain, owner, deploy_factory(chain, owner), token_a, token_b)


def deploy_test_token(chain: EvmChain, owner: LocalAccount, supply: int) -> Contract:
    """v2-core's own ERC-20 (18 decimals; the whole supply to ``owner``): the stablecoin."""
    artifact = v2_artifact("ERC20")
    return chain.bind(artifact, chain.deploy(artifact, owner, supply))
