"""Rich rendering of a rated invoice document (``services.billing_documents.rated_document``),
shared by ``synor simulate``, ``synor cost estimate`` and ``synor invoice preview``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _usd(document: dict[str, Any], name: str) -> str:
    value = document.get(f"{name}_usd")
    if value is None:
        return ""
    return f"-${value[1:]}" if value.startswith("-") else f"${value}"


def _tiers(line: dict[str, Any]) -> str:
    if line["model"] == "graduated":
        parts = [f"{t['quantity']} × {t['unit_price']}" for t in line["tiers"]]
        return " + ".join(parts)
    if line["model"] == "package":
        return f"{line['packages']} pkg × {line['unit_price']}"
    return f"× {line['unit_price']}"


def render_invoice(console: Console, document: dict[str, Any], title: str) -> None:
    """Lines, then the negative lines, then how the invoice is paid."""
    table = Table(title=title, title_justify="left")
    table.add_column("line", no_wrap=True)
    table.add_column("quantity", justify="right")
    table.add_column("unit")
    table.add_column("price", style="dim")
    table.add_column("SYNOR", justify="right")
    table.add_column("USD", justify="right")
    for line in document["lines"]:
        name = line["resource"]
        if line["kind"] != "usage":
            name += f" ({line['kind']})"
        price = _tiers(line) + (f" {line['currency']}" if line["currency"] != "SYNOR" else "")
        if line["minimum_applied"]:
            price += " (minimum)"
        table.add_row(
            name,
            line["quantity"],
            line["unit"],
            price,
            line["amount_synor"],
            _usd(line, "amount"),
        )
    for item in document["adjustments"]:
        what = item["kind"].replace("_", " ")
        target = f" on {item['line']}" if item["line"] else ""
        percent = f" {item['percent']}%" if item["percent"] else ""
        table.add_row(
            f"{what} {item['source']}{target}{percent}",
            "",
            "",
            "",
            item["amount_synor"],
            _usd(item, "amount"),
        )
    table.add_section()
    for label, name in (
        ("subtotal", "subtotal"),
        ("credits applied", "credits_applied"),
        ("prepaid applied", "prepaid_applied"),
        ("total due", "total_due"),
    ):
        style = "bold" if name == "total_due" else None
        figure = document[f"{name}_synor"]
        table.add_row(label, "", "", "", figure, _usd(document, name), style=style)
    console.print(table)
