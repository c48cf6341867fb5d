"""``synor serve`` and ``synor config``."""

from __future__ import annotations

import os
import socket
import threading
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from synor_economics.cli.app import JsonFlag, launcher_of, print_json, system_of
from synor_economics.services.scheduler import BillingScheduler
from synor_economics.services.stream_ingest import StreamWorker

if TYPE_CHECKING:
    from synor_economics.services.system import System


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command("config")(show_config)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: SYNOR_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: SYNOR_PORT).")
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Also count the usage stream (one consumer of the group) and run the billing "
            "scheduler in this process.",
        ),
    ] = True,
    chain: Annotated[
        bool,
        typer.Option(
            "--chain/--no-chain",
            help="With the in-process EVM (no SYNOR_CHAIN_RPC): start it with the contracts, "
            "serve it at /rpc, watch it for payments and run oracle rounds (with "
            "SYNOR_ORACLE_SOURCES).",
        ),
    ] = True,
) -> None:
    """Run the HTTP API, a usage-stream worker and the billing scheduler (periods close after
    their grace period; dunning notices) in one process; `--no-worker` runs the API alone.

    On the embedded default the process also holds the in-process EVM: its JSON-RPC is at
    `/rpc`, its payments are watched and, with price sources configured, the oracle runs a round
    a minute. (Against a node, run `synor payments watch` and `synor oracle run` yourself.)"""

    import uvicorn

    from synor_economics.api.app import create_app

    system = system_of(ctx)
    system.tune()
    default_host, default_port = system.serve_address
    chosen_host = host if host is not None else default_host
    chosen_port = port if port is not None else default_port
    console = Console(stderr=True)
    base = f"http://{chosen_host}:{chosen_port}"
    console.print(
        f"[bold]synor[/bold] {system.version} on {system.schema.backend} "
        f"({system.schema.location})\n"
        f"API: {base}/v1/health   docs: {base}/docs"
    )
    stop = threading.Event()
    consumer = None
    if worker:
        name = f"serve-{socket.gethostname()}-{os.getpid()}"
        consumer = threading.Thread(
            target=StreamWorker(system.stream, system.usage, consumer=name).run,
            args=(stop,),
            name="synor-stream-worker",
            daemon=True,
        )
        consumer.start()
        scheduler = threading.Thread(
            target=BillingScheduler(system.billing, system.billing.clock).run,
            args=(stop,),
            name="synor-billing-scheduler",
            daemon=True,
        )
        scheduler.start()
        console.print(
            f"usage stream: {system.stream.name} (worker {name}); billing scheduler: periods "
            "close after their grace period"
        )
    if chain and system.chain_in_process:
        _start_chain(system, console, base, stop)
    try:
        uvicorn.run(
            create_app(system), host=chosen_host, port=chosen_port, log_level=system.log_level
        )
    finally:
        stop.set()  # the worker finishes the batch in hand; unacknowledged entries stay pending
        if consumer is not None:
            consumer.join(timeout=30)


def _start_chain(system: System, console: Console, base: str, stop: threading.Event) -> None:
    """Deploy the contracts on the in-process chain and start its payment watcher and, with
    sources configured, the oracle's rounds."""
    info = system.chain()
    contracts = info.get("contracts")
    console.print(f"chain: in-process EVM, JSON-RPC at {base}/rpc; contracts {contracts}")
    threading.Thread(
        target=system.payments.run,
        args=(stop, 2.0),
        name="synor-payment-watcher",
        daemon=True,
    ).start()
    if system.oracle_sources:
        threading.Thread(
            target=system.oracle.run, args=(stop, 60.0), name="synor-oracle", daemon=True
        ).start()
        console.print("oracle: a round a minute")


def show_config(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print the effective settings and where each came from (environment, .env, default)."""
    settings = launcher_of(ctx).settings()
    if as_json:
        print_json({s.name: {"value": s.value, "source": s.source} for s in settings})
        return
    table = Table(title="Effective settings (environment variables are SYNOR_<NAME>)")
    for column in ("setting", "value", "source", "meaning"):
        table.add_column(column)
    for s in settings:
        table.add_row(s.name, s.value, s.source, s.description)
    Console().print(table)
