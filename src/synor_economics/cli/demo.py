"""``synor demo``: the product's main job in one command, on the embedded default."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from synor_economics.cli.app import launcher_of
from synor_economics.domain.money import display_synor, format_synor
from synor_economics.domain.period import Period


def demo(
    ctx: typer.Context,
    accounts: Annotated[int, typer.Option(min=1, max=1000, help="How many accounts.")] = 50,
    period: Annotated[
        str | None, typer.Option(help="Month to bill, YYYY-MM (default: last month).")
    ] = None,
) -> None:
    """Meter a month of realistic usage for about 50 accounts across every service, bill it,
    and show where the invoices are. Safe to run again: nothing is counted or billed twice."""
    from synor_economics.services.demo import run_demo

    launcher = launcher_of(ctx)
    chosen = (
        Period.parse_month(period) if period else Period.containing(datetime.now(UTC)).earlier()
    )
    console = Console()
    with Progress(transient=True) as bar:
        task = bar.add_task(f"metering and billing {chosen.label}", total=None)
        report = run_demo(
            launcher.system_on,
            chosen,
            accounts,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    invoices = sorted(report.invoices, key=lambda i: i.subtotal, reverse=True)
    table = Table(title=f"Demo: {report.accounts} accounts billed for {chosen.label}")
    for column in (
        "invoice",
        "account",
        "lines",
        "subtotal",
        "credits",
        "prepaid",
        "due",
        "status",
    ):
        table.add_column(column, justify="right" if column in ("lines", "subtotal", "credits",
                         "prepaid", "due") else "left")  # fmt: skip
    for invoice in invoices[:15]:
        table.add_row(
            invoice.number,
            invoice.account,
            str(len(invoice.document["lines"])),
            display_synor(invoice.subtotal),
            display_synor(invoice.credits_applied),
            display_synor(invoice.prepaid_applied),
            display_synor(invoice.total_due),
            invoice.status.value,
        )
    billed = sum(i.subtotal for i in invoices)
    table.caption = (
        f"{len(invoices)} invoices (largest 15 shown) · billed {format_synor(billed)} SYNOR · "
        f"{report.accepted:,} of {report.events:,} events counted (the rest were already counted)"
    )
    console.print(table)
    first = min(report.invoices, key=lambda i: i.number).number if report.invoices else "SYN-…"
    console.print(
        f"ledger check: {'[green]OK[/green]' if report.ledger_ok else '[red]BROKEN[/red]'}\n"
        "Look at the invoices:\n"
        f"  synor invoice list --period {chosen.label}\n"
        f"  synor invoice show {first}\n"
        f"  synor invoice pdf {first}            (writes {first}.pdf)\n"
        f"  synor serve, then http://127.0.0.1:8000/v1/invoices?period={chosen.label}\n"
        f"                    http://127.0.0.1:8000/v1/invoices/{first}/html\n"
        "  synor ledger balances --kind revenue"
    )
