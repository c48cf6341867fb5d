"""``synor ledger``: balances and the invariant check."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from synor_economics.cli.app import JsonFlag, parse_time, print_json, system_of
from synor_economics.domain.errors import LedgerError
from synor_economics.domain.ledger import AccountKind
from synor_economics.domain.money import display_synor
from synor_economics.services import documents
from synor_economics.services.time import instant

app = typer.Typer(
    help="The double-entry ledger: balances, statements, checks.", no_args_is_help=True
)


@app.command()
def balances(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Posted balances as of this RFC 3339 time.")
    ] = None,
    kind: Annotated[
        AccountKind | None, typer.Option(help="Only accounts of this kind.", case_sensitive=False)
    ] = None,
) -> None:
    """Print every account's balance on its normal side, in SYNOR."""
    system = system_of(ctx)
    when = parse_time(as_of, "--as-of")
    views = system.ledger.balances(as_of=when, kind=kind)
    if as_json:
        print_json(documents.balances_document(views, when))
        return
    table = Table(title="Ledger balances" + (f" as of {instant(when)}" if when else ""))
    for column, justify in (
        ("account", "left"),
        ("kind", "left"),
        ("side", "left"),
        ("balance (SYNOR)", "right"),
        ("available (SYNOR)", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for view in views:
        table.add_row(
            view.spec.id,
            view.spec.kind.value,
            view.spec.normal.value,
            display_synor(view.posted),
            display_synor(view.available),
        )
    if not views:
        table.caption = "no accounts yet"
    Console().print(table)


@app.command()
def check(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Verify every ledger invariant over the stored ledger; exit 1 with a report if broken."""
    report = system_of(ctx).ledger.check()
    if as_json:
        print_json(documents.audit_document(report))
    else:
        console = Console()
        verdict = (
            "[green]OK[/green]"
            if report.ok
            else f"[red]BROKEN[/red]: {report.violation_count} violation(s)"
        )
        relation = "=" if report.total_debits == report.total_credits else "!="
        console.print(
            f"ledger check {verdict} — {report.transfers} transfers, {report.entries} entries, "
            f"{report.accounts} accounts; debits {report.total_debits} {relation} "
            f"credits {report.total_credits}"
        )
        for v in report.violations:
            console.print(f"  [red]{v.code}[/red] {v.where}: {v.detail}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def statement(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="The ledger account id.")],
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Entries per page.")] = 50,
    before: Annotated[
        str | None, typer.Option(help="Page cursor: the `next_before` of the previous page.")
    ] = None,
) -> None:
    """Print an account's entries, newest first, with the running balance after each."""
    system = system_of(ctx)
    try:
        cursor = documents.parse_cursor(before) if before else None
    except LedgerError as error:
        raise typer.BadParameter(error.message, param_hint="--before") from None
    lines = system.ledger.statement(account, limit=limit, before=cursor)
    page = documents.statement_page(lines, limit)
    if as_json:
        print_json(page)
        return
    table = Table(title=f"Statement of {account}")
    for column, justify in (
        ("seq", "right"),
        ("time (UTC)", "left"),
        ("transfer", "left"),
        ("code", "left"),
        ("side", "left"),
        ("amount (SYNOR)", "right"),
        ("balance after (SYNOR)", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for line, row in zip(lines, page["entries"], strict=True):
        table.add_row(
            str(line.entry.seq),
            row["ts"],
            line.transfer.id,
            line.transfer.code,
            line.entry.side.value + (" (pending)" if line.entry.pending else ""),
            display_synor(line.entry.amount),
            display_synor(line.balance_after),
        )
    if page["next_before"]:
        table.caption = f"older entries: --before {page['next_before']}"
    Console().print(table)


@app.command()
def transfer(
    ctx: typer.Context,
    transfer_id: Annotated[str, typer.Argument(help="The transfer id.")],
    as_json: JsonFlag = False,
) -> None:
    """Print one transfer and its entries."""
    document = documents.transfer_document(system_of(ctx).ledger.transfer(transfer_id))
    if as_json:
        print_json(document)
        return
    console = Console()
    console.print(
        f"[bold]{document['id']}[/bold]  seq {document['seq']}  {document['kind']}  "
        f"{document['ts']}  {document['code']}  {document['amount_synor']} SYNOR",
        highlight=False,
    )
    if document["ref"]:
        console.print(f"  refers to {document['ref']}", highlight=False)
    if document["memo"]:
        console.print(f"  memo: {document['memo']}", highlight=False)
    for entry in document["entries"]:
        console.print(f"  {entry['side']:<6} {entry['account']:<40} {entry['amount_synor']:>30}")
