"""``synor oracle`` (the SYNOR/USD price), ``synor payments`` (SYNOR payments on chain) and
``synor chain`` (which chain, which contracts)."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from synor_economics.cli.app import JsonFlag, print_json, system_of
from synor_economics.domain.money import decimal_text
from synor_economics.ports import OracleRound
from synor_economics.services.chain_documents import (
    WindowError,
    payment_document,
    price_document,
    round_document,
    twap_document,
    when,
)
from synor_economics.services.chain_documents import parse_window as window_seconds

oracle_app = typer.Typer(help="The SYNOR/USD oracle: run rounds, read the price and its TWAP.")
payments_app = typer.Typer(help="SYNOR payments on chain: watch them, list them.")
chain_app = typer.Typer(help="The chain the product settles on.")


def parse_window(text: str, option: str = "--window") -> int:
    try:
        return window_seconds(text)
    except WindowError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


@oracle_app.command("run")
def oracle_run(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option(min=0.0, help="Seconds between rounds; 0 runs one round and stops.")
    ] = 0.0,
    as_json: JsonFlag = False,
) -> None:
    """Read every price source (SYNOR_ORACLE_SOURCES), aggregate their TWAPs, store the round
    and submit its price to the PriceOracle contract as the configured reporters."""
    system = system_of(ctx)
    console = Console(stderr=True)
    stop = threading.Event()
    while True:
        started = time.perf_counter()
        row = system.oracle.run_round()
        if as_json:
            print_json(round_document(row))
        else:
            _print_round(console, row, time.perf_counter() - started)
        if interval <= 0 or stop.wait(interval):
            return


def _print_round(console: Console, row: OracleRound, seconds: float) -> None:
    state = (
        f"[green]{decimal_text(row.price)}[/green] USD per SYNOR"
        if row.price is not None
        else "[red]no quorum: no price this round (the last good one, if any, stands, "
        "marked stale)[/red]"
    )
    console.print(f"round {row.round} at {when(row.at)}: {state} ({seconds * 1000:.0f} ms)")
    table = Table("source", "TWAP", "liquidity (USD)", "history (s)", "used", "why not")
    for name, quote in sorted(json.loads(row.detail).items()):
        table.add_row(
            name,
            quote.get("twap") or "",
            quote.get("liquidity") or "",
            str(quote.get("history", "")),
            "yes" if quote.get("used") else "no",
            quote.get("reason") or "",
        )
    console.print(table)


@oracle_app.command("price")
def oracle_price(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The last good SYNOR/USD price, its confidence interval, age and whether it is stale."""
    price = system_of(ctx).oracle.price()
    if as_json:
        print_json(price_document(price))
        return
    console = Console()
    flag = f" [red]STALE: {price.reason}[/red]" if price.stale else ""
    console.print(
        f"SYNOR/USD {decimal_text(price.price)} "
        f"(interval {decimal_text(price.low)} - {decimal_text(price.high)}), "
        f"round {price.round}, {price.age} s old{flag}"
    )


@oracle_app.command("history")
def oracle_history(
    ctx: typer.Context,
    window: Annotated[str, typer.Option(help="How far back: 30m, 24h, 7d…")] = "24h",
    as_json: JsonFlag = False,
) -> None:
    """The oracle's rounds over a window, oldest first."""
    documents = [round_document(r) for r in system_of(ctx).oracle.history(parse_window(window))]
    if as_json:
        print_json(documents)
        return
    table = Table("round", "at", "price", "low", "high", "quorum")
    for doc in documents:
        table.add_row(
            str(doc["round"]),
            str(doc["at"]),
            str(doc["price"] or ""),
            str(doc["low"] or ""),
            str(doc["high"] or ""),
            "yes" if doc["quorum_met"] else "no",
        )
    Console().print(table)


@oracle_app.command("twap")
def oracle_twap(
    ctx: typer.Context,
    window: Annotated[str, typer.Option(help="The averaging window: 30m, 24h…")] = "30m",
    as_json: JsonFlag = False,
) -> None:
    """Arithmetic and geometric time-weighted averages of the published price."""
    twap = system_of(ctx).oracle.twap(parse_window(window))
    document = twap_document(twap)
    if as_json:
        print_json(document)
    else:
        Console().print(
            f"TWAP {document['start']} → {document['end']}: arithmetic "
            f"{document['arithmetic']}, geometric {document['geometric']} "
            f"({twap.points} round{'' if twap.points == 1 else 's'})"
        )


@payments_app.command("watch")
def payments_watch(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option(min=0.0, help="Seconds between polls; 0 polls once and stops.")
    ] = 5.0,
) -> None:
    """Follow SYNOR payments on chain and credit each confirmed one once: transfers to the
    treasury or a deposit address, and InvoicePayments' invoice payments."""
    system = system_of(ctx)
    console = Console(stderr=True)
    stop = threading.Event()
    while True:
        report = system.payments.poll()
        if report.scanned or report.credited or report.orphaned:
            span = (
                "" if report.scanned is None else f"blocks {report.scanned[0]}-{report.scanned[1]}"
            )
            console.print(
                f"head {report.head} {span}: {report.seen} seen, {report.credited} credited, "
                f"{report.unmatched} unmatched, {report.orphaned} orphaned"
                + (" [yellow](reorg)[/yellow]" if report.reorg else "")
            )
        if interval <= 0 or stop.wait(interval):
            return


@payments_app.command("list")
def payments_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only pending, credited, unmatched or orphaned ones.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The latest payments seen on chain, newest first."""
    if status is not None and status not in ("pending", "credited", "unmatched", "orphaned"):
        raise typer.BadParameter("pending, credited, unmatched or orphaned", param_hint="--status")
    rows = system_of(ctx).payments.listing(limit=limit, status=status)
    if as_json:
        print_json([payment_document(r) for r in rows])
        return
    table = Table("block", "kind", "amount (SYNOR)", "invoice", "status", "note", "key")
    for row in rows:
        doc = payment_document(row)
        table.add_row(
            str(doc["block"]),
            str(doc["kind"]),
            str(doc["amount_synor"]),
            str(doc["invoice"] or ""),
            str(doc["status"]),
            str(doc["note"] or ""),
            str(doc["key"]),
        )
    Console().print(table)


@payments_app.command("address")
def payments_address(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="A 0x address on the chain.")],
    account: Annotated[str, typer.Option(help="The account its deposits are for.")],
) -> None:
    """Make ``ADDRESS`` a deposit address: SYNOR sent to it is ACCOUNT's prepaid deposit."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        raise typer.BadParameter("an address is 0x and 40 hex digits", param_hint="ADDRESS")
    system = system_of(ctx)
    system.payments.add_deposit_address(address, account)
    Console(stderr=True).print(f"{address} now takes deposits for {account}")


@chain_app.command("info")
def chain_info(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The chain, its head, and where the project's contracts are (deployed if none are)."""
    info = system_of(ctx).chain()
    if as_json:
        print_json(info)
        return
    console = Console()
    for key, value in info.items():
        console.print(f"{key}: {value}")
