"""Closing a billing period from stored aggregates, on SQLite (goal: ≥ 2,000 invoices/s).

Fills a fresh database with hourly usage rollups for ``--accounts`` accounts × ``--resources``
resources in November 2026 (as metering leaves them), then closes the period through the
product's own path (composition root → BillingService → SQL), ledger postings included, and
prints invoices per second. It then closes again (every account already invoiced: nothing
changes) and runs the ledger's invariant check.

Usage: python bench/billing.py [--accounts 100000] [--resources 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.progress import Progress
from sqlalchemy import insert

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql.tables import usage_hourly, usage_series
from synor_economics.bootstrap import build, tune_for_throughput
from synor_economics.config import Settings
from synor_economics.domain.period import Period

COUNTERS = (
    "compute.cpu", "compute.gpu.rtx4090", "compute.memory", "compute.serverless",
    "database.queries", "database.vector_search", "hosting.bandwidth", "storage.deal",
    "storage.retrieval", "network.egress",
)  # fmt: skip
NOVEMBER = Period.month(2026, 11)
HOUR_US = 3_600_000_000


def fill(url: str, accounts: int, resources: int) -> None:
    """One hourly rollup per (account, resource), spread over the month."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    rng = random.Random(11)
    start_us = int(NOVEMBER.start.timestamp()) * 1_000_000
    pairs = [
        {"series": number, "account": f"acct_{index:06d}", "resource": resource}
        for number, (index, resource) in enumerate(
            ((index, resource) for index in range(accounts) for resource in COUNTERS[:resources]),
            start=1,
        )
    ]
    rows = [
        {
            "series": pair["series"],
            "hour_us": start_us + rng.randrange(720) * HOUR_US,
            "quantity": Decimal(rng.randrange(1, 10**7)),
            "events": 1,
        }
        for pair in pairs
    ]
    with engine.begin() as conn:
        for table, values in ((usage_series, pairs), (usage_hourly, rows)):
            for offset in range(0, len(values), 50_000):
                conn.execute(insert(table), values[offset : offset + 50_000])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--resources", type=int, default=10, choices=range(1, 11))
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synor-bench-") as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        clock = FixedClock(NOVEMBER.end + timedelta(hours=2))
        system = build(Settings(database_url=url, synor_usd=Decimal("0.25")), clock=clock)
        started = time.perf_counter()
        fill(url, args.accounts, args.resources)
        print(
            f"stored {args.accounts:,} accounts × {args.resources} resources of rollups "
            f"in {time.perf_counter() - started:.1f} s"
        )
        tune_for_throughput()
        with Progress(transient=True) as bar:
            task = bar.add_task("closing 2026-11", total=args.accounts)
            started = time.perf_counter()
            report = system.billing.close_period(
                NOVEMBER, progress=lambda done, total: bar.update(task, completed=done)
            )
            elapsed = time.perf_counter() - started
        assert len(report.issued) == args.accounts, len(report.issued)
        print(
            f"close 2026-11: {len(report.issued):,} invoices in {elapsed:.1f} s = "
            f"{len(report.issued) / elapsed:,.0f} invoices/s (ledger postings included; "
            f"goal 2,000/s)"
        )
        started = time.perf_counter()
        again = system.billing.close_period(NOVEMBER)
        print(
            f"close again: {len(again.issued)} issued, {again.already:,} already invoiced, "
            f"in {time.perf_counter() - started:.1f} s"
        )
        started = time.perf_counter()
        check = system.ledger.check()
        print(
            f"ledger check: {'OK' if check.ok else 'BROKEN'} — {check.transfers:,} transfers "
            f"in {time.perf_counter() - started:.1f} s"
        )
        system.close()
    _ = datetime.now(UTC)


if __name__ == "__main__":
    main()
