"""The project's contracts on a chain: found where a deployment was recorded, else deployed.

A deployment is recorded per chain id and genesis hash. A node restarted on the same chain
finds its contracts; the in-process chain is new at every start (a new genesis), so its
contracts are deployed again, which takes well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3

from synor_economics.adapters.chain.compiled import load_artifact
from synor_economics.adapters.chain.evm import ChainError, EvmChain
from synor_economics.ports import Deployment

CONTRACTS = ("SynorToken", "PriceOracle", "InvoicePayments", "FeeDistributor")


@dataclass(frozen=True, slots=True)
class ChainPlan:
    """What to deploy with, where nothing is recorded yet."""

    deployer: LocalAccount
    treasury: str
    reporters: Sequence[str]
    quorum: int
    deviation_bps: int
    heartbeat: int
    max_age: int
    initial_supply: int = 10**9 * 10**18


def local_plan(
    chain: EvmChain, *, reporters: int = 3, heartbeat: int = 3600, max_age: int = 3600
) -> ChainPlan:
    """A plan on the in-process chain's funded accounts, as the product's own defaults go: the
    first deploys, the last is the treasury, the next ``reporters`` report (all of them make the
    quorum). For tests and benchmarks that set up a chain by hand."""
    funded = chain.funded_signers()
    return ChainPlan(
        deployer=funded[0],
        treasury=funded[-1].address,
        reporters=[signer.address for signer in funded[1 : 1 + reporters]],
        quorum=reporters,
        deviation_bps=50,
        heartbeat=heartbeat,
        max_age=max_age,
    )


def deploy_all(chain: EvmChain, plan: ChainPlan) -> Deployment:
    """Deploy the four contracts and register the reporters: their addresses by name, and the
    block the deployment began at."""
    first_block = chain.head() + 1
    token = chain.deploy(
        load_artifact("SynorToken"), plan.deployer, "Synor", "SYNOR", plan.initial_supply
    )
    oracle = chain.deploy(
        load_artifact("PriceOracle"),
        plan.deployer,
        plan.deployer.address,
        plan.quorum,
        plan.deviation_bps,
        plan.heartbeat,
        plan.max_age,
    )
    bound = chain.contract("PriceOracle", oracle)
    for reporter in plan.reporters:
        chain.transact(
            bound.functions.add_reporter(Web3.to_checksum_address(reporter)), plan.deployer
        )
    payments = chain.deploy(load_artifact("InvoicePayments"), plan.deployer, token, plan.treasury)
    distributor = chain.deploy(load_artifact("FeeDistributor"), plan.deployer, token)
    addresses = {
        "SynorToken": token,
        "PriceOracle": oracle,
        "InvoicePayments": payments,
        "FeeDistributor": distributor,
    }
    return Deployment(addresses, first_block)


def ensure_contracts(
    chain: EvmChain,
    recorded: Deployment | None,
    plan: Callable[[], ChainPlan],
    record: Callable[[Deployment], None],
) -> Deployment:
    """The recorded deployment if its code is on the chain; otherwise a new one, recorded."""
    if recorded is not None and all(name in recorded.addresses for name in CONTRACTS):
        missing = [
            name
            for name in CONTRACTS
            if not chain.w3.eth.get_code(Web3.to_checksum_address(recorded.addresses[name]))
        ]
        if missing:
            raise ChainError(
                f"the recorded {', '.join(missing)} has no code on chain {chain.chain_id}"
            )
        return recorded
    deployment = deploy_all(chain, plan())
    record(deployment)
    return deployment
