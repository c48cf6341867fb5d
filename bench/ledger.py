"""Ledger posting throughput, batched, on SQLite and PostgreSQL.

Posts transfers through the product's own path (composition root → LedgerService → SQL
repository) into a fresh database, in batches, and prints transfers per second. Requests are
built before the clock starts, as a client would send them: the figure is the ledger's.

Workloads:
  two-entry   customer charges: prepaid → revenue, every one checked against the prepaid floor
              (the shape of TigerBeetle's published benchmark)
  mixed       40% deposits, 40% charges, 20% three-entry invoice postings (receivable → two
              revenue accounts)
  replay      the two-entry batches sent again: every transfer is an idempotent duplicate

Batches are sent by ``--clients`` threads at once, each sending its next batch when its last one
is answered: the ledger stores one batch while it works out the next (see services/posting.py).
With one client there is nothing to overlap.

Usage: python bench/ledger.py [--transfers 200000] [--batch 8190] [--accounts 10000]
                              [--clients 2] [--backends sqlite,postgresql] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import queue
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from synor_economics.adapters.sql.engine import scratch_postgres
from synor_economics.bootstrap import build, tune_for_throughput
from synor_economics.config import Settings
from synor_economics.domain.ledger import (
    AccountKind,
    AccountSpec,
    Applied,
    Command,
    Duplicate,
    Entry,
    Side,
    Transfer,
)
from synor_economics.services.ledger import LedgerService

SYNOR = 10**18
SERVICES = ("compute", "storage", "database", "hosting")


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="synor-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


def open_accounts(ledger: LedgerService, customers: int) -> None:
    specs = [AccountSpec.of("chain:clearing", AccountKind.CHAIN_CLEARING)]
    specs += [AccountSpec.of(f"revenue:{s}", AccountKind.REVENUE, owner=s) for s in SERVICES]
    for i in range(customers):
        specs.append(
            AccountSpec.of(f"customer:c{i}:prepaid", AccountKind.CUSTOMER_PREPAID, owner=f"c{i}")
        )
        specs.append(
            AccountSpec.of(
                f"customer:c{i}:receivable", AccountKind.CUSTOMER_RECEIVABLE, owner=f"c{i}"
            )
        )
    for start in range(0, len(specs), 5000):
        ledger.open_accounts(specs[start : start + 5000])


def fund(ledger: LedgerService, customers: int, tag: str) -> None:
    """Give every customer a large prepaid balance so charges pass their floor checks."""
    deposits: list[Command] = [
        Transfer.between(
            f"{tag}:fund:{i}",
            debit="chain:clearing",
            credit=f"customer:c{i}:prepaid",
            amount=10**9 * SYNOR,
        )
        for i in range(customers)
    ]
    for start in range(0, len(deposits), 8190):
        ledger.post_batch(deposits[start : start + 8190])


def two_entry(count: int, customers: int, tag: str, rng: random.Random) -> list[Command]:
    return [
        Transfer.between(
            f"{tag}:charge:{i:010d}",
            debit=f"customer:c{rng.randrange(customers)}:prepaid",
            credit=f"revenue:{SERVICES[i % 4]}",
            amount=rng.randrange(1, 10 * SYNOR),
            code="usage.charge",
        )
        for i in range(count)
    ]


def mixed(count: int, customers: int, tag: str, rng: random.Random) -> list[Command]:
    commands: list[Command] = []
    for i in range(count):
        customer, amount, roll = rng.randrange(customers), rng.randrange(2, 10 * SYNOR), i % 5
        if roll < 2:
            commands.append(
                Transfer.between(
                    f"{tag}:dep:{i:010d}",
                    debit="chain:clearing",
                    credit=f"customer:c{customer}:prepaid",
                    amount=amount,
                    code="prepaid.deposit",
                )
            )
        elif roll < 4:
            commands.append(
                Transfer.between(
                    f"{tag}:chg:{i:010d}",
                    debit=f"customer:c{customer}:prepaid",
                    credit="revenue:compute",
                    amount=amount,
                    code="usage.charge",
                )
            )
        else:
            half = amount // 2
            entries = (
                Entry(f"customer:c{customer}:receivable", Side.DEBIT, amount),
                Entry("revenue:compute", Side.CREDIT, half),
                Entry("revenue:storage", Side.CREDIT, amount - half),
            )
            commands.append(Transfer(f"{tag}:inv:{i:010d}", entries, code="invoice.finalize"))
    return commands


def post_all(
    ledger: LedgerService, commands: list[Command], batch: int, expect: type, clients: int
) -> float:
    """Post in batches from ``clients`` threads at once (each sends its next batch when the
    last one is answered, as API workers or metering flushers do); return transfers per second.
    Every outcome must be of the expected kind."""
    batches: queue.SimpleQueue[list[Command]] = queue.SimpleQueue()
    for start in range(0, len(commands), batch):
        batches.put(commands[start : start + batch])
    outcomes: list[object] = []

    def client() -> None:
        while True:
            try:
                mine = batches.get_nowait()
            except queue.Empty:
                return
            outcomes.extend(ledger.post_batch(mine))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    wrong = [o for o in outcomes if not isinstance(o, expect)]
    if wrong or len(outcomes) != len(commands):
        raise SystemExit(f"{len(wrong)} unexpected outcomes of {len(outcomes)}: {wrong[:1]}")
    return len(commands) / elapsed


def run_backend(backend: str, url: str, args: argparse.Namespace) -> None:
    system = build(Settings(database_url=url))
    ledger = system.ledger
    rng = random.Random(7)
    open_accounts(ledger, args.accounts)
    fund(ledger, args.accounts, "bench")
    charges = two_entry(args.transfers, args.accounts, "bench", rng)
    workload = mixed(args.transfers, args.accounts, "bench", rng)
    tune_for_throughput()
    figures = {
        "two-entry": post_all(ledger, charges, args.batch, Applied, args.clients),
        "mixed": post_all(ledger, workload, args.batch, Applied, args.clients),
        "replay (all duplicates)": post_all(ledger, charges, args.batch, Duplicate, args.clients),
    }
    started = time.perf_counter()
    report = ledger.check()
    check_seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"ledger check failed: {report.violations[:3]}")
    for name, rate in figures.items():
        print(
            f"{backend:<10} {name:<24} {rate:>10,.0f} transfers/s   "
            f"({args.transfers:,} in batches of {args.batch:,}, {args.clients} clients)"
        )
    audited = report.transfers / check_seconds
    print(
        f"{backend:<10} {'ledger check (audit)':<24} {audited:>10,.0f} transfers/s "
        f"({report.transfers:,} transfers, {report.entries:,} entries: OK)"
    )
    system.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transfers", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=8190)
    parser.add_argument(
        "--accounts", type=int, default=10_000, help="customers (two accounts each)"
    )
    parser.add_argument(
        "--clients", type=int, default=2, help="threads posting batches at the same time"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    print(
        f"ledger benchmark: {args.transfers:,} transfers per workload, {args.accounts:,} customers"
    )
    for backend in args.backends.split(","):
        database = (
            sqlite_database()
            if backend == "sqlite"
            else scratch_postgres(args.postgres_url, prefix="synor_bench")
        )
        with database as url:
            run_backend(backend, url, args)


if __name__ == "__main__":
    main()
