"""Billing against real storage (SQLite and PostgreSQL): usage ingested through the metering
service, periods closed into numbered invoices with their ledger transfers, payments, deposits,
grants with breakage, standing; closing twice changes nothing and the ledger stays sound."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql.uow import USAGE_LOCK_KEY, SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.billing import AccountTerms, InvoiceStatus, StandingStatus
from synor_economics.domain.period import Period
from synor_economics.domain.terms import Commitment, CreditGrant, Discount, DiscountKind
from synor_economics.services.billing import BillingError, BillingService
from synor_economics.services.ledger import LedgerService
from synor_economics.services.time import to_us
from synor_economics.services.usage import UsageService
from tests.conftest import migrated_engine

SYNOR = 10**18
NOV = Period.month(2026, 11)
CATALOG = load_default_catalog()


@dataclass
class World:
    clock: FixedClock
    usage: UsageService
    billing: BillingService
    ledger: LedgerService

    def events(self, *events: dict[str, str]) -> None:
        outcomes = self.usage.ingest(list(events), source="http")
        assert all(o.status == "accepted" for o in outcomes), outcomes

    def balance(self, account: str) -> int:
        return self.ledger.account(account).posted


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    engine = migrated_engine(url)
    clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))
    uow = SqlUnitOfWork(engine)
    ledger = LedgerService(uow, clock)
    world = World(
        clock,
        UsageService(SqlUnitOfWork(engine, lock_key=USAGE_LOCK_KEY, shared=True), clock, CATALOG),
        BillingService(uow, clock, CATALOG, rate_source=lambda: Fraction(1, 4)),
        ledger,
    )
    yield world
    ledger.close()
    engine.dispose()


def cpu(
    event_id: str, account: str, core_seconds: str, ts: str = "2026-11-10T00:00:00Z"
) -> dict[str, str]:
    return {
        "id": event_id,
        "account": account,
        "resource": "compute.cpu",
        "quantity": core_seconds,
        "ts": ts,
    }


def after_close(world: World) -> None:
    world.clock.at = NOV.end + timedelta(hours=2)


def test_draft_close_and_ledger(world: World) -> None:
    # acct_a: 360000 core-seconds = 100 core-hours = 2 SYNOR; 50 GB held since 1 Nov = 1 SYNOR
    world.events(
        cpu("e1", "acct_a", "360000"),
        {
            "id": "e2", "account": "acct_a", "resource": "storage.storage",
            "quantity": "50000000000", "subject": "b", "ts": "2026-11-01T00:00:00Z",
        },
        cpu("e3", "acct_b", "180000"),
    )  # fmt: skip
    world.billing.add_discount("acct_a", Discount("d1", DiscountKind.PERCENT, percent=Decimal(10)))
    # the draft is always up to date: storage so far is 19 of 30 days = 50 × 19/30 × 0.02
    draft = world.billing.draft("acct_a", NOV)
    storage = next(line for line in draft.rated.lines if line.resource == "storage.storage")
    assert storage.quantity == Fraction(50 * 19, 30)
    with pytest.raises(BillingError, match="grace"):
        world.billing.close_period(NOV)
    after_close(world)
    report = world.billing.close_period(NOV)
    assert report.issued == ("SYN-2026-000001", "SYN-2026-000002")
    first = world.billing.invoice("SYN-2026-000001")
    # 3 SYNOR less 10% = 2.7 due
    assert (first.account, first.subtotal, first.total_due) == (
        "acct_a",
        27 * SYNOR // 10,
        27 * SYNOR // 10,
    )
    assert first.catalog_digest == CATALOG.digest
    assert first.rate == "0.25"
    assert first.status is InvoiceStatus.FINALIZED
    assert world.balance("customer:acct_a:receivable") == 27 * SYNOR // 10
    assert world.balance("revenue:compute") == 3 * SYNOR  # acct_a 2 + acct_b 1
    assert world.balance("revenue:discounts") == -3 * SYNOR // 10
    # closing again changes nothing
    again = world.billing.close_period(NOV)
    assert (again.issued, again.already) == ((), 2)
    assert len(world.billing.invoices()) == 2
    assert world.ledger.check().ok


def test_prepaid_credits_payments_and_standing(world: World) -> None:
    world.billing.set_account(AccountTerms("acct_a", payment_terms_days=7, suspend_after_days=10))
    world.billing.deposit("acct_a", SYNOR, "dep-1")
    world.billing.deposit("acct_a", SYNOR, "dep-1")  # a retry: applied once
    with pytest.raises(BillingError, match="other details"):
        world.billing.deposit("acct_a", 2 * SYNOR, "dep-1")
    expiry = datetime(2026, 11, 25, tzinfo=UTC)
    world.billing.grant_credit("acct_a", CreditGrant("promo", SYNOR, SYNOR))
    world.billing.grant_credit("acct_a", CreditGrant("old", SYNOR, SYNOR, expires_at=expiry))
    # 720000 core-seconds = 200 core-hours = 4 SYNOR: 1 from the grant, 1 prepaid, 2 due
    world.events(cpu("e1", "acct_a", "720000"))
    after_close(world)
    (number,) = world.billing.close_period(NOV).issued
    invoice = world.billing.invoice(number)
    assert (invoice.credits_applied, invoice.prepaid_applied, invoice.total_due) == (
        SYNOR, SYNOR, 2 * SYNOR,
    )  # fmt: skip
    assert world.balance("customer:acct_a:prepaid") == 0
    # the grant that expired before the period's end paid nothing and is written off
    assert world.balance("breakage") == SYNOR
    assert world.balance("customer:acct_a:credits") == 0
    # a payment of 3 against 2 due: 2 settle the invoice, 1 goes to prepaid
    world.billing.pay(number, 3 * SYNOR, "0x1:0xabc:0")
    paid = world.billing.invoice(number)
    assert (paid.status, paid.paid, paid.outstanding) == (InvoiceStatus.PAID, 2 * SYNOR, 0)
    assert world.balance("customer:acct_a:prepaid") == SYNOR
    assert world.balance("customer:acct_a:receivable") == 0
    assert world.billing.standing("acct_a").status is StandingStatus.GOOD
    assert world.ledger.check().ok


def test_standing_goes_overdue_then_suspended(world: World) -> None:
    world.billing.set_account(AccountTerms("acct_a", payment_terms_days=7, suspend_after_days=10))
    world.events(cpu("e1", "acct_a", "360000"))
    after_close(world)
    (number,) = world.billing.close_period(NOV).issued
    assert world.billing.standing("acct_a").status is StandingStatus.GOOD
    world.clock.advance(timedelta(days=8))
    overdue = world.billing.standing("acct_a")
    assert (overdue.status, overdue.days_overdue, overdue.overdue_invoices) == (
        StandingStatus.OVERDUE, 1, (number,),
    )  # fmt: skip
    world.clock.advance(timedelta(days=9))
    assert world.billing.standing("acct_a").suspend
    world.billing.pay(number, 2 * SYNOR, "pay-1")
    assert world.billing.standing("acct_a").status is StandingStatus.GOOD


def test_commitments_bill_without_usage_and_downtime_credits(world: World) -> None:
    world.billing.add_commitment(
        "acct_c",
        Commitment(
            "r1", "compute.cpu", Decimal(100), Decimal("0.015"), 12,
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
    )  # fmt: skip
    world.events(cpu("e1", "acct_d", "360000"))
    # 43.2 minutes of compute downtime for everyone in a 30-day month: 99.9% uptime, no credit;
    # 86.4 more minutes for acct_d: 99.7%, a 10% SLA credit
    assert world.billing.report_downtime("r-all", "compute", NOV, Decimal("43.2"), None)
    assert not world.billing.report_downtime("r-all", "compute", NOV, Decimal("43.2"), None)
    world.billing.report_downtime("r-d", "compute", NOV, Decimal("86.4"), "acct_d")
    after_close(world)
    issued = world.billing.close_period(NOV).issued
    by_account = {world.billing.invoice(n).account: world.billing.invoice(n) for n in issued}
    assert by_account["acct_c"].subtotal == 15 * SYNOR // 10  # 100 × 0.015, unused
    assert by_account["acct_d"].subtotal == 18 * SYNOR // 10  # 2 less 10%
    assert world.ledger.check().ok


def test_numbers_stay_gapless_across_closes_and_restart_each_year(world: World) -> None:
    october = Period.month(2026, 10)
    world.clock.at = datetime(2026, 10, 20, tzinfo=UTC)
    for index in range(7):
        world.events(cpu(f"e{index}", f"acct_{index}", "3600", ts="2026-10-10T00:00:00Z"))
    world.clock.at = october.end + timedelta(hours=2)
    first = world.billing.close_period(october).issued
    world.events(cpu("nov", "acct_x", "3600", ts="2026-11-01T01:00:00Z"))
    after_close(world)
    second = world.billing.close_period(NOV).issued
    assert [*first, *second] == [f"SYN-2026-{n:06d}" for n in range(1, 9)]
    december = Period.month(2026, 12)
    world.events(cpu("dec", "acct_x", "3600", ts="2026-12-01T01:00:00Z"))
    world.clock.at = december.end + timedelta(hours=2)  # issued in 2027: a new series
    assert world.billing.close_period(december).issued == ("SYN-2027-000001",)


def test_void_reverses_and_the_period_can_be_billed_again(world: World) -> None:
    world.billing.deposit("acct_a", SYNOR, "dep")
    world.billing.grant_credit("acct_a", CreditGrant("g", SYNOR // 2, SYNOR // 2))
    world.events(cpu("e1", "acct_a", "360000"))  # 2 SYNOR: 0.5 credit, 1 prepaid, 0.5 due
    after_close(world)
    (number,) = world.billing.close_period(NOV).issued
    assert world.balance("customer:acct_a:prepaid") == 0
    voided = world.billing.void(number, "wrong price book")
    assert voided.status is InvoiceStatus.VOID
    assert world.billing.void(number, "again").status is InvoiceStatus.VOID  # a no-op
    # credits and prepaid are back, nothing is receivable or earned
    assert world.balance("customer:acct_a:prepaid") == SYNOR
    assert world.balance("customer:acct_a:credits") == SYNOR // 2
    assert world.balance("customer:acct_a:receivable") == 0
    assert world.balance("revenue:compute") == 0
    assert world.billing.standing("acct_a").outstanding == 0
    (reissued,) = world.billing.close_period(NOV).issued
    assert reissued != number
    assert world.billing.invoice(reissued).credits_applied == SYNOR // 2
    assert world.ledger.check().ok


def test_credit_notes_take_off_what_is_due_then_go_to_prepaid(world: World) -> None:
    world.events(cpu("e1", "acct_a", "360000"))  # 2 SYNOR due
    after_close(world)
    (number,) = world.billing.close_period(NOV).issued
    world.billing.pay(number, SYNOR // 2, "p1")
    with pytest.raises(BillingError, match="credit note"):
        world.billing.void(number, "too late")
    note = world.billing.credit_note(number, SYNOR, "outage", "cn-1")
    assert note.corrects == number
    assert note.number == "SYN-2026-000002"
    assert world.billing.credit_note(number, SYNOR, "outage", "cn-1") == note  # once
    invoice = world.billing.invoice(number)
    assert (invoice.credited, invoice.outstanding) == (SYNOR, SYNOR // 2)
    # 1 more: 0.5 settles the invoice, 0.5 goes to prepaid; then nothing is left to credit
    world.billing.credit_note(number, SYNOR, "goodwill", "cn-2")
    settled = world.billing.invoice(number)
    assert (settled.status, settled.outstanding) == (InvoiceStatus.PAID, 0)
    assert world.balance("customer:acct_a:prepaid") == SYNOR // 2
    assert world.balance("revenue:credit_notes") == -2 * SYNOR
    with pytest.raises(BillingError, match="at most 0"):
        world.billing.credit_note(number, 1, "more", "cn-3")
    assert world.ledger.check().ok


def test_the_scheduler_closes_after_the_grace_period_and_sends_notices(world: World) -> None:
    from synor_economics.services.scheduler import BillingScheduler

    world.billing.set_account(
        AccountTerms("acct_a", payment_terms_days=5, reminder_after_days=2, suspend_after_days=9)
    )
    world.events(cpu("e1", "acct_a", "360000"))
    scheduler = BillingScheduler(world.billing, world.clock)
    world.clock.at = NOV.end + timedelta(minutes=30)  # inside the grace period: nothing yet
    assert scheduler.tick() == []
    world.clock.at = NOV.end + timedelta(hours=1)
    (number,) = scheduler.tick()
    assert scheduler.tick() == []  # closed once
    assert BillingScheduler(world.billing, world.clock).tick() == []  # another worker: no-op
    world.clock.advance(timedelta(days=6))  # 1 day past due: no reminder yet
    scheduler.tick()
    assert world.billing.notices("acct_a") == []
    world.clock.advance(timedelta(days=1))
    scheduler.tick()
    scheduler.tick()
    assert [(n.invoice, n.kind.value) for n in world.billing.notices("acct_a")] == [
        (number, "reminder")
    ]
    world.clock.advance(timedelta(days=7))
    scheduler.tick()
    assert [n.kind.value for n in world.billing.notices("acct_a")] == ["reminder", "suspension"]
    assert world.billing.standing("acct_a").suspend


def test_usage_arriving_after_finalisation_is_carried_to_the_next_invoice(world: World) -> None:
    october = Period.month(2026, 10)
    world.clock.at = datetime(2026, 10, 20, tzinfo=UTC)
    world.events(cpu("e1", "acct_a", "360000", ts="2026-10-10T00:00:00Z"))  # 100 h = 2 SYNOR
    world.clock.at = october.end + timedelta(hours=2)
    (october_invoice,) = world.billing.close_period(october).issued
    # 50 more core-hours of October arrive on 5 November: 1 SYNOR more
    world.clock.at = datetime(2026, 11, 5, tzinfo=UTC)
    world.events(cpu("late", "acct_a", "180000", ts="2026-10-30T00:00:00Z"))
    world.events(cpu("nov", "acct_a", "36000", ts="2026-11-02T00:00:00Z"))  # 10 h = 0.2
    after_close(world)
    (november_invoice,) = world.billing.close_period(NOV).issued
    invoice = world.billing.invoice(november_invoice)
    late = [a for a in invoice.document["adjustments"] if a["kind"] == "late_usage"]
    assert late == [
        {"kind": "late_usage", "source": october_invoice, "line": "compute", "percent": None,
         "amount": str(SYNOR)},
    ]  # fmt: skip
    assert invoice.subtotal == 12 * SYNOR // 10
    assert world.balance("revenue:compute") == 32 * SYNOR // 10  # 2 + 0.2 + 1
    # December: no new usage and nothing more arrived late: no invoice, nothing carried twice
    december = Period.month(2026, 12)
    world.clock.at = december.end + timedelta(hours=2)
    assert world.billing.close_period(december).issued == ()
    assert world.ledger.check().ok


def test_accounts_anchored_on_another_day_have_periods_of_their_own(world: World) -> None:
    from synor_economics.services.scheduler import BillingScheduler

    world.billing.set_account(AccountTerms("acct_mid", anchor_day=15))
    world.events(
        cpu("m1", "acct_mid", "360000", ts="2026-11-19T12:00:00Z"),
        cpu("c1", "acct_cal", "360000"),
    )
    mid_period = Period(datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 12, 15, tzinfo=UTC))
    assert world.billing.period_of("acct_mid") == mid_period
    assert world.billing.draft("acct_mid", mid_period).rated.subtotal == 2 * SYNOR
    scheduler = BillingScheduler(world.billing, world.clock)
    after_close(world)  # 1 December: the calendar month closes; 15 Nov – 15 Dec is still open
    issued = scheduler.tick()
    assert [world.billing.invoice(n).account for n in issued] == ["acct_cal"]
    world.clock.at = mid_period.end + timedelta(hours=1)
    (number,) = scheduler.tick()
    invoice = world.billing.invoice(number)
    assert (invoice.account, invoice.period_start_us) == ("acct_mid", to_us(mid_period.start))
    assert invoice.subtotal == 2 * SYNOR
    assert world.ledger.check().ok


def test_two_closers_at_once_bill_every_account_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' schedulers closing the same period together: chunks are prepared ahead
    of their commit, so one closer can find an account invoiced by the other in between; it
    leaves it to the other. Every account ends with one invoice, numbers without a gap."""
    import threading

    import synor_economics.services.billing as billing_module

    monkeypatch.setattr(billing_module, "CHUNK", 4)
    world.events(*(cpu(f"e{n}", f"acct_{n:02d}", "3600") for n in range(30)))
    after_close(world)
    other = BillingService(world.billing.uow, world.clock, CATALOG, rate_source=lambda: None)
    results: list[tuple[str, ...]] = []
    errors: list[BaseException] = []

    def close(service: BillingService) -> None:
        try:
            results.append(service.close_period(NOV).issued)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=close, args=(s,)) for s in (world.billing, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    issued = sorted(number for numbers in results for number in numbers)
    assert issued == [f"SYN-2026-{n:06d}" for n in range(1, 31)]
    accounts = [world.billing.invoice(n).account for n in issued]
    assert sorted(accounts) == [f"acct_{n:02d}" for n in range(30)]
    assert world.ledger.check().ok


def test_a_batch_of_receipts_applies_each_once_and_refuses_only_the_bad_ones(
    world: World,
) -> None:
    """What the payment watcher sends: payments and deposits in one transaction."""
    from synor_economics.services.billing import MoneyIn

    world.events(cpu("e1", "acct_a", "360000"))  # 2 SYNOR due
    after_close(world)
    (number,) = world.billing.close_period(NOV).issued
    world.billing.deposit("acct_b", SYNOR, "old")
    outcomes = world.billing.receive_all(
        [
            MoneyIn("p1", SYNOR, number=number),
            MoneyIn("p2", 2 * SYNOR, number=number),  # 1 SYNOR to the invoice, 1 to prepaid
            MoneyIn("p1", SYNOR, number=number),  # the same again in the batch: once
            MoneyIn("x", SYNOR, number="SYN-2026-999999"),  # no such invoice
            MoneyIn("old", SYNOR, account="acct_b"),  # applied before: a retry
            MoneyIn("old", 5 * SYNOR, account="acct_b"),  # same reference, other details
            MoneyIn("d1", 3 * SYNOR, account="acct_c"),
            MoneyIn("zero", 0, account="acct_c"),
        ]
    )
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == [
        "PaymentRecord", "PaymentRecord", "PaymentRecord", "InvoiceNotFoundError",
        "PaymentRecord", "BillingError", "PaymentRecord", "BillingError",
    ]  # fmt: skip
    assert outcomes[0] == outcomes[2]
    assert world.billing.invoice(number).status is InvoiceStatus.PAID
    assert world.balance("customer:acct_a:prepaid") == SYNOR
    assert world.balance("customer:acct_b:prepaid") == SYNOR
    assert world.balance("customer:acct_c:prepaid") == 3 * SYNOR
    assert world.ledger.check().ok
