"""A Uniswap-v3-style pool as a price source, against the genuine v3-core contracts (factory,
pools, observations) on the in-process EVM. Every test runs with SYNOR as the pool's token0 and
as its token1, since the pool prices token0 and the source must invert for the other side."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from synor_economics.adapters.chain.compiled import load_artifact
from synor_economics.adapters.chain.evm import ChainError, EvmChain
from synor_economics.adapters.oracle.uniswap_v3 import UniswapV3Source
from synor_economics.domain.twap import geometric_twap, tick_price
from tests.integration.uniswap_kit import deploy_test_token
from tests.integration.uniswap_v3_kit import (
    V3Deployment,
    V3Pool,
    deploy_v3,
    full_range_liquidity,
    sqrt_price_x96,
    uniswap_v3_build,
)

E18 = 10**18
START = 1_900_000_000
WINDOW = 1800
PRICE = Fraction(2, 100)
"""USD per SYNOR the pools start at."""
BASIS_POINT = Fraction(1, 10_000)
SIDES = ("synor-is-token0", "synor-is-token1")


@dataclass
class World:
    """What every test shares: the chain, SYNOR, a stablecoin on each side of SYNOR's address
    and another token, a v3 factory and the caller contract that pays pools."""

    chain: EvmChain
    owner: LocalAccount
    synor: Contract
    stables: dict[str, Contract]
    other: Contract
    v3: V3Deployment


@pytest.fixture(scope="module")
def world() -> World:
    uniswap_v3_build()  # skips (or fails in CI) without npm
    chain = EvmChain.in_process()
    owner = chain.funded_signers()[0]
    chain.travel(START)  # ahead of the wall clock: each block is then one second after the last
    # Pools order their tokens by address. Contract addresses follow from the deployer and its
    # nonce: this deployer's first contract lands mid-range (0x82c8…), so that stablecoins of
    # the owner's soon fall on either side of it.
    minter = chain.funded_signers()[2]
    artifact = load_artifact("SynorToken")
    synor = chain.bind(artifact, chain.deploy(artifact, minter, "Synor", "SYNOR", 10**9 * E18))
    chain.transact(synor.functions.transfer(owner.address, 10**9 * E18), minter)
    stables: dict[str, Contract] = {}
    spare: list[Contract] = []
    for _ in range(20):
        token = deploy_test_token(chain, owner, 10**9 * E18)
        side = SIDES[0] if int(synor.address, 16) < int(token.address, 16) else SIDES[1]
        if side in stables:
            spare.append(token)
        else:
            stables[side] = token
        if len(stables) == 2 and spare:
            break
    assert len(stables) == 2
    other = spare[0] if spare else deploy_test_token(chain, owner, 10**9 * E18)
    return World(chain, owner, synor, stables, other, deploy_v3(chain, owner))


@pytest.fixture(autouse=True)
def clean_chain(world: World) -> Iterator[None]:
    snapshot = world.chain.snapshot()
    yield
    world.chain.revert(snapshot)


@pytest.fixture(params=SIDES)
def side(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def raw_price0(pool: V3Pool, synor: Contract, usd_per_synor: Fraction) -> Fraction:
    """The pool's price (one raw token0 in raw token1) for a SYNOR price (18 decimals both)."""
    return usd_per_synor if pool.token0.address == synor.address else 1 / usd_per_synor


def usd_per_synor(pool: V3Pool, synor: Contract, price0: Fraction) -> Fraction:
    return price0 if pool.token0.address == synor.address else 1 / price0


def open_pool(
    world: World, side: str, *, cardinality: int = 50, synor_amount: int = 1_000_000
) -> tuple[V3Pool, int]:
    """A pool of SYNOR and the stablecoin on ``side`` at 0.02 USD per SYNOR, with full-range
    liquidity of ``synor_amount`` SYNOR and their worth in the stablecoin; and the time it was
    initialised (its first observation)."""
    chain, owner = world.chain, world.owner
    pool = world.v3.create_pool(owner, world.synor, world.stables[side])
    pool.initialize(owner, raw_price0(pool, world.synor, PRICE))
    start = chain.block("latest")[2]
    if cardinality > 1:
        pool.grow_observations(owner, cardinality)
    synor_raw = synor_amount * E18
    stable_raw = int(synor_raw * PRICE)
    synor_is_0 = pool.token0.address == world.synor.address
    amounts = (synor_raw, stable_raw) if synor_is_0 else (stable_raw, synor_raw)
    pool.fund_caller(owner, 10 * amounts[0], 10 * amounts[1])
    pool.mint_full_range(owner, full_range_liquidity(*amounts))
    return pool, start


def pool_price0(pool: V3Pool) -> Fraction:
    """The pool's current price, exact, from ``sqrtPriceX96``."""
    return Fraction(pool.slot0()[0] ** 2, 2**192)


def test_a_pool_reads_back_its_price_over_the_window(world: World, side: str) -> None:
    pool, _ = open_pool(world, side)
    source = UniswapV3Source(world.chain, "v3:test", pool.pool.address, world.synor.address)
    assert source.window == WINDOW
    world.chain.travel(world.chain.block("latest")[2] + WINDOW + 60)
    world.chain.mine()
    reading = source.read()
    assert reading.timestamp == world.chain.block("latest")[2]
    assert reading.history == WINDOW
    assert reading.cumulative is None
    assert reading.spot is None
    assert reading.unit == 1
    assert reading.twap is not None
    assert abs(reading.twap / PRICE - 1) < BASIS_POINT  # the tick grid: one basis point
    stable = world.stables[side]
    balance = stable.functions.balanceOf(pool.pool.address).call()
    assert reading.liquidity == Fraction(2 * balance, E18)  # twice the stablecoin side, in USD
    assert abs(reading.liquidity - 40_000) < Fraction(1, 10**9)


def test_the_twap_is_the_time_weighted_geometric_mean_of_the_ticks(world: World, side: str) -> None:
    chain, owner = world.chain, world.owner
    pool, start = open_pool(world, side)
    source = UniswapV3Source(chain, "v3:test", pool.pool.address, world.synor.address)
    tick_a, price_a = pool.tick(), pool_price0(pool)

    # The price holds for a while, a trade moves SYNOR up by half, and that holds 1200 s.
    chain.travel(start + 900)
    pool.swap_to(owner, sqrt_price_x96(raw_price0(pool, world.synor, PRICE * 3 / 2)))
    swapped = chain.block("latest")[2]
    tick_b, price_b = pool.tick(), pool_price0(pool)
    assert tick_b != tick_a
    chain.travel(swapped + 1200)
    chain.mine()
    reading = source.read()
    now = reading.timestamp
    assert reading.history == WINDOW
    assert reading.twap is not None

    # Exactly what the pool's tick cumulatives give: the floored time-weighted mean tick.
    dt_a, dt_b = swapped - (now - WINDOW), now - swapped
    assert dt_a > 0
    assert dt_b > 0
    mean_tick = (tick_a * dt_a + tick_b * dt_b) // WINDOW
    expected = usd_per_synor(pool, world.synor, Fraction(tick_price(mean_tick)))
    assert reading.twap == expected

    # And the geometric mean of the true prices, within the tick grid (floored ticks, floored
    # mean: at most two basis points below it).
    true_mean = geometric_twap(
        [
            (now - WINDOW, usd_per_synor(pool, world.synor, price_a)),
            (swapped, usd_per_synor(pool, world.synor, price_b)),
        ],
        now - WINDOW,
        now,
    )
    assert abs(reading.twap / Fraction(true_mean) - 1) < 2 * BASIS_POINT
    low, high = sorted(usd_per_synor(pool, world.synor, p) for p in (price_a, price_b))
    assert low * (1 - BASIS_POINT) < reading.twap < high


@pytest.mark.parametrize("cardinality", [1, 50])
def test_a_young_pool_reports_the_history_it_has(world: World, side: str, cardinality: int) -> None:
    chain = world.chain
    pool, start = open_pool(world, side, cardinality=cardinality)
    minted = chain.block("latest")[2]
    source = UniswapV3Source(chain, "v3:young", pool.pool.address, world.synor.address)
    chain.travel(start + 300)
    chain.mine()
    reading = source.read()
    # With room for one observation only, the mint overwrote the one initialize wrote.
    oldest = start if cardinality > 1 else minted
    assert reading.history == reading.timestamp - oldest
    assert 0 < reading.history < WINDOW
    assert reading.twap is not None
    assert abs(reading.twap / PRICE - 1) < BASIS_POINT


def test_a_pool_read_in_its_first_block_has_no_history(world: World, side: str) -> None:
    chain = world.chain
    pool = world.v3.create_pool(world.owner, world.synor, world.stables[side])
    source = UniswapV3Source(chain, "v3:new", pool.pool.address, world.synor.address)
    with pytest.raises(ChainError, match="refused observe"):
        source.read()  # not initialised yet: no observation at all
    pool.initialize(world.owner, raw_price0(pool, world.synor, PRICE))
    reading = source.read()
    assert reading.history == 0  # the oracle's minimum-history rule leaves it out
    assert reading.twap is not None
    assert abs(reading.twap / PRICE - 1) < BASIS_POINT  # the current tick's price
    assert reading.liquidity == 0


def test_a_one_block_spike_barely_moves_a_thirty_minute_twap(world: World, side: str) -> None:
    chain, owner = world.chain, world.owner
    pool, start = open_pool(world, side)
    source = UniswapV3Source(chain, "v3:spike", pool.pool.address, world.synor.address)
    chain.travel(start + WINDOW + 60)
    chain.mine()
    before = source.read()
    assert before.twap is not None

    # SYNOR ×10 for one block (one second), then back where it was.
    calm, calm_tick = pool.slot0()[:2]
    pool.swap_to(owner, sqrt_price_x96(raw_price0(pool, world.synor, PRICE * 10)))
    spike_time, spike_tick = chain.block("latest")[2], pool.tick()
    spiked = usd_per_synor(pool, world.synor, pool_price0(pool))
    assert abs(spiked / (PRICE * 10) - 1) < BASIS_POINT
    pool.swap_to(owner, calm)
    assert pool.slot0()[0] == calm
    after = source.read()
    assert after.twap is not None
    assert after.timestamp - spike_time == 1  # the next block undid it

    mean_tick = (calm_tick * (WINDOW - 1) + spike_tick) // WINDOW  # one second of 1800
    assert after.twap == usd_per_synor(pool, world.synor, Fraction(tick_price(mean_tick)))
    move = after.twap / before.twap - 1
    assert 0 < move < Fraction(1, 100)  # seen, but 10×'s 1/1800th power: about 0.13%
    assert abs(after.twap / PRICE - 1) < Fraction(2, 1000)


def test_a_pool_without_synor_is_refused(world: World) -> None:
    pool = world.v3.create_pool(world.owner, world.stables[SIDES[0]], world.other)
    with pytest.raises(ChainError, match="does not trade the SYNOR token"):
        UniswapV3Source(world.chain, "v3:bad", pool.pool.address, world.synor.address)


def test_a_window_must_be_positive(world: World, side: str) -> None:
    pool = world.v3.create_pool(world.owner, world.synor, world.stables[side])
    with pytest.raises(ChainError, match="window"):
        UniswapV3Source(world.chain, "v3:bad", pool.pool.address, world.synor.address, window=0)
