"""``synor simulate FILE``: rate a simulation file (SPEC §10) with the billing engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from synor_economics.cli.app import JsonFlag, launcher_of, print_json
from synor_economics.cli.invoice_view import render_invoice


def simulate(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A simulation file, YAML or JSON (SPEC §10).")],
    as_json: JsonFlag = False,
) -> None:
    """Rate a billing simulation: the invoices its accounts would get, line by line.

    The file gives a period, a fixed SYNOR/USD rate, price overrides, accounts with their
    discounts, commitments, credits, prepaid balances and uptime, and usage events. Nothing is
    stored.
    """
    from synor_economics.services.billing_documents import simulation_document
    from synor_economics.services.simulation import load_document, read_simulation, run_simulation

    simulation = read_simulation(load_document(file), launcher_of(ctx).catalog())
    document = simulation_document(run_simulation(simulation))
    if as_json:
        print_json(document)
        return
    console = Console()
    events = document["events"]
    console.print(
        f"[bold]{file}[/bold]: period {document['period']['label']}, "
        f"{events['accepted']} events counted"
        + (f", {events['duplicate']} duplicate" if events["duplicate"] else "")
        + (f", {events['conflict']} conflicting (first copy kept)" if events["conflict"] else "")
    )
    for invoice in document["invoices"]:
        render_invoice(console, invoice, f"account {invoice['account']}")
