"""``synor worker``: consume the usage stream into the usage store, until stopped."""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Annotated

import typer
from rich.console import Console

from synor_economics.cli.app import system_of
from synor_economics.services.scheduler import BillingScheduler
from synor_economics.services.stream_ingest import (
    DEFAULT_BATCH,
    StreamWorker,
    WorkerOptions,
    WorkerStats,
)


def worker(
    ctx: typer.Context,
    consumer: Annotated[
        str | None,
        typer.Option(help="This consumer's name in the group (default: host-pid)."),
    ] = None,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Most entries per transaction.")
    ] = DEFAULT_BATCH,
    claim_idle: Annotated[
        float,
        typer.Option(help="Seconds an entry sits unacknowledged before it is taken over."),
    ] = 30.0,
    max_deliveries: Annotated[
        int, typer.Option(min=1, help="Deliveries before a failing entry is dead-lettered.")
    ] = 5,
    drain: Annotated[
        bool, typer.Option("--drain", help="Stop once nothing is left to read.")
    ] = False,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule/--no-schedule",
            help="Also run the billing scheduler: close periods after their grace period, "
            "record dunning notices.",
        ),
    ] = True,
) -> None:
    """Consume usage events from the stream (SYNOR_STREAM_URL) in a consumer group.

    Entries are acknowledged only after their events are counted and committed; entries left
    pending by a dead worker are taken over; an entry that keeps failing goes to the
    dead-letter stream. Stops cleanly on SIGTERM or Ctrl-C, after the batch in hand."""
    system = system_of(ctx)
    system.tune()
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    options = WorkerOptions(
        batch=batch, claim_idle_ms=int(claim_idle * 1000), max_deliveries=max_deliveries
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    console = Console(stderr=True)
    console.print(f"[bold]synor worker[/bold] {name} on stream {system.stream.name}")
    consumer_loop = StreamWorker(system.stream, system.usage, consumer=name, options=options)
    if schedule and not drain:
        threading.Thread(
            target=BillingScheduler(system.billing, system.billing.clock).run,
            args=(stop,),
            name="synor-billing-scheduler",
            daemon=True,
        ).start()
    stats = consumer_loop.run(stop, drain=drain)
    console.print(_summary(stats))


def _summary(stats: WorkerStats) -> str:
    counted = ", ".join(f"{status} {count:,}" for status, count in sorted(stats.outcomes.items()))
    return (
        f"stopped: {stats.entries:,} entries in {stats.batches:,} batches ({counted or 'none'}); "
        f"{stats.dead_lettered:,} dead-lettered, {stats.outages:,} outages"
    )
