"""The ``synor`` command tree. Commands fetch the assembled system from the launcher the console
script passes in (``ctx.obj``), so this module never touches settings or adapters itself, and
heavy imports happen inside the commands that need them."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any

import typer

from synor_economics import __version__

if TYPE_CHECKING:
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


def _register(app: typer.Typer, command: str) -> None:
    """Add one top-level command (or group) to the tree, importing only its module."""
    from importlib import import_module

    module_name, attribute = _COMMANDS[command]
    module = import_module(f"synor_economics.cli.{module_name}")
    if attribute == "register":
        module.register(app)
    elif isinstance(found := getattr(module, attribute), typer.Typer):
        app.add_typer(found, name=command)
    else:
        app.command(command)(found)


_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("system", "register"),
    "config": ("system", "register"),
    "db": ("db", "app"),
    "catalog": ("catalog", "app"),
    "ledger": ("ledger", "app"),
    "usage": ("usage", "app"),
    "cost": ("cost", "app"),
    "worker": ("worker", "worker"),
    "simulate": ("simulate", "simulate"),
    "billing": ("billing", "app"),
    "invoice": ("billing", "invoice_app"),
    "account": ("billing", "account_app"),
    "demo": ("demo", "demo"),
    "oracle": ("chain", "oracle_app"),
    "payments": ("chain", "payments_app"),
    "chain": ("chain", "chain_app"),
}
"""Top-level command → (module under ``cli``, what it provides). ``register`` adds several."""


def decimal_option(text: str, option: str) -> Decimal:
    """An exact decimal from the command line; anything else is refused naming the option."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a decimal number", param_hint=option) from None
    if not value.is_finite():
        raise typer.BadParameter("must be a finite number", param_hint=option)
    return value


def make_app(command: str | None = None) -> typer.Typer:
    """Assemble the command tree; for a known ``command`` only that branch of it, so a command
    imports nothing the others need (``synor cost estimate`` answers in well under 300 ms)."""
    app = typer.Typer(
        name="synor",
        help="Synor economics: metering, billing, ledger and fees for the Synor network.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="markdown",
    )
    chosen = [command] if command in _COMMANDS else list(_COMMANDS)
    done: set[tuple[str, str]] = set()
    for name in chosen:
        if _COMMANDS[name] not in done:  # one register() adds all of its module's commands
            done.add(_COMMANDS[name])
            _register(app, name)

    @app.command()
    def version() -> None:
        """Print the version."""
        typer.echo(__version__)

    return app
