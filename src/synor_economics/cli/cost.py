"""``synor cost estimate``: what usage would cost, on demand and reserved, before one pays.

It must answer within 300 ms of the process starting, so it needs no database and imports only
the rating code: the price book comes from the launcher without assembling the system, and YAML
is imported only for ``--file``.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer

from synor_economics.cli.app import JsonFlag, decimal_option, launcher_of, print_json

app = typer.Typer(help="Cost tools: estimate what usage will cost.", no_args_is_help=True)


@dataclass(frozen=True, slots=True)
class Flag:
    """A command-line flag in natural units and the resource it measures."""

    resource: str
    per_price_unit: int
    """Natural units in one price unit (10^6 queries in "1M queries")."""


FLAGS: dict[str, Flag] = {
    "storage_gb": Flag("storage.storage", 1),
    "retrieval_gb": Flag("storage.retrieval", 1),
    "deals": Flag("storage.deal", 1),
    "bandwidth_gb": Flag("hosting.bandwidth", 1),
    "custom_domains": Flag("hosting.custom_domain", 1),
    "ssl_certificates": Flag("hosting.ssl_certificate", 1),
    "database_gb": Flag("database.storage", 1),
    "queries": Flag("database.queries", 10**6),
    "vector_searches": Flag("database.vector_search", 10**6),
    "cpu_core_hours": Flag("compute.cpu", 1),
    "gpu_hours": Flag("compute.gpu.rtx4090", 1),
    "memory_gb_hours": Flag("compute.memory", 1),
    "invocations": Flag("compute.serverless", 10**6),
    "egress_gb": Flag("network.egress", 1),
}


def _flag(help_text: str) -> Any:
    return typer.Option(help=help_text, rich_help_panel="Usage for the period (natural units)")


Quantity = str | None


@app.command()
def estimate(
    ctx: typer.Context,
    storage_gb: Annotated[Quantity, _flag("GB stored all period (storage.storage)")] = None,
    retrieval_gb: Annotated[Quantity, _flag("GB retrieved (storage.retrieval)")] = None,
    deals: Annotated[Quantity, _flag("storage deals (storage.deal)")] = None,
    bandwidth_gb: Annotated[Quantity, _flag("GB served (hosting.bandwidth)")] = None,
    custom_domains: Annotated[Quantity, _flag("custom domains (hosting.custom_domain)")] = None,
    ssl_certificates: Annotated[Quantity, _flag("certificates (hosting.ssl_certificate)")] = None,
    database_gb: Annotated[Quantity, _flag("GB of database storage (database.storage)")] = None,
    queries: Annotated[Quantity, _flag("database queries, e.g. 30M (database.queries)")] = None,
    vector_searches: Annotated[Quantity, _flag("vector searches (database.vector_search)")] = None,
    cpu_core_hours: Annotated[Quantity, _flag("CPU core-hours (compute.cpu)")] = None,
    gpu_hours: Annotated[Quantity, _flag("RTX 4090 GPU-hours (compute.gpu.rtx4090)")] = None,
    memory_gb_hours: Annotated[Quantity, _flag("memory GB-hours (compute.memory)")] = None,
    invocations: Annotated[Quantity, _flag("serverless invocations (compute.serverless)")] = None,
    egress_gb: Annotated[Quantity, _flag("GB of egress (network.egress)")] = None,
    usage: Annotated[
        list[str] | None,
        typer.Option(
            help="RESOURCE=QUANTITY in the price unit, for any resource of the price book "
            "(repeatable), e.g. compute.gpu.h100=10",
            rich_help_panel="Usage for the period (natural units)",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="A YAML or JSON estimate file: resource id → quantity (SPEC §11)."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            help="USD per SYNOR to show USD amounts at, e.g. 0.25 (default: the file's oracle, "
            "else the rate invoices lock, SYNOR_SYNOR_USD)."
        ),
    ] = None,
    period: Annotated[
        str | None, typer.Option(help="The month to price, e.g. 2026-11 (default: this month).")
    ] = None,
    as_json: JsonFlag = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """Estimate a month's cost in SYNOR (and USD with `--rate`): on demand, and reserved for 1, 3
    and 12 months. Quantities take K, M, B suffixes (`--queries 30M`)."""
    from synor_economics.domain.period import Period
    from synor_economics.services.estimate import (
        current_period,
        natural_quantity,
        read_estimate_file,
    )
    from synor_economics.services.estimate import estimate as run_estimate

    catalog = launcher_of(ctx).catalog()
    given = locals()
    quantities: dict[str, Fraction] = {}
    chosen = current_period()
    usd_rate: Fraction | None = None
    if file is not None:
        from synor_economics.services.simulation import load_document

        quantities, chosen, usd_rate = read_estimate_file(load_document(file), catalog)
    for name, flag in FLAGS.items():
        text = given[name]
        if text is not None:
            option = "--" + name.replace("_", "-")
            amount = natural_quantity(text, option) / flag.per_price_unit
            quantities[flag.resource] = quantities.get(flag.resource, Fraction(0)) + amount
    for item in usage or []:
        resource, _, text = item.partition("=")
        catalog.resource(resource.strip())
        amount = natural_quantity(text, f"--usage {resource}")
        quantities[resource.strip()] = quantities.get(resource.strip(), Fraction(0)) + amount
    if period is not None:
        chosen = Period.parse_month(period)
    if rate is not None:
        usd_rate = _rate(rate)
    elif usd_rate is None:
        usd_rate = launcher_of(ctx).fixed_rate()  # the rate invoices lock (SYNOR_SYNOR_USD)
    if not quantities:
        raise typer.BadParameter("give some usage: a flag such as --cpu-core-hours 720, or --file")
    result = run_estimate(catalog, quantities, chosen, usd_rate)
    from synor_economics.services.billing_documents import estimate_document

    document = estimate_document(result)
    if as_json:
        print_json(document)
    elif as_csv:
        _print_csv(document)
    else:
        _print_table(document)


def _rate(text: str) -> Fraction:
    value = decimal_option(text, "--rate")
    if value <= 0:
        raise typer.BadParameter("must be a positive number of USD per SYNOR", param_hint="--rate")
    return Fraction(value)


def _print_csv(document: dict[str, Any]) -> None:
    """One row per line and per option, amounts in SYNOR (and USD when a rate is given)."""
    writer = csv.writer(sys.stdout)
    writer.writerow(["row", "resource", "quantity", "unit", "monthly_synor", "monthly_usd",
                     "yearly_synor", "yearly_usd", "saving_percent"])  # fmt: skip
    for line in document["lines"]:
        writer.writerow(["line", line["resource"], line["quantity"], line["unit"],
                         line["amount_synor"], line["amount_usd"] or "", "", "", ""])  # fmt: skip
    for option in document["options"]:
        writer.writerow(["option", option["option"], "", "", option["monthly_synor"],
                         option["monthly_usd"] or "", option["yearly_synor"],
                         option["yearly_usd"] or "", option["saving_percent"] or ""])  # fmt: skip


def _print_table(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    usd = document["oracle"] is not None
    lines = Table(title=f"Estimate for {document['period']['label']}", title_justify="left")
    for column in ("resource", "quantity", "unit", "SYNOR / month", *(["USD / month"] * usd)):
        lines.add_column(column, justify="left" if column in ("resource", "unit") else "right")
    for line in document["lines"]:
        lines.add_row(line["resource"], line["quantity"], line["unit"], line["amount_synor"],
                      *([f"${line['amount_usd']}"] * usd))  # fmt: skip
    lines.add_section()
    lines.add_row("total", "", "", document["total_synor"],
                  *([f"${document['total_usd']}"] * usd), style="bold")  # fmt: skip
    options = Table(title="On demand or reserved", title_justify="left")
    for column in ("option", "SYNOR / month", "SYNOR / year", *(["USD / year"] * usd), "saving"):
        options.add_column(column, justify="left" if column == "option" else "right")
    for option in document["options"]:
        saving = option["saving_percent"]
        options.add_row(option["option"], option["monthly_synor"], option["yearly_synor"],
                        *([f"${option['yearly_usd']}"] * usd),
                        f"{saving}%" if saving not in (None, "0") else "")  # fmt: skip
    console = Console()
    console.print(lines)
    console.print(options)
    if not usd:
        console.print("[dim]USD amounts: pass --rate (USD per SYNOR) or set SYNOR_SYNOR_USD.[/dim]")
