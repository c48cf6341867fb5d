"""``synor demo``: a month of realistic usage for about 50 accounts across every service, billed.

The demo bills the last full calendar month. It runs on a clock of its own that walks through
that month, so every event is ingested through the metering service exactly as a live one would
be (validated, deduplicated, within its lateness window), then closes the period after its grace
period, and records a few payments. Everything is derived from a fixed seed: running it again
finds every event a duplicate and every account already invoiced, and changes nothing.

Accounts are named ``demo_001`` … and use every rule the engine has: graduated storage, percent
and fixed discounts, a reserved commitment, credit grants (one expiring), prepaid deposits, an
SLA credit after an outage.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from synor_economics.domain.billing import AccountTerms, IssuedInvoice
from synor_economics.domain.period import Period
from synor_economics.domain.terms import Commitment, CreditGrant, Discount, DiscountKind, Scope
from synor_economics.services.system import System

SYNOR = 10**18
GB = 10**9
MB = 10**6
SEED = 2026


class MovableClock:
    """The demo's clock: it stands where the demo puts it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@dataclass(frozen=True, slots=True)
class Profile:
    """How big an account is, and which services it uses."""

    scale: int
    """Percent of a typical account's usage: quantities stay integers, never floats."""
    services: tuple[str, ...]
    gpu: bool


@dataclass(frozen=True, slots=True)
class DemoReport:
    period: Period
    accounts: int
    events: int
    accepted: int
    invoices: tuple[IssuedInvoice, ...]
    ledger_ok: bool


def accounts(count: int) -> dict[str, Profile]:
    rng = random.Random(SEED)  # noqa: S311  (demo data from a fixed seed, not secrets)
    services = ("storage", "hosting", "database", "compute")
    found = {}
    for index in range(1, count + 1):
        chosen = tuple(s for s in services if rng.random() < 0.75) or ("compute",)
        found[f"demo_{index:03d}"] = Profile(
            scale=rng.choice((20, 50, 100, 200, 500)),
            services=chosen,
            gpu="compute" in chosen and rng.random() < 0.2,
        )
    return found


def _events(
    name: str, profile: Profile, day: datetime, rng: random.Random
) -> Iterator[dict[str, str]]:
    """One day of one account's usage (counters), as producers would send it."""

    def some(low: int, high: int, unit: int = 1) -> int:
        """A quantity between ``low`` and ``high`` units, scaled to the account's size."""
        return rng.randrange(low, high) * unit * profile.scale // 100

    def event(resource: str, quantity: int, hour: int, **extra: str) -> dict[str, str]:
        ts = day + timedelta(hours=hour, minutes=rng.randrange(60))
        return {
            "id": f"{name}-{resource}-{ts:%Y%m%dT%H%M}-{rng.randrange(10**6):06d}",
            "account": name,
            "resource": resource,
            "quantity": str(max(quantity, 1)),
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "operator": f"node_{rng.randrange(1, 8)}",
            **extra,
        }

    for hour in (2, 10, 18):
        if "compute" in profile.services:
            yield event("compute.cpu", some(2000, 12000), hour)
            yield event("compute.memory", some(8000, 40000), hour)
            yield event("compute.serverless", some(5_000, 80_000), hour)
            if profile.gpu and hour == 10:
                yield event("compute.gpu.rtx4090", some(1800, 14_400), hour)
        if "database" in profile.services:
            yield event("database.queries", some(50_000, 900_000), hour)
            if hour == 10:
                yield event("database.vector_search", some(2_000, 60_000), hour)
        if "hosting" in profile.services:
            yield event("hosting.bandwidth", some(200, 6000, MB), hour)
            yield event("network.egress", some(100, 2000, MB), hour)
        if "storage" in profile.services and hour == 18:
            yield event("storage.retrieval", some(100, 5000, MB), hour)
            if rng.random() < 0.3:
                yield event("storage.deal", rng.randrange(1, 4), hour)


def _gauges(
    name: str, profile: Profile, period: Period, rng: random.Random
) -> list[dict[str, str]]:
    """Levels that change a few times a month: stored bytes, database size, domains."""
    found = []
    days = (period.end - period.start).days

    def level(resource: str, subject: str, value: int, day: int) -> dict[str, str]:
        ts = period.start + timedelta(days=day, hours=rng.randrange(24))
        return {
            "id": f"{name}-{resource}-{subject}-{day}",
            "account": name,
            "resource": resource,
            "quantity": str(value),
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "subject": subject,
        }

    if "storage" in profile.services:
        for bucket in range(rng.randrange(1, 4)):
            size = rng.randrange(20, 800) * GB * profile.scale // 100
            for day in sorted(rng.sample(range(days), 3)):
                found.append(level("storage.storage", f"bucket-{bucket}", size, day))
                size = size * rng.randrange(90, 140) // 100  # buckets grow, sometimes shrink
    if "database" in profile.services:
        size = rng.randrange(1, 60) * GB * profile.scale // 100
        found.append(level("database.storage", "main", size, 0))
    if "hosting" in profile.services:
        found.append(level("hosting.custom_domain", "primary", 1, 0))
        found.append(level("hosting.ssl_certificate", "primary", 1, 0))
        if rng.random() < 0.4:
            found.append(level("hosting.custom_domain", "secondary", 1, rng.randrange(days)))
    return found


def _terms(system: System, names: list[str], period: Period, rng: random.Random) -> None:
    billing = system.billing
    for index, name in enumerate(names):
        billing.set_account(AccountTerms(name, payment_terms_days=rng.choice((7, 14, 30))))
        if index % 3 == 0:
            amount = rng.randrange(5, 60) * SYNOR
            billing.deposit(name, amount, f"demo:{name}:deposit:{period.label}")
        if index % 4 == 0:
            billing.grant_credit(name, CreditGrant(f"welcome-{period.label}", 3 * SYNOR, 3 * SYNOR))
        if index % 9 == 0:
            billing.grant_credit(
                name,
                CreditGrant(
                    f"launch-{period.label}",
                    2 * SYNOR,
                    2 * SYNOR,
                    priority=0,
                    expires_at=period.start + timedelta(days=10),
                ),
            )  # an old promotion: it expires unused before the month ends (breakage)
        if index % 5 == 0:
            billing.add_discount(
                name,
                Discount(
                    "volume-10",
                    DiscountKind.PERCENT,
                    percent=Decimal(10),
                    scope=Scope(service="compute"),
                ),
            )
        if index % 11 == 0:
            billing.add_discount(name, Discount("partner", DiscountKind.FIXED, amount=SYNOR))
        if index % 13 == 0:
            billing.add_commitment(
                name,
                Commitment(
                    "reserved-cpu", "compute.cpu", Decimal(500), Decimal("0.014"), 12, period.start
                ),
            )


def run_demo(
    build: Callable[[MovableClock], System],
    period: Period,
    count: int = 50,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> DemoReport:
    """Meter a month of usage for ``count`` accounts and bill it."""
    clock = MovableClock(period.start + timedelta(minutes=1))
    system = build(clock)
    try:
        rng = random.Random(SEED)  # noqa: S311  (demo data from a fixed seed, not secrets)
        profiles = accounts(count)
        names = sorted(profiles)
        _terms(system, names, period, rng)
        gauges = [e for n in names for e in _gauges(n, profiles[n], period, rng)]
        days = (period.end - period.start).days
        sent = accepted = 0
        for day_index in range(days):
            day = period.start + timedelta(days=day_index)
            batch = [e for n in names for e in _events(n, profiles[n], day, rng)]
            batch += [g for g in gauges if g["ts"].startswith(f"{day:%Y-%m-%d}")]
            clock.at = day + timedelta(days=1)
            outcomes = system.usage.ingest(batch, source="file")
            sent += len(batch)
            accepted += sum(1 for o in outcomes if o.status == "accepted")
            progress(day_index + 1, days + 1)
        system.billing.report_downtime(
            f"demo:compute-outage:{period.label}", "compute", period, Decimal(90), None
        )  # 1.5 h down in a 30-day month: 99.79% uptime, a 10% SLA credit on compute
        clock.at = period.end + system.billing.grace + timedelta(minutes=5)
        system.billing.close_period(period)
        invoices = system.billing.invoices(period=period, limit=10_000)
        for index, invoice in enumerate(sorted(invoices, key=lambda i: i.number)):
            if index % 4 == 1 and invoice.outstanding:
                system.billing.pay(
                    invoice.number, invoice.outstanding, f"demo:pay:{invoice.number}"
                )
        progress(days + 1, days + 1)
        return DemoReport(
            period=period,
            accounts=count,
            events=sent,
            accepted=accepted,
            invoices=tuple(system.billing.invoices(period=period, limit=10_000)),
            ledger_ok=system.ledger.check().ok,
        )
    finally:
        system.close()
