"""``synor db``: the storage schema."""

from __future__ import annotations

import typer
from rich.console import Console

from synor_economics.cli.app import system_of

app = typer.Typer(help="Database schema: status and upgrades.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Bring the database schema up to date (safe to run again: a current schema is untouched)."""
    system = system_of(ctx)
    system.schema.upgrade()
    Console().print(
        f"schema at {system.schema.current()} on {system.schema.backend} ({system.schema.location})"
    )


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the schema revision in the database and the newest one this version knows."""
    system = system_of(ctx)
    current, head = system.schema.current(), system.schema.head()
    state = "up to date" if current == head else "needs `synor db upgrade`"
    Console().print(
        f"{system.schema.backend} ({system.schema.location}): {current} (newest {head}) — {state}"
    )
    if current != head:
        raise typer.Exit(1)
