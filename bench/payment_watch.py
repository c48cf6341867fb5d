"""The payment watcher (goal: ≥ 500 transfer logs/s).

Sends ``--logs`` SYNOR transfers to ``--addresses`` deposit addresses on the in-process EVM
(several hundred per transaction, through a small spraying contract compiled here, so that
making the logs does not dominate), then has the watcher read them. It prints the rate of
reading and recording the logs (``eth_getLogs``, decoding, storing each payment as pending) and
of crediting them (each a billing deposit with its ledger transfer, applied once per
``chain_id:tx_hash:log_index``), and the rate of both together.

Usage: python bench/payment_watch.py [--logs 4000] [--addresses 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vyper import compile_code

from synor_economics.adapters.chain.compiled import Artifact
from synor_economics.adapters.chain.deployment import deploy_all, local_plan
from synor_economics.adapters.chain.evm import EvmChain
from synor_economics.adapters.chain.payment_logs import EvmPaymentChain
from synor_economics.adapters.clock import SystemClock
from synor_economics.adapters.sql.engine import make_engine
from synor_economics.adapters.sql.schema import SqlSchema
from synor_economics.adapters.sql.uow import ORACLE_LOCK_KEY, SqlUnitOfWork
from synor_economics.bootstrap import tune_for_throughput
from synor_economics.catalog import load_default_catalog
from synor_economics.services.billing import BillingService
from synor_economics.services.ledger import LedgerService
from synor_economics.services.payment_watch import PaymentWatcher

SPRAY = """# pragma version 0.4.3
from ethereum.ercs import IERC20

@external
def spray(token: IERC20, receivers: DynArray[address, 512], amount: uint256):
    for receiver: address in receivers:
        extcall token.transfer(receiver, amount)
"""
PER_TRANSACTION = 400
SYNOR = 10**18


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--logs", type=int, default=4000)
    parser.add_argument("--addresses", type=int, default=100)
    args = parser.parse_args()
    tune_for_throughput()

    chain = EvmChain.in_process()
    signers = chain.funded_signers()
    owner = signers[0]
    addresses = deploy_all(chain, local_plan(chain, reporters=1)).addresses
    token = chain.contract("SynorToken", addresses["SynorToken"])
    compiled = compile_code(SPRAY, output_formats=["abi", "bytecode"])
    spray_artifact = Artifact("Spray", compiled["abi"], compiled["bytecode"])
    spray = chain.bind(spray_artifact, chain.deploy(spray_artifact, owner))
    chain.transact(token.functions.transfer(spray.address, args.logs * SYNOR), owner)
    receivers = [f"0x{index + 0x1000:040x}" for index in range(args.addresses)]
    checksummed = [chain.w3.to_checksum_address(r) for r in receivers]

    started = time.perf_counter()
    for start in range(0, args.logs, PER_TRANSACTION):
        batch = [
            checksummed[i % args.addresses]
            for i in range(start, min(args.logs, start + PER_TRANSACTION))
        ]
        chain.transact(spray.functions.spray(token.address, batch, SYNOR), owner, gas=25_000_000)
    made = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'watch.db'}")
        SqlSchema(engine).upgrade()
        clock = SystemClock()
        uow = SqlUnitOfWork(engine)
        ledger = LedgerService(uow, clock)
        billing = BillingService(uow, clock, load_default_catalog())
        watcher = PaymentWatcher(
            SqlUnitOfWork(engine, lock_key=ORACLE_LOCK_KEY),
            billing,
            clock,
            lambda: EvmPaymentChain(
                chain, token.address, addresses["InvoicePayments"], signers[9].address
            ),
            confirmations=10**9,  # first only read and record
        )
        for index, receiver in enumerate(receivers):
            watcher.add_deposit_address(receiver, f"acct_{index:04d}")

        started = time.perf_counter()
        recorded = watcher.poll()
        reading = time.perf_counter() - started
        watcher.confirmations = 1
        started = time.perf_counter()
        credited = watcher.poll()
        crediting = time.perf_counter() - started
        assert recorded.seen == args.logs, recorded
        assert credited.credited == args.logs, credited
        assert ledger.check().ok
        ledger.close()
        engine.dispose()

    print(f"payment watcher, {args.logs} transfer logs to {args.addresses} deposit addresses")
    print(f"  making them on chain: {made:.1f} s")
    print(f"  reading and recording: {args.logs / reading:,.0f} logs/s ({reading:.2f} s)")
    print(f"  crediting (deposits):  {args.logs / crediting:,.0f} logs/s ({crediting:.2f} s)")
    total = reading + crediting
    print(f"  both:                  {args.logs / total:,.0f} logs/s   (goal ≥ 500)")


if __name__ == "__main__":
    main()
