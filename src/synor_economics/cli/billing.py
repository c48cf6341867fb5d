"""``synor billing`` (periods, drafts, downtime), ``synor invoice`` (issued invoices, previews,
payments) and ``synor account`` (terms, deposits, credits, discounts, commitments, standing)."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from synor_economics.cli.app import JsonFlag, decimal_option, parse_time, print_json, system_of
from synor_economics.cli.invoice_view import render_invoice
from synor_economics.domain.billing import AccountTerms
from synor_economics.domain.errors import MoneyError
from synor_economics.domain.money import format_synor, parse_synor
from synor_economics.domain.period import Period, PeriodError
from synor_economics.domain.terms import (
    Commitment,
    CreditGrant,
    Discount,
    DiscountKind,
    Scope,
)
from synor_economics.services import billing_documents

app = typer.Typer(help="Billing periods: drafts, closing, downtime.", no_args_is_help=True)
invoice_app = typer.Typer(help="Issued invoices: list, show, pay, preview.", no_args_is_help=True)
account_app = typer.Typer(
    help="Billing accounts: terms, deposits, credits, discounts, commitments, standing.",
    no_args_is_help=True,
)

AccountArg = Annotated[str, typer.Argument(help="The customer account.")]
PeriodOption = Annotated[str | None, typer.Option(help="Billing month, YYYY-MM.")]
CsvFlag = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]


def _period(text: str | None, *, default_now: bool = True) -> Period | None:
    if text is None:
        return Period.containing(datetime.now(UTC)) if default_now else None
    try:
        return Period.parse_month(text)
    except PeriodError as error:
        raise typer.BadParameter(str(error), param_hint="--period") from None


def _synor(text: str, option: str) -> int:
    try:
        units = parse_synor(text, what=option)
    except MoneyError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None
    if units <= 0:
        raise typer.BadParameter("must be more than 0", param_hint=option)
    return units


# -- synor billing ---------------------------------------------------------------------------------


@app.command()
def close(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="Billing month to close, YYYY-MM.")],
    anchor_day: Annotated[
        int, typer.Option(min=1, max=28, help="Close the periods of accounts billed from this day.")
    ] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Finalise every account's invoice for a period (after its grace period). Safe to run
    again: accounts already invoiced are skipped."""
    from rich.progress import Progress

    try:
        chosen = Period.parse_month(period, anchor_day=anchor_day)
    except PeriodError as error:
        raise typer.BadParameter(str(error), param_hint="--period") from None
    system = system_of(ctx)
    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task(f"closing {chosen.label}", total=None)
        report = system.billing.close_period(
            chosen, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    document = {
        "period": chosen.label,
        "issued": len(report.issued),
        "first": report.issued[0] if report.issued else None,
        "last": report.issued[-1] if report.issued else None,
        "already_invoiced": report.already,
        "grants_written_off": report.broken,
    }
    if as_json:
        print_json(document)
        return
    Console().print(
        f"{chosen.label}: {document['issued']} invoices issued"
        + (f" ({document['first']} … {document['last']})" if report.issued else "")
        + f", {report.already} already invoiced, {report.broken} expired grants written off"
    )


@app.command()
def draft(
    ctx: typer.Context,
    account: Annotated[str, typer.Option(help="The customer account.")],
    period: PeriodOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The account's invoice for a period as it stands now (default: its current period)."""
    system = system_of(ctx)
    try:
        chosen = system.billing.period_of(account, period)
    except PeriodError as error:
        raise typer.BadParameter(str(error), param_hint="--period") from None
    document = billing_documents.draft_document(
        system.billing.draft(account, chosen), system.billing.usd_rate
    )
    _show_draft(document, as_json)


def _show_draft(document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(document)
        return
    title = (
        f"{document['status']} invoice of {document['account']} for "
        f"{document['period']['label']} (as of {document['as_of']})"
    )
    render_invoice(Console(), document, title)


@app.command()
def downtime(
    ctx: typer.Context,
    service: Annotated[str, typer.Option(help="The service that was down (compute, ...).")],
    minutes: Annotated[str, typer.Option(help="Minutes of downtime in the period.")],
    reference: Annotated[str, typer.Option(help="The report's id: recorded once.")],
    period: PeriodOption = None,
    account: Annotated[
        str | None, typer.Option(help="Only this account was affected (default: everyone).")
    ] = None,
) -> None:
    """Record downtime of a service, for SLA credits at the period's close."""
    chosen = _period(period)
    assert chosen is not None
    recorded = system_of(ctx).billing.report_downtime(
        reference, service, chosen, decimal_option(minutes, "--minutes"), account
    )
    typer.echo("recorded" if recorded else f"already recorded as {reference}")


# -- synor invoice ---------------------------------------------------------------------------------


@invoice_app.command("list")
def list_invoices(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account's.")] = None,
    period: PeriodOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    as_json: JsonFlag = False,
    as_csv: CsvFlag = False,
) -> None:
    """Issued invoices and credit notes, newest first."""
    found = system_of(ctx).billing.invoices(
        account=account, period=_period(period, default_now=False), limit=limit
    )
    rows = [
        {
            "number": i.number,
            "account": i.account,
            "period": Period(*_bounds(i)).label,
            "status": i.status.value,
            "subtotal": format_synor(i.subtotal),
            "total_due": format_synor(i.total_due),
            "outstanding": format_synor(i.outstanding),
        }
        for i in found
    ]
    if as_json:
        print_json({"invoices": [billing_documents.document_of(i) for i in found]})
        return
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        writer.writerows(rows)
        return
    table = Table(title="Invoices")
    for column in ("number", "account", "period", "status", "subtotal", "total_due", "outstanding"):
        table.add_column(column.replace("_", " "), justify="right" if column[-1] == "t" else "left")
    for row in rows:
        table.add_row(*row.values())
    if not rows:
        table.caption = "no invoices yet: `synor billing close --period YYYY-MM` issues them"
    Console().print(table)


def _bounds(invoice: Any) -> tuple[datetime, datetime]:
    from synor_economics.services.time import from_us

    return from_us(invoice.period_start_us), from_us(invoice.period_end_us)


@invoice_app.command()
def show(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice number, e.g. SYN-2026-000001.")],
    as_json: JsonFlag = False,
    as_csv: CsvFlag = False,
) -> None:
    """One issued invoice: its lines, discounts, credits, and what is due by when."""
    invoice = system_of(ctx).billing.invoice(number)
    document = billing_documents.document_of(invoice)
    if as_json:
        print_json(document)
        return
    if as_csv:
        from synor_economics.services.invoice_render import invoice_csv

        sys.stdout.write(invoice_csv(document))
        return
    title = (
        f"{number} · {document['account']} · {document['period']['label']} · "
        f"{document['status']} · due {document['due_at']}"
    )
    render_invoice(Console(), document, title)


@invoice_app.command()
def preview(
    ctx: typer.Context,
    account: Annotated[str, typer.Option(help="The customer account.")],
    as_json: JsonFlag = False,
) -> None:
    """What the open period will cost if usage continues at its current rate."""
    system = system_of(ctx)
    found = system.billing.preview(account)
    _show_draft(billing_documents.draft_document(found, system.billing.usd_rate), as_json)


@invoice_app.command()
def pay(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    amount: Annotated[str, typer.Option(help="SYNOR received, e.g. 12.5.")],
    reference: Annotated[str, typer.Option(help="The payment's reference: applied once.")],
    as_json: JsonFlag = False,
) -> None:
    """Record a payment against an invoice (what is due; any rest goes to prepaid)."""
    record = system_of(ctx).billing.pay(number, _synor(amount, "--amount"), reference)
    document = billing_documents.payment_document(record)
    if as_json:
        print_json(document)
        return
    typer.echo(
        f"{reference}: {format_synor(record.to_invoice)} SYNOR to {number}, "
        f"{format_synor(record.to_prepaid)} SYNOR to prepaid"
    )


@invoice_app.command()
def void(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    reason: Annotated[str, typer.Option(help="Why: kept with the reversal.")],
) -> None:
    """Cancel an unpaid invoice (its ledger transfer is reversed; closing the period again
    issues a new one)."""
    system_of(ctx).billing.void(number, reason)
    typer.echo(f"{number}: void")


@invoice_app.command()
def credit(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    amount: Annotated[str, typer.Option(help="SYNOR to credit.")],
    reason: Annotated[str, typer.Option(help="Why: printed on the credit note.")],
    reference: Annotated[str, typer.Option(help="The correction's id: issued once.")],
    as_json: JsonFlag = False,
) -> None:
    """Issue a numbered credit note against an invoice: off what it has due, rest to prepaid."""
    note = system_of(ctx).billing.credit_note(number, _synor(amount, "--amount"), reason, reference)
    if as_json:
        print_json(billing_documents.document_of(note))
        return
    typer.echo(f"{note.number}: credit note of {format_synor(note.subtotal)} SYNOR on {number}")


@invoice_app.command()
def pdf(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="Invoice number.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write.")] = None,
    html: Annotated[bool, typer.Option("--html", help="Write the HTML instead.")] = False,
) -> None:
    """Write an invoice as PDF (or HTML): the same template as the dashboard."""
    from synor_economics.services.invoice_render import invoice_html, invoice_pdf

    invoice = system_of(ctx).billing.invoice(number)
    document = billing_documents.document_of(invoice)
    target = output or Path(f"{number}.{'html' if html else 'pdf'}")
    if html:
        target.write_text(invoice_html(document), encoding="utf-8")
    else:
        target.write_bytes(invoice_pdf(document))
    typer.echo(str(target))


# -- synor account ---------------------------------------------------------------------------------


@account_app.command("set")
def set_terms(
    ctx: typer.Context,
    account: AccountArg,
    payment_terms_days: Annotated[int, typer.Option(min=0, help="Days to pay.")] = 14,
    anchor_day: Annotated[int, typer.Option(min=1, max=28, help="Billing anchor day.")] = 1,
    reminder_after_days: Annotated[int, typer.Option(min=0, help="Days overdue to remind.")] = 1,
    suspend_after_days: Annotated[int, typer.Option(min=1, help="Days overdue to suspend.")] = 30,
) -> None:
    """Set an account's payment terms and dunning."""
    system_of(ctx).billing.set_account(
        AccountTerms(
            account, payment_terms_days, anchor_day, reminder_after_days, suspend_after_days
        )
    )
    typer.echo(
        f"{account}: {payment_terms_days} days to pay, suspended {suspend_after_days} days past due"
    )


@account_app.command()
def deposit(
    ctx: typer.Context,
    account: AccountArg,
    amount: Annotated[str, typer.Option(help="SYNOR deposited, e.g. 100.")],
    reference: Annotated[str, typer.Option(help="The deposit's reference: applied once.")],
) -> None:
    """Record a prepaid deposit (the chain watcher does this for on-chain transfers)."""
    record = system_of(ctx).billing.deposit(account, _synor(amount, "--amount"), reference)
    typer.echo(f"{reference}: {format_synor(record.to_prepaid)} SYNOR to {account}'s prepaid")


def _scope(service: str | None, resource: str | None) -> Scope | None:
    if service and resource:
        raise typer.BadParameter("give --service or --resource, not both")
    if service or resource:
        return Scope(service=service, resource=resource)
    return None


@account_app.command()
def grant(
    ctx: typer.Context,
    account: AccountArg,
    grant_id: Annotated[str, typer.Option("--id", help="The grant's id: granted once.")],
    amount: Annotated[str, typer.Option(help="SYNOR of credit.")],
    priority: Annotated[int, typer.Option(help="Lower is used first.")] = 0,
    expires_at: Annotated[str | None, typer.Option(help="RFC 3339 expiry.")] = None,
    service: Annotated[str | None, typer.Option(help="Only for this service.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only for this resource.")] = None,
) -> None:
    """Grant credit (promotional, goodwill, SLA) that invoices consume."""
    units = _synor(amount, "--amount")
    system_of(ctx).billing.grant_credit(
        account,
        CreditGrant(
            grant_id,
            units,
            units,
            priority,
            parse_time(expires_at, "--expires-at"),
            _scope(service, resource),
        ),
    )
    typer.echo(f"{grant_id}: {format_synor(units)} SYNOR of credit for {account}")


@account_app.command()
def discount(
    ctx: typer.Context,
    account: AccountArg,
    discount_id: Annotated[str, typer.Option("--id", help="The discount's id.")],
    percent: Annotated[str | None, typer.Option(help="Percent off each line in scope.")] = None,
    amount: Annotated[str | None, typer.Option(help="SYNOR off the invoice.")] = None,
    priority: Annotated[int, typer.Option(help="Lower applies first.")] = 0,
    service: Annotated[str | None, typer.Option(help="Only for this service.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only for this resource.")] = None,
    start: Annotated[str | None, typer.Option(help="RFC 3339: from.")] = None,
    end: Annotated[str | None, typer.Option(help="RFC 3339: until.")] = None,
) -> None:
    """Give an account a percent or fixed discount."""
    if (percent is None) == (amount is None):
        raise typer.BadParameter("give --percent or --amount")
    system_of(ctx).billing.add_discount(
        account,
        Discount(
            discount_id,
            DiscountKind.PERCENT if percent is not None else DiscountKind.FIXED,
            percent=None if percent is None else decimal_option(percent, "--percent"),
            amount=None if amount is None else _synor(amount, "--amount"),
            scope=_scope(service, resource),
            priority=priority,
            start=parse_time(start, "--start"),
            end=parse_time(end, "--end"),
        ),
    )
    typer.echo(f"{discount_id}: recorded for {account}")


@account_app.command()
def commit(
    ctx: typer.Context,
    account: AccountArg,
    commitment_id: Annotated[str, typer.Option("--id", help="The commitment's id.")],
    resource: Annotated[str, typer.Option(help="Resource reserved, e.g. compute.cpu.")],
    quantity: Annotated[str, typer.Option(help="Price units per period.")],
    unit_price: Annotated[str, typer.Option(help="SYNOR per price unit.")],
    term_months: Annotated[int, typer.Option(help="1, 3 or 12.")],
    start: Annotated[str, typer.Option(help="RFC 3339: first period it bills.")],
) -> None:
    """Reserve capacity: billed every period of the term, used or not."""
    moment = parse_time(start, "--start")
    assert moment is not None
    system_of(ctx).billing.add_commitment(
        account,
        Commitment(
            commitment_id,
            resource,
            decimal_option(quantity, "--quantity"),
            decimal_option(unit_price, "--unit-price"),
            term_months,
            moment,
        ),
    )
    typer.echo(f"{commitment_id}: {quantity} {resource} for {term_months} months")


@account_app.command()
def notices(ctx: typer.Context, account: AccountArg, as_json: JsonFlag = False) -> None:
    """Dunning notices recorded for an account's overdue invoices."""
    found = system_of(ctx).billing.notices(account)
    document = {"notices": [billing_documents.notice_document(n) for n in found]}
    if as_json:
        print_json(document)
        return
    table = Table(title=f"Notices for {account}")
    for column in ("invoice", "kind", "days_overdue", "created_at"):
        table.add_column(column.replace("_", " "))
    for row in document["notices"]:
        table.add_row(row["invoice"], row["kind"], str(row["days_overdue"]), row["created_at"])
    Console().print(table)


@account_app.command()
def standing(ctx: typer.Context, account: AccountArg, as_json: JsonFlag = False) -> None:
    """Whether an account is in good standing, overdue, or to be suspended."""
    document = billing_documents.standing_document(system_of(ctx).billing.standing(account))
    if as_json:
        print_json(document)
        return
    typer.echo(
        f"{account}: {document['status']}; outstanding {format_synor(int(document['outstanding']))}"
        f" SYNOR, overdue {format_synor(int(document['overdue']))} SYNOR "
        f"({document['days_overdue']} days)"
    )
