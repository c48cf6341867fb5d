"""``synor usage``: ingest files of events, show an account's usage, list dead letters."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from synor_economics.cli.app import JsonFlag, parse_time, print_json, system_of
from synor_economics.domain.usage import EventOutcome, EventStatus
from synor_economics.services import usage_documents
from synor_economics.services.replacement import ReplacementError
from synor_economics.services.usage import PeriodError
from synor_economics.services.usage_input import (
    InputError,
    events_of,
    file_format,
    file_size,
    read_events,
)

app = typer.Typer(
    help="Usage metering: ingest events, show usage, dead letters.", no_args_is_help=True
)

FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="ndjson, csv or parquet (default: from the extension)."),
]

_SHOWN_PROBLEMS = 10
"""Rejected or conflicting events listed after an ingest; the rest are in `synor usage rejected`."""


@app.command()
def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="NDJSON, CSV or Parquet file of usage events.")],
    fmt: FormatOption = None,
    batch: Annotated[
        int, typer.Option(min=1, max=200_000, help="Events per transaction (bounds memory).")
    ] = 50_000,
    as_json: JsonFlag = False,
) -> None:
    """Backfill events from a file: validated, deduplicated and counted like any other event.

    Safe to run again: events already counted are reported as duplicates. Exits 1 if any event
    was rejected or conflicted (they are kept as dead letters with their reasons)."""
    kind = _file_kind(file, fmt)
    try:
        total = file_size(file, kind)
    except InputError as error:
        raise typer.BadParameter(str(error), param_hint="--format") from None
    system = system_of(ctx)
    system.tune()  # a long run of short-lived objects: see bootstrap.tune_for_throughput
    counts: Counter[EventStatus] = Counter()
    problems: list[EventOutcome] = []
    seen = 0
    progress = Progress(
        TextColumn("[bold]ingesting[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=as_json,
    )
    with progress:
        task = progress.add_task(file.name, total=total, events=0)
        try:
            chunks = read_events(file, kind, batch)
            for chunk, outcomes in system.usage.ingest_all(chunks, source="file", events=events_of):
                counts.update(outcomes.counts())
                for outcome in outcomes.problems()[: _SHOWN_PROBLEMS - len(problems)]:
                    problems.append(_shifted(outcome, seen))
                seen += len(chunk.events)
                progress.update(task, completed=chunk.position, events=seen)
        except InputError as error:
            progress.stop()
            _report(counts, problems, as_json=as_json)
            raise typer.BadParameter(
                f"{error} (events before it were ingested)", param_hint="FILE"
            ) from None
    _report(counts, problems, as_json=as_json)
    if counts[EventStatus.REJECTED] or counts[EventStatus.CONFLICT]:
        raise typer.Exit(1)


def _file_kind(file: Path, fmt: str | None) -> str:
    """The format of a file the command is to read, or a usage error naming what is wrong."""
    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a readable file", param_hint="FILE")
    try:
        return file_format(file, fmt)
    except InputError as error:
        raise typer.BadParameter(str(error), param_hint="--format") from None


def _print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], empty: str = "none"
) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    if not rows:
        table.caption = empty
    Console().print(table)


def _shifted(outcome: EventOutcome, offset: int) -> EventOutcome:
    """An outcome with its index counted from the start of the file, not of its batch."""
    return EventOutcome(
        outcome.index + offset, outcome.id, outcome.status, outcome.field, outcome.reason
    )


def _report(
    counts: Counter[EventStatus],
    problems: list[EventOutcome],
    *,
    as_json: bool,
    head: dict[str, Any] | None = None,
) -> None:
    """The counts by status and the first refused events; ``head`` leads the JSON document."""
    summary = {status.value: counts.get(status, 0) for status in EventStatus}
    if as_json:
        refused = [usage_documents.outcome_document(p) for p in problems]
        print_json({**(head or {}), **summary, "problems": refused})
        return
    Console().print("  ".join(f"{name}: [bold]{count:,}[/bold]" for name, count in summary.items()))
    if problems:
        _print_table(
            "Refused events (first ones; all in `synor usage rejected`)",
            ("event #", "id", "status", "field", "reason"),
            [(str(p.index + 1), p.id, p.status.value, p.field, p.reason) for p in problems],
        )


@app.command()
def publish(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="NDJSON, CSV or Parquet file of usage events.")],
    fmt: FormatOption = None,
) -> None:
    """Send events from a file to the usage stream (SYNOR_STREAM_URL), for workers to count.

    Events are sent as they are; validation and dedup happen when a worker counts them."""
    kind = _file_kind(file, fmt)
    stream = system_of(ctx).stream
    sent = 0
    try:
        for chunk in read_events(file, kind, 5000):
            stream.publish([json.dumps(event, default=str).encode() for event in chunk.events])
            sent += len(chunk.events)
    except InputError as error:
        raise typer.BadParameter(
            f"{error} ({sent:,} events before it were sent)", param_hint="FILE"
        ) from None
    Console(stderr=True).print(f"sent {sent:,} events to {stream.name}")


@app.command(name="replace")
def replace_window(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="NDJSON, CSV or Parquet file of the new events.")],
    account: Annotated[str, typer.Option(help="The account whose events are replaced.")],
    start: Annotated[str, typer.Option("--from", help="Window start, a whole hour (RFC 3339).")],
    end: Annotated[str, typer.Option("--to", help="Window end, a whole hour (RFC 3339).")],
    note: Annotated[str, typer.Option(help="Why: kept with the replacement.")] = "",
    fmt: FormatOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace an account's events in a window with a corrected file, in one transaction.

    The replaced events are kept (marked superseded) and come back with `synor usage revert`.
    Exits 1 if any event of the file was refused."""
    kind = _file_kind(file, fmt)
    begins, ends = parse_time(start, "--from"), parse_time(end, "--to")
    assert begins is not None
    assert ends is not None
    try:
        raws = [e for chunk in read_events(file, kind, 10_000) for e in chunk.events]
        report = system_of(ctx).replacements.replace(account, begins, ends, raws, note=note)
    except (InputError, ReplacementError) as error:
        raise typer.BadParameter(str(error)) from None
    summary = Counter(outcome.status for outcome in report.outcomes)
    problems = [o for o in report.outcomes if o.reason][:_SHOWN_PROBLEMS]
    done = report.replacement
    if not as_json:
        Console().print(
            f"replacement {done.seq}: {done.superseded:,} events superseded, "
            f"{done.added:,} counted instead"
        )
    head = usage_documents.replacement_document(done)
    _report(summary, problems, as_json=as_json, head=head)
    if summary[EventStatus.REJECTED] or summary[EventStatus.CONFLICT]:
        raise typer.Exit(1)


@app.command()
def revert(
    ctx: typer.Context,
    replacement: Annotated[int, typer.Argument(help="The replacement's number.")],
    as_json: JsonFlag = False,
) -> None:
    """Undo a replacement: its events leave the count and the ones it replaced come back."""
    try:
        done = system_of(ctx).replacements.revert(replacement)
    except ReplacementError as error:
        raise typer.BadParameter(str(error), param_hint="REPLACEMENT") from None
    if as_json:
        print_json(usage_documents.replacement_document(done))
    else:
        Console().print(f"replacement {done.seq} reverted: the replaced events count again")


@app.command()
def replacements(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List replacement backfills, newest first."""
    found = system_of(ctx).replacements.replacements(account)
    if as_json:
        print_json({"replacements": [usage_documents.replacement_document(r) for r in found]})
        return
    rows = [
        (
            str(d["replacement"]),
            d["account"],
            d["from"],
            d["to"],
            f"{d['superseded']:,}",
            f"{d['added']:,}",
            d["state"],
            d["note"],
        )
        for d in map(usage_documents.replacement_document, found)
    ]
    columns = ("#", "account", "from", "to", "superseded", "added", "state", "note")
    _print_table("Replacements (newest first)", columns, rows)


@app.command()
def show(
    ctx: typer.Context,
    account: Annotated[str, typer.Option(help="The customer account.")],
    period: Annotated[str, typer.Option(help="Billing month, YYYY-MM.")],
    as_json: JsonFlag = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """Show an account's usage in a billing period so far, per resource."""
    try:
        found = system_of(ctx).usage.period_usage(account, period)
    except PeriodError as error:
        raise typer.BadParameter(str(error), param_hint="--period") from None
    document = usage_documents.usage_document(found)
    if as_json:
        print_json(document)
        return
    columns = ("resource", "meter", "quantity", "unit", "raw_quantity", "raw_unit", "events")
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(document["resources"])
        return
    table = Table(title=f"Usage of {account} in {period} (as of {document['as_of']})")
    for column in columns:
        table.add_column(
            column.replace("_", " "), justify="right" if "quantity" in column else "left"
        )
    for row in document["resources"]:
        table.add_row(*(str(row[column]) for column in columns))
    if not document["resources"]:
        table.caption = "no usage in this period"
    Console().print(table)


@app.command()
def rejected(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    before: Annotated[
        int | None, typer.Option(min=1, help="Only those before this number.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List rejected and conflicting events with their reasons (nothing is dropped silently)."""
    letters = system_of(ctx).usage.dead_letters(limit=limit, before=before)
    if as_json:
        print_json(usage_documents.dead_letters_page(letters, limit))
        return
    fields = ("seq", "received", "source", "status", "account", "id", "field", "reason")
    rows = [
        tuple(str(document[f]) for f in fields)
        for document in map(usage_documents.dead_letter_document, letters)
    ]
    _print_table("Dead letters (newest first)", ("#", *fields[1:]), rows)
