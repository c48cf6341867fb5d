"""Invoices as HTML and PDF: one Jinja2 template (``templates/invoice.html``) for the screen and
for paper; WeasyPrint turns the HTML into PDF. Both are imported only when an invoice is
rendered, so no other command pays for them."""

from __future__ import annotations

import csv
import io
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, Template, select_autoescape


@cache
def _template() -> Template:
    environment = Environment(
        loader=PackageLoader("synor_economics", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    return environment.get_template("invoice.html")


def invoice_html(document: dict[str, Any]) -> str:
    """An invoice document (``services.billing.document_of``, or a draft) as a page."""
    number = document.get("number")
    heading = f"Invoice {number}" if number else f"{document.get('status', 'draft')} invoice"
    return _template().render(
        doc=document, title=heading, heading=heading[:1].upper() + heading[1:]
    )


def invoice_pdf(document: dict[str, Any]) -> bytes:
    from weasyprint import HTML  # noqa: PLC0415  (heavy: only when a PDF is asked for)

    pdf: bytes = HTML(string=invoice_html(document)).write_pdf()
    return pdf


CSV_COLUMNS = (
    "number", "item", "kind", "quantity", "unit", "unit_price", "amount_synor", "amount_usd",
)  # fmt: skip


def invoice_csv(document: dict[str, Any]) -> str:
    """An invoice document as CSV, one row per line, adjustment, credit used and total, so a
    spreadsheet can check it: lines and adjustments (discounts and SLA credits negative, late
    usage of either sign) add up to the subtotal; the credits used and the prepaid applied,
    shown as the positive amounts taken, are subtracted from it to give the total due."""
    rows = [
        _csv_row(line["resource"], line["kind"], line, "amount", line) for line in document["lines"]
    ]
    rows += [
        _csv_row(f"{item['kind']}:{item['source']}", item["kind"], item, "amount")
        for item in document["adjustments"]
    ]
    rows += [
        _csv_row(f"credit:{use['grant']}", "credit", use, "amount") for use in document["credits"]
    ]
    rows += [
        _csv_row(total, "total", document, total)
        for total in ("subtotal", "credits_applied", "prepaid_applied", "total_due")
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    number = document.get("number") or ""
    writer.writerows((number, *row) for row in rows)
    return out.getvalue()


def _csv_row(
    item: str, kind: str, source: dict[str, Any], amount: str, line: dict[str, Any] | None = None
) -> tuple[str, ...]:
    """One CSV row after the number: quantity, unit and unit price only for usage lines."""
    usage = ("", "", "") if line is None else (line["quantity"], line["unit"], line["unit_price"])
    return (
        item,
        kind,
        *(value or "" for value in usage),
        source[f"{amount}_synor"],
        source[f"{amount}_usd"] or "",
    )
