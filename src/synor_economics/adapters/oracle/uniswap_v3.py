"""A Uniswap-v3-style pool as a SYNOR/USD source, read through its own observations (``observe``).

A v3 pool keeps a ring buffer of observations; each holds ``tickCumulative``, the sum of the
pool's current tick times the seconds it held (an int56). ``observe([window, 0])`` returns that
sum ``window`` seconds ago and now (interpolated, or brought up to now, by the pool itself), so
the mean tick over the window is their difference over ``window`` and the TWAP is
``1.0001 ** mean_tick``.

That is a **geometric** mean of the price over time, not the arithmetic one a v2 pair's price
accumulator gives: v2 sums prices, v3 sums ticks, which are logarithms of prices. The geometric
mean weighs a spike up and a spike down alike (a price ×10 for a minute moves it as much as a
price ÷10), is never above the arithmetic mean, and is quantised to the tick grid (one tick is
one basis point): the mean tick is floored, as Uniswap's own ``OracleLibrary.consult`` does.

A pool younger than the window (or whose ring buffer does not reach back that far: it holds one
observation per block with a trade, up to its cardinality) makes ``observe`` revert with "OLD".
The TWAP is then taken over what the pool has, from its oldest observation to now, and
``history`` says how long that is: the oracle's minimum-history rule decides whether it counts.

The liquidity is twice the pool's stablecoin balance, in USD, as for a v2 pair: simple, and
bounded by what the pool really holds. It ignores how the liquidity is spread over prices: a
position concentrated around the price trades deeper than its balance suggests (the figure is then
conservative), while one entirely out of range holds tokens that do not trade at this price at all.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from web3 import Web3
from web3.contract import Contract

from synor_economics.adapters.chain.evm import ChainError, EvmChain
from synor_economics.domain.twap import UINT32, Cumulative, scale_decimals, tick_price, v3_mean_tick
from synor_economics.ports import PriceReading


def _view(
    name: str, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]
) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": n, "type": t} for n, t in outputs],
    }


POOL_ABI: list[dict[str, Any]] = [
    _view("token0", [], [("", "address")]),
    _view("token1", [], [("", "address")]),
    _view(
        "slot0",
        [],
        [
            ("sqrtPriceX96", "uint160"),
            ("tick", "int24"),
            ("observationIndex", "uint16"),
            ("observationCardinality", "uint16"),
            ("observationCardinalityNext", "uint16"),
            ("feeProtocol", "uint8"),
            ("unlocked", "bool"),
        ],
    ),
    _view(
        "observations",
        [("index", "uint256")],
        [
            ("blockTimestamp", "uint32"),
            ("tickCumulative", "int56"),
            ("secondsPerLiquidityCumulativeX128", "uint160"),
            ("initialized", "bool"),
        ],
    ),
    _view(
        "observe",
        [("secondsAgos", "uint32[]")],
        [("tickCumulatives", "int56[]"), ("secondsPerLiquidityCumulativeX128s", "uint160[]")],
    ),
]
"""The five reads a v3 pool answers that a price source needs (Uniswap's own interface)."""

ERC20_ABI: list[dict[str, Any]] = [
    _view("decimals", [], [("", "uint8")]),
    _view("balanceOf", [("owner", "address")], [("", "uint256")]),
]


_OLD = re.compile(r"\bOLD\b")
"""The reason ``observe`` reverts with when asked for a time before its oldest observation."""


class UniswapV3Source:
    """A SYNOR/stablecoin v3 pool; the stablecoin is taken as worth one USD. ``window`` is the
    TWAP's length in seconds (30 minutes by default)."""

    def __init__(
        self, chain: EvmChain, name: str, pool: str, synor_token: str, window: int = 1800
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or not 0 < window < UINT32:
            raise ChainError(f"the TWAP window must be a positive number of seconds: {window!r}")
        self._chain = chain
        self._name = name
        self._window = window
        self._pool = chain.w3.eth.contract(address=Web3.to_checksum_address(pool), abi=POOL_ABI)
        token0 = str(self._pool.functions.token0().call())
        token1 = str(self._pool.functions.token1().call())
        synor = Web3.to_checksum_address(synor_token)
        if synor not in (token0, token1):
            raise ChainError(f"pool {pool} does not trade the SYNOR token {synor}")
        self._synor_is_0 = synor == token0
        self._stable = self._token(token1 if self._synor_is_0 else token0)
        self._synor_decimals = int(self._token(synor).functions.decimals().call())
        self._stable_decimals = int(self._stable.functions.decimals().call())

    @property
    def name(self) -> str:
        return self._name

    @property
    def window(self) -> int:
        return self._window

    def read(self) -> PriceReading:
        """The pool's TWAP over the window ending at the latest block (or over all the history
        it has, if less)."""
        number, _, now = self._chain.block("latest")
        history, mean_tick = self._mean_tick(number, now)
        raw = Fraction(tick_price(mean_tick))  # token0 in raw token1 units
        if not self._synor_is_0:
            raw = 1 / raw
        twap = scale_decimals(raw, self._synor_decimals, self._stable_decimals)
        balance = int(
            self._stable.functions.balanceOf(self._pool.address).call(block_identifier=number)
        )
        return PriceReading(
            source=self._name,
            timestamp=now,
            cumulative=None,
            unit=Fraction(1),
            spot=None,
            liquidity=Fraction(2 * balance, 10**self._stable_decimals),
            twap=twap,
            history=history,
        )

    def _mean_tick(self, number: int, now: int) -> tuple[int, int]:
        """(seconds of history, mean tick) at block ``number`` (time ``now``)."""
        cumulatives = self._observe(self._window, number)
        if cumulatives is not None:
            return self._window, self._mean(cumulatives, self._window, now)
        # Too little history for the window: from the oldest observation the pool keeps.
        functions = self._pool.functions
        slot0 = functions.slot0().call(block_identifier=number)
        index, cardinality = int(slot0[2]), int(slot0[3])
        if cardinality == 0:
            raise ChainError(f"{self._name}: the pool is not initialised")
        oldest = functions.observations((index + 1) % cardinality).call(block_identifier=number)
        if not oldest[3]:  # the ring buffer has not wrapped yet: slot 0 is the oldest
            oldest = functions.observations(0).call(block_identifier=number)
        age = (now - int(oldest[0])) % UINT32
        if age == 0:  # observed in this very block: only the current tick
            return 0, int(slot0[1])
        cumulatives = self._observe(age, number)
        if cumulatives is None:
            raise ChainError(f"{self._name}: the pool has no observation {age} s old after all")
        return age, self._mean(cumulatives, age, now)

    def _observe(self, seconds: int, number: int) -> tuple[int, int] | None:
        """The tick cumulatives ``seconds`` ago and now, at block ``number``; None when the pool
        has no observation that old (it reverts with "OLD")."""
        try:
            older, newer = self._pool.functions.observe([seconds, 0]).call(block_identifier=number)[
                0
            ]
        except Exception as error:  # web3's ContractLogicError, or eth-tester's TransactionFailed
            if _OLD.search(str(error)):
                return None
            raise ChainError(f"{self._name}: the pool refused observe: {error}") from error
        return int(older), int(newer)

    @staticmethod
    def _mean(cumulatives: tuple[int, int], seconds: int, now: int) -> int:
        older, newer = cumulatives
        return v3_mean_tick(Cumulative(now - seconds, older), Cumulative(now, newer))

    def _token(self, address: str) -> Contract:
        return self._chain.w3.eth.contract(address=Web3.to_checksum_address(address), abi=ERC20_ABI)
