"""Invoices as HTML and PDF: one Jinja2 template (``templates/invoice.html``) for the screen and
for paper; WeasyPrint turns the HTML into PDF. Both are imported only when an invoice is
rendered, so no other command pays for them."""

from __future__ import annotations

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
