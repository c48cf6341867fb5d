"""A Uniswap-v2-style constant-product pair as a SYNOR/USD source, read through its accumulators.

The pair adds ``reserve_other / reserve_this × elapsed`` (UQ112.112 fixed point) to
``priceXCumulativeLast`` on the first trade of each block, so a TWAP between two readings is the
difference of the accumulators over the time between them. The accumulator is brought up to the
reading's block time here, as the pair itself would if it traded in that block
(``v2_counterfactual``): without it a quiet pair would look as if it had no history.

A one-block spike moves the accumulator by the spike × one block's seconds only, which is why the
oracle reads accumulators and never reserves for the price. Reserves give the liquidity: twice
the stablecoin side, in USD.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from web3 import Web3

from synor_economics.adapters.chain.evm import ChainError, EvmChain
from synor_economics.domain.twap import Q112, v2_counterfactual
from synor_economics.ports import PriceReading

PAIR_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [],
        "outputs": outputs,
    }
    for name, outputs in (
        ("token0", [{"name": "", "type": "address"}]),
        ("token1", [{"name": "", "type": "address"}]),
        ("price0CumulativeLast", [{"name": "", "type": "uint256"}]),
        ("price1CumulativeLast", [{"name": "", "type": "uint256"}]),
        (
            "getReserves",
            [
                {"name": "reserve0", "type": "uint112"},
                {"name": "reserve1", "type": "uint112"},
                {"name": "blockTimestampLast", "type": "uint32"},
            ],
        ),
    )
]
"""The five reads a v2 pair answers that a price source needs (Uniswap's own interface)."""

DECIMALS_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "decimals",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    }
]


class UniswapV2Source:
    """A SYNOR/stablecoin pair; the stablecoin is taken as worth one USD."""

    def __init__(self, chain: EvmChain, name: str, pair: str, synor_token: str) -> None:
        self._chain = chain
        self._name = name
        self._pair = chain.w3.eth.contract(address=Web3.to_checksum_address(pair), abi=PAIR_ABI)
        token0 = str(self._pair.functions.token0().call())
        token1 = str(self._pair.functions.token1().call())
        synor = Web3.to_checksum_address(synor_token)
        if synor not in (token0, token1):
            raise ChainError(f"pair {pair} does not trade the SYNOR token {synor}")
        self._synor_is_0 = synor == token0
        stable = token1 if self._synor_is_0 else token0
        synor_decimals = self._decimals(synor)
        self._stable_decimals = self._decimals(stable)
        # SYNOR's price in the stablecoin, raw units → whole units: × 10**synor / 10**stable.
        self._unit = Fraction(10**synor_decimals, 10**self._stable_decimals * Q112)

    @property
    def name(self) -> str:
        return self._name

    def read(self) -> PriceReading:
        """The accumulator of SYNOR's price at the latest block, brought up to its time."""
        number, _, now = self._chain.block("latest")
        functions = self._pair.functions
        reserve0, reserve1, last = functions.getReserves().call(block_identifier=number)
        if self._synor_is_0:
            cumulative = functions.price0CumulativeLast().call(block_identifier=number)
            synor_reserve, stable_reserve = reserve0, reserve1
        else:
            cumulative = functions.price1CumulativeLast().call(block_identifier=number)
            synor_reserve, stable_reserve = reserve1, reserve0
        if synor_reserve == 0 or stable_reserve == 0:
            raise ChainError(f"{self._name}: the pair has no liquidity")
        value = v2_counterfactual(int(cumulative), synor_reserve, stable_reserve, int(last), now)
        return PriceReading(
            source=self._name,
            timestamp=now,
            cumulative=value,
            unit=self._unit,
            spot=None,
            liquidity=Fraction(2 * stable_reserve, 10**self._stable_decimals),
        )

    def _decimals(self, token: str) -> int:
        contract = self._chain.w3.eth.contract(
            address=Web3.to_checksum_address(token), abi=DECIMALS_ABI
        )
        return int(contract.functions.decimals().call())
