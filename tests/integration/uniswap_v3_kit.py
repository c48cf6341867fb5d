"""The genuine Uniswap v3 contracts on the in-process EVM: factory, pools, liquidity and swaps.

The build artifacts come from the npm package ``@uniswap/v3-core`` (``tests/chain/package.json``,
installed with v2-core by :func:`uniswap_kit.uniswap_v2_build`, never committed). A v3 pool takes
its tokens in callbacks (``uniswapV3MintCallback``, ``uniswapV3SwapCallback``) from whoever
called ``mint`` or ``swap``, so an account cannot trade with it directly: a small test-only Vyper
contract (:data:`CALLER_SOURCE`, compiled here at test time, never committed as an artifact)
holds tokens and pays the pool from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from math import isqrt
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from synor_economics.adapters.chain.compiled import Artifact, read_artifact
from synor_economics.adapters.chain.evm import EvmChain
from tests.integration.uniswap_kit import PACKAGES, install_packages

V3_ARTIFACTS = PACKAGES / "node_modules" / "@uniswap" / "v3-core" / "artifacts" / "contracts"
FACTORY_JSON = V3_ARTIFACTS / "UniswapV3Factory.sol" / "UniswapV3Factory.json"

FEE = 3000
"""0.3%: the fee tier whose tick spacing is 60."""
FULL_RANGE = (-887220, 887220)
"""The widest ticks a fee-3000 pool accepts (multiples of 60 inside ±887272)."""
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342
"""The pool's bounds on ``sqrtPriceX96`` (TickMath); a swap's limit lies strictly inside."""

FACTORY_GAS = 10_000_000  # 24.5 kB of runtime code at 200 gas a byte, and the rest
CREATE_POOL_GAS = 8_000_000  # the factory deploys the 22 kB pool with CREATE2
POOL_GAS = 3_000_000  # mints and swaps (the first touches of storage are dear)

CALLER_SOURCE = """\
# pragma version 0.4.3
\"\"\"
@title V3Caller
@notice Test-only. Mints liquidity in and swaps against a Uniswap v3 pool, paying what the pool
        asks in its callbacks from the tokens this contract holds. Only the pool a call of this
        contract is in flight with is paid.
\"\"\"

from ethereum.ercs import IERC20


interface V3Pool:
    def token0() -> address: view
    def token1() -> address: view
    def mint(
        recipient: address, tickLower: int24, tickUpper: int24, amount: uint128, data: Bytes[32]
    ) -> (uint256, uint256): nonpayable
    def swap(
        recipient: address,
        zeroForOne: bool,
        amountSpecified: int256,
        sqrtPriceLimitX96: uint160,
        data: Bytes[32],
    ) -> (int256, int256): nonpayable


active: address


@external
def mint(pool: address, tickLower: int24, tickUpper: int24, amount: uint128) -> (uint256, uint256):
    self.active = pool
    paid0: uint256 = 0
    paid1: uint256 = 0
    paid0, paid1 = extcall V3Pool(pool).mint(self, tickLower, tickUpper, amount, b"")
    self.active = empty(address)
    return paid0, paid1


@external
def swap(
    pool: address, zeroForOne: bool, amountSpecified: int256, sqrtPriceLimitX96: uint160
) -> (int256, int256):
    self.active = pool
    delta0: int256 = 0
    delta1: int256 = 0
    delta0, delta1 = extcall V3Pool(pool).swap(
        self, zeroForOne, amountSpecified, sqrtPriceLimitX96, b""
    )
    self.active = empty(address)
    return delta0, delta1


@external
def uniswapV3MintCallback(amount0Owed: uint256, amount1Owed: uint256, data: Bytes[32]):
    self._pay(amount0Owed, amount1Owed)


@external
def uniswapV3SwapCallback(amount0Delta: int256, amount1Delta: int256, data: Bytes[32]):
    self._pay(convert(max(amount0Delta, 0), uint256), convert(max(amount1Delta, 0), uint256))


@internal
def _pay(amount0: uint256, amount1: uint256):
    assert msg.sender == self.active and msg.sender != empty(address), "not the pool in flight"
    if amount0 > 0:
        assert extcall IERC20(staticcall V3Pool(msg.sender).token0()).transfer(msg.sender, amount0)
    if amount1 > 0:
        assert extcall IERC20(staticcall V3Pool(msg.sender).token1()).transfer(msg.sender, amount1)
"""


def uniswap_v3_build() -> Path:
    """The folder of v3-core's contract artifacts, installed with npm if missing (one install
    brings both packages; an install from before v3-core was listed is brought up to date)."""
    install_packages(FACTORY_JSON)
    return V3_ARTIFACTS


def v3_artifact(name: str) -> Artifact:
    return read_artifact(uniswap_v3_build() / f"{name}.sol" / f"{name}.json")


@cache
def caller_artifact() -> Artifact:
    """The test-only V3Caller, compiled on the spot."""
    import vyper  # type: ignore[import-untyped, unused-ignore]

    out = vyper.compile_code(CALLER_SOURCE, output_formats=["abi", "bytecode"])
    return Artifact("V3Caller", out["abi"], out["bytecode"])


def sqrt_price_x96(price: Fraction) -> int:
    """``sqrt(price) × 2**96`` (floored) for a price of one raw token0 in raw token1."""
    return isqrt(price.numerator * 2**192 // price.denominator)


@dataclass
class V3Pool:
    """A deployed pool with its two tokens, and the caller contract that trades with it."""

    chain: EvmChain
    pool: Contract
    token0: Contract
    token1: Contract
    caller: Contract

    def slot0(self) -> tuple[int, int, int, int, int, int, bool]:
        """(sqrtPriceX96, tick, observationIndex, observationCardinality,
        observationCardinalityNext, feeProtocol, unlocked)."""
        return tuple(self.pool.functions.slot0().call())

    def tick(self) -> int:
        return int(self.slot0()[1])

    def initialize(self, owner: LocalAccount, price0: Fraction) -> None:
        """Start the pool at ``price0``: one raw token0 in raw token1."""
        self.chain.transact(
            self.pool.functions.initialize(sqrt_price_x96(price0)), owner, gas=POOL_GAS
        )

    def grow_observations(self, owner: LocalAccount, cardinality: int) -> None:
        """Room for ``cardinality`` observations (one per block with a trade)."""
        self.chain.transact(
            self.pool.functions.increaseObservationCardinalityNext(cardinality),
            owner,
            gas=POOL_GAS + 20_000 * cardinality,
        )

    def fund_caller(self, owner: LocalAccount, amount0: int, amount1: int) -> None:
        """Give the caller contract tokens to pay the pool with."""
        self.chain.transact(self.token0.functions.transfer(self.caller.address, amount0), owner)
        self.chain.transact(self.token1.functions.transfer(self.caller.address, amount1), owner)

    def mint_full_range(self, owner: LocalAccount, liquidity: int) -> None:
        """Liquidity ``L`` over every price (like a v2 pair's: ``x·y = L²``), paid by the caller."""
        lower, upper = FULL_RANGE
        self.chain.transact(
            self.caller.functions.mint(self.pool.address, lower, upper, liquidity),
            owner,
            gas=POOL_GAS,
        )

    def swap_to(self, owner: LocalAccount, target_sqrt_price_x96: int) -> None:
        """Trade until the price reaches the target exactly (exact input, limited by price)."""
        current = self.slot0()[0]
        zero_for_one = target_sqrt_price_x96 < current
        self.chain.transact(
            self.caller.functions.swap(
                self.pool.address, zero_for_one, 10**36, target_sqrt_price_x96
            ),
            owner,
            gas=POOL_GAS,
        )


def full_range_liquidity(amount0: int, amount1: int) -> int:
    """The full-range ``L`` that ``amount0`` against ``amount1`` (raw units) make: ``√(x·y)``."""
    return isqrt(amount0 * amount1)


@dataclass
class V3Deployment:
    """A v3 factory, and the caller contract that pays the pools it creates."""

    chain: EvmChain
    factory: Contract
    caller: Contract

    def create_pool(self, owner: LocalAccount, token_a: Contract, token_b: Contract) -> V3Pool:
        """A new fee-3000 pool of the two tokens (not initialised yet)."""
        self.chain.transact(
            self.factory.functions.createPool(token_a.address, token_b.address, FEE),
            owner,
            gas=CREATE_POOL_GAS,
        )
        address = self.factory.functions.getPool(token_a.address, token_b.address, FEE).call()
        pool = self.chain.bind(v3_artifact("UniswapV3Pool"), address)
        token0 = pool.functions.token0().call()
        first, second = (token_a, token_b) if token0 == token_a.address else (token_b, token_a)
        return V3Pool(self.chain, pool, first, second, self.caller)


def deploy_v3(chain: EvmChain, owner: LocalAccount) -> V3Deployment:
    """The genuine ``UniswapV3Factory`` (its owner is ``owner``) and a V3Caller."""
    factory_artifact = v3_artifact("UniswapV3Factory")
    factory = chain.bind(factory_artifact, chain.deploy(factory_artifact, owner, gas=FACTORY_GAS))
    caller_compiled = caller_artifact()
    caller = chain.bind(caller_compiled, chain.deploy(caller_compiled, owner))
    return V3Deployment(chain, factory, caller)
