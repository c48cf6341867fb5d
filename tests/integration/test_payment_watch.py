"""The payment watcher on real parts: the project's contracts on the in-process EVM, invoices
issued by billing on SQLite, payments made on chain and credited once, after N confirmations,
through reorgs and crashes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from synor_economics.adapters.chain.compiled import load_artifact
from synor_economics.adapters.chain.deployment import deploy_all, local_plan
from synor_economics.adapters.chain.evm import EvmChain
from synor_economics.adapters.chain.payment_logs import EvmPaymentChain
from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql.uow import ORACLE_LOCK_KEY, USAGE_LOCK_KEY, SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.billing import InvoiceStatus
from synor_economics.domain.period import Period
from synor_economics.services.billing import BillingService
from synor_economics.services.ledger import LedgerService
from synor_economics.services.payment_watch import PaymentWatcher
from synor_economics.services.usage import UsageService
from tests.conftest import migrated_engine

SYNOR = 10**18
NOV = Period.month(2026, 11)
CONFIRMATIONS = 3


@dataclass
class Contracts:
    chain: EvmChain
    token: Contract
    payments: Contract
    treasury: str


@dataclass
class World:
    contracts: Contracts
    billing: BillingService
    ledger: LedgerService
    watcher: PaymentWatcher
    payer: LocalAccount
    invoice: str
    due: int

    @property
    def chain(self) -> EvmChain:
        return self.contracts.chain

    def pay_invoice(self, amount: int, reference: str | None = None) -> None:
        """Approve and pay through InvoicePayments, as a customer's wallet would."""
        token, payments = self.contracts.token, self.contracts.payments
        self.chain.transact(token.functions.approve(payments.address, amount), self.payer)
        self.chain.transact(
            payments.functions.pay(reference or self.invoice, amount), self.payer, gas=200_000
        )

    def send(self, to: str, amount: int, token: Contract | None = None) -> None:
        contract = token or self.contracts.token
        self.chain.transact(contract.functions.transfer(to, amount), self.payer)

    def statuses(self) -> list[tuple[str, str, int]]:
        return sorted((r.payment.kind, r.status, r.payment.amount) for r in self.watcher.listing())


@pytest.fixture(scope="module")
def deployed() -> Contracts:
    chain = EvmChain.in_process()
    signers = chain.funded_signers()
    addresses = deploy_all(chain, local_plan(chain, reporters=1)).addresses
    token = chain.contract("SynorToken", addresses["SynorToken"])
    chain.transact(token.functions.transfer(signers[6].address, 1_000 * SYNOR), signers[0])
    return Contracts(
        chain,
        token,
        chain.contract("InvoicePayments", addresses["InvoicePayments"]),
        signers[9].address,
    )


@pytest.fixture
def world(deployed: Contracts, sqlite_url: str) -> Iterator[World]:
    snapshot = deployed.chain.snapshot()
    engine = migrated_engine(sqlite_url)
    clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))
    catalog = load_default_catalog()
    uow = SqlUnitOfWork(engine)
    ledger = LedgerService(uow, clock)
    billing = BillingService(uow, clock, catalog, rate_source=lambda: Fraction(1, 4))
    usage = UsageService(
        SqlUnitOfWork(engine, lock_key=USAGE_LOCK_KEY, shared=True), clock, catalog
    )
    # 360,000 core-seconds = 100 core-hours = 2 SYNOR
    usage.ingest(
        [
            {
                "id": "e1",
                "account": "acct_a",
                "resource": "compute.cpu",
                "quantity": "360000",
                "ts": "2026-11-10T00:00:00Z",
            }
        ],
        source="http",
    )
    clock.at = NOV.end + timedelta(hours=2)
    (number,) = billing.close_period(NOV).issued
    chain = deployed.chain
    watcher = PaymentWatcher(
        SqlUnitOfWork(engine, lock_key=ORACLE_LOCK_KEY),
        billing,
        clock,
        lambda: EvmPaymentChain(
            chain, deployed.token.address, deployed.payments.address, deployed.treasury
        ),
        confirmations=CONFIRMATIONS,
    )
    payer = chain.funded_signers()[6]
    yield World(
        deployed, billing, ledger, watcher, payer, number, billing.invoice(number).total_due
    )
    ledger.close()
    engine.dispose()
    chain.revert(snapshot)


def test_an_invoice_payment_is_credited_once_after_its_confirmations(world: World) -> None:
    assert world.due == 2 * SYNOR
    world.pay_invoice(world.due)
    first = world.watcher.poll()
    assert (first.seen, first.credited) == (1, 0)  # one log, not two: the token's half is dropped
    assert world.statuses() == [("invoice", "pending", world.due)]
    assert world.billing.invoice(world.invoice).status is InvoiceStatus.FINALIZED

    world.chain.mine(CONFIRMATIONS - 1)
    second = world.watcher.poll()
    assert second.credited == 1
    assert world.statuses() == [("invoice", "credited", world.due)]
    assert world.billing.invoice(world.invoice).status is InvoiceStatus.PAID
    assert world.ledger.account("customer:acct_a:receivable").posted == 0

    world.chain.mine(5)
    again = world.watcher.poll()  # nothing new, nothing credited twice
    assert (again.seen, again.credited) == (0, 0)
    assert world.ledger.account("chain:clearing").posted == world.due
    assert world.ledger.check().ok


def test_deposits_overpayments_and_what_cannot_be_credited(world: World) -> None:
    deposit = world.chain.funded_signers()[7].address
    world.watcher.add_deposit_address(deposit, "acct_b")
    world.send(deposit, 5 * SYNOR)  # acct_b's deposit address
    world.pay_invoice(world.due + SYNOR)  # one SYNOR too much: prepaid
    world.send(world.contracts.treasury, 3 * SYNOR)  # names nothing: unmatched
    world.pay_invoice(SYNOR, reference="SYN-2026-999999")  # no such invoice: unmatched
    lookalike_artifact = load_artifact("SynorToken")
    owner = world.chain.funded_signers()[6]
    lookalike = world.chain.bind(
        lookalike_artifact,
        world.chain.deploy(lookalike_artifact, owner, "Synor", "SYNOR", 10 * SYNOR),
    )
    world.send(world.contracts.treasury, SYNOR, token=lookalike)  # another token: never seen
    world.chain.mine(CONFIRMATIONS)
    report = world.watcher.poll()
    assert report.seen == 4
    assert report.credited == 2
    assert report.unmatched == 2
    assert world.statuses() == [
        ("invoice", "credited", world.due + SYNOR),
        ("invoice", "unmatched", SYNOR),
        ("transfer", "credited", 5 * SYNOR),
        ("transfer", "unmatched", 3 * SYNOR),
    ]
    notes = {r.status + ":" + (r.note or "") for r in world.watcher.listing(status="unmatched")}
    assert any("SYN-2026-999999" in n for n in notes)
    assert any("names no invoice or account" in n for n in notes)
    assert world.ledger.account("customer:acct_b:prepaid").posted == 5 * SYNOR
    assert world.ledger.account("customer:acct_a:prepaid").posted == SYNOR
    assert world.billing.invoice(world.invoice).status is InvoiceStatus.PAID


def test_a_crash_after_crediting_and_before_recording_it_credits_nothing_twice(
    world: World,
) -> None:
    world.pay_invoice(world.due)
    world.chain.mine(CONFIRMATIONS)
    chain = world.watcher.chain()
    (payment,) = chain.payments(0, chain.head(), [])
    # The watcher credited it, then died before marking it credited.
    world.billing.pay(world.invoice, payment.amount, payment.key)
    report = world.watcher.poll()
    assert report.credited == 1
    assert world.statuses() == [("invoice", "credited", world.due)]
    assert world.ledger.account("customer:acct_a:receivable").posted == 0
    assert world.ledger.account("customer:acct_a:prepaid").posted == 0  # not paid twice
    assert world.ledger.account("chain:clearing").posted == world.due


def test_a_reorg_orphans_a_payment_its_branch_lost_and_credits_the_new_branch(
    world: World,
) -> None:
    fork = world.chain.snapshot()
    world.pay_invoice(world.due)  # on the branch about to be lost
    first = world.watcher.poll()
    assert first.seen == 1
    assert first.credited == 0

    world.chain.revert(fork)  # the reorg: a different branch from the fork on
    deposit = world.chain.funded_signers()[7].address
    world.watcher.add_deposit_address(deposit, "acct_b")
    world.chain.mine(1)
    world.send(deposit, 4 * SYNOR)
    world.chain.mine(CONFIRMATIONS)
    second = world.watcher.poll()
    assert second.reorg
    assert second.orphaned == 1
    assert second.credited == 1
    assert world.statuses() == [
        ("invoice", "orphaned", world.due),
        ("transfer", "credited", 4 * SYNOR),
    ]
    assert world.billing.invoice(world.invoice).status is InvoiceStatus.FINALIZED  # unpaid
    assert world.ledger.account("customer:acct_b:prepaid").posted == 4 * SYNOR

    # The lost payment is sent again on the new branch: it is a new transaction, credited.
    world.pay_invoice(world.due)
    world.chain.mine(CONFIRMATIONS)
    assert world.watcher.poll().credited == 1
    assert world.billing.invoice(world.invoice).status is InvoiceStatus.PAID


def test_a_payment_orphaned_by_a_reorg_is_credited_when_the_chain_comes_back_to_it(
    world: World,
) -> None:
    fork = world.chain.snapshot()
    world.pay_invoice(world.due)
    assert world.watcher.poll().seen == 1
    with_payment = world.chain.snapshot()

    world.chain.revert(fork)  # a branch without it ...
    world.chain.mine(4)
    assert world.watcher.poll().orphaned == 1
    world.chain.revert(with_payment)  # ... and back to the one with it, now the longer one
    world.chain.mine(6)
    report = world.watcher.poll()
    assert report.reorg
    assert report.credited == 1
    assert world.statuses() == [("invoice", "credited", world.due)]
    assert world.billing.invoice(world.invoice).status is InvoiceStatus.PAID
