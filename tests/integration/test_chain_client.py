"""The chain client's own promises: a refused transaction says why, and nonces stay right
after one."""

from __future__ import annotations

import pytest

from synor_economics.adapters.chain.deployment import deploy_all, local_plan
from synor_economics.adapters.chain.evm import ChainError, EvmChain


def test_a_reverted_transaction_raises_with_the_contracts_reason() -> None:
    chain = EvmChain.in_process()
    signers = chain.funded_signers()
    deployment = deploy_all(chain, local_plan(chain, reporters=1, heartbeat=100, max_age=100))
    assert deployment.first_block == 1
    oracle = chain.contract("PriceOracle", deployment.addresses["PriceOracle"])
    with pytest.raises(ChainError, match=r"submit reverted: .*not reporter"):
        chain.transact(oracle.functions.submit(5), signers[4])
    with pytest.raises(ChainError, match="zero price"):
        chain.transact(oracle.functions.submit(0), signers[1])
    chain.transact(oracle.functions.submit(7), signers[1])  # the nonce after a revert is right
    assert oracle.functions.latest().call()[0] == 7
