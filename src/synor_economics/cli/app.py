"""The ``synor`` command tree. Commands fetch the assembled system from the launcher the console
script passes in (``ctx.obj``), so this module never touches settings or adapters itself, and
heavy imports happen inside the commands that need them."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from synor_economics import __version__
from synor_economics.services.system import Launcher, System

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def launcher_of(ctx: typer.Context) -> Launcher:
    launcher = ctx.find_root().obj
    if launcher is None:
        raise typer.BadParameter("synor was started without a launcher")
    return launcher  # type: ignore[no-any-return]


def system_of(ctx: typer.Context) -> System:
    return launcher_of(ctx).system()


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def parse_time(text: str | None, option: str) -> datetime | None:
    """An RFC 3339 time from the command line; a date means its midnight UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an RFC 3339 time such as 2026-11-01T00:00:00Z", param_hint=option
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def make_app() -> typer.Typer:
    """Assemble the command tree."""
    from synor_economics.cli import catalog, db, ledger, system, usage, worker

    app = typer.Typer(
        name="synor",
        help="Synor economics: metering, billing, ledger and fees for the Synor network.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="markdown",
    )
    system.register(app)
    app.add_typer(db.app, name="db")
    app.add_typer(catalog.app, name="catalog")
    app.add_typer(ledger.app, name="ledger")
    app.add_typer(usage.app, name="usage")
    app.command()(worker.worker)

    @app.command()
    def version() -> None:
        """Print the version."""
        typer.echo(__version__)

    return app
