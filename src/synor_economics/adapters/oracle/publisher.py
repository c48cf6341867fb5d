"""Submits the oracle's rounds to the PriceOracle contract, as one or more reporters.

Each reporter is a key of its own; the contract takes the median of its reporters' fresh
submissions and publishes on deviation or heartbeat (``contracts/PriceOracle.vy``). Operators
who run ``synor oracle run`` on separate machines with separate keys are the intended set-up;
one process submitting as several reporters is for local chains and tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_account.signers.local import LocalAccount

from synor_economics.adapters.chain.evm import ChainError, EvmChain

SUBMIT_GAS = 400_000


class OracleContractPublisher:
    def __init__(self, chain: EvmChain, address: str, reporters: Sequence[LocalAccount]) -> None:
        if not reporters:
            raise ChainError("the oracle needs at least one reporter key to submit prices")
        self._chain = chain
        self._oracle = chain.contract("PriceOracle", address)
        self._reporters = list(reporters)

    def submit(self, price_e18: int) -> dict[str, object]:
        """Each reporter submits the price; what the contract shows afterwards."""
        transactions = [
            self._chain.transact(self._oracle.functions.submit(price_e18), reporter, gas=SUBMIT_GAS)
            for reporter in self._reporters
        ]
        price, updated_at, round_id, stale = self._oracle.functions.latest().call()
        return {
            "chain_id": self._chain.chain_id,
            "contract": self._oracle.address,
            "transactions": [t.tx_hash for t in transactions],
            "chain_round": int(round_id),
            "chain_price": str(price),
            "chain_updated_at": int(updated_at),
            "chain_stale": bool(stale),
        }
