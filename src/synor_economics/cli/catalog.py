"""``synor catalog``: the price book."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from synor_economics.cli.app import JsonFlag, parse_time, print_json, system_of
from synor_economics.services import documents

app = typer.Typer(help="The price book (versioned, effective-dated).", no_args_is_help=True)


def _price_text(price: dict[str, object] | None) -> str:
    if price is None:
        return "not yet priced"
    currency = price["currency"]
    minimum = f", min {price['minimum']} {currency}" if price.get("minimum") else ""
    if price["model"] == "per_unit":
        return f"{price['unit_price']} {currency}{minimum}"
    if price["model"] == "package":
        return f"{price['package_price']} {currency} per {price['package_size']}{minimum}"
    tiers = price["tiers"]
    assert isinstance(tiers, list)
    parts = [
        f"≤{t['up_to']}: {t['unit_price']}" if t["up_to"] else f"above: {t['unit_price']}"
        for t in tiers
    ]
    return f"{price['model']} {currency} ({'; '.join(parts)}){minimum}"


@app.command()
def show(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    at: Annotated[
        str | None, typer.Option(help="Show the prices in effect at this RFC 3339 time.")
    ] = None,
) -> None:
    """Print the price book: every resource, its meter and units, and its price."""
    system = system_of(ctx)
    when = parse_time(at, "--at") or datetime.now(UTC)
    catalog = system.catalog.current()
    document = documents.catalog_document(catalog, system.catalog.rows_at(when), when)
    if as_json:
        print_json(document)
        return
    table = Table(
        title=f"Synor price book {catalog.version} at {document['at']}",
        caption=f"sha256 {catalog.digest}",
    )
    for column in ("resource", "meter", "event unit", "price unit", "price per price unit"):
        table.add_column(column)
    for resource in document["resources"]:
        table.add_row(
            resource["id"],
            resource["meter"],
            resource["event_unit"],
            resource["price_unit"],
            _price_text(resource["price"]),
        )
    Console().print(table)
