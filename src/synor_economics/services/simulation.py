"""Billing simulations (SPEC §10): a self-contained case, rated by the same engine as real bills.

A simulation file gives a period, a fixed oracle rate, price overrides, accounts with their terms,
and usage events. :func:`read_simulation` checks it (every error names its place in the file),
:func:`run_simulation` meters the events exactly as the metering service does (counters summed,
gauges integrated per subject with the level carried in from before the period) and rates each
account with :func:`synor_economics.domain.invoice.rate`.

Events are validated like live ones except for the time window, and deduplicated the same way: a
repeated ``(account, id)`` with the same body counts once; with a different body the first copy
stands (both are reported).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from synor_economics.catalog import fields as doc
from synor_economics.catalog.loader import parse_price_row
from synor_economics.domain.catalog import Catalog, MeterKind, PriceRow
from synor_economics.domain.errors import CatalogError
from synor_economics.domain.invoice import Rated, Terms, rate
from synor_economics.domain.meters import Level, gauge_integral
from synor_economics.domain.period import Period
from synor_economics.domain.terms import CreditGrant
from synor_economics.domain.usage import EventError, UsageEvent, parse_event
from synor_economics.services.terms_input import (
    TERMS_KEYS,
    DocumentError,
    instant_at,
    read_oracle,
    read_period,
    read_terms,
)
from synor_economics.services.time import to_us

_TOP_KEYS = ("period", "oracle", "catalog", "accounts", "events")


@dataclass(frozen=True, slots=True)
class Simulation:
    period: Period
    rate: Fraction | None
    catalog: Catalog
    accounts: Mapping[str, Terms]
    """In file order; accounts that only appear in events get default terms."""
    events: tuple[UsageEvent, ...]


@dataclass(frozen=True, slots=True)
class EventTally:
    accepted: int
    duplicate: int
    conflict: int


@dataclass(frozen=True, slots=True)
class SimulatedInvoice:
    account: str
    rated: Rated
    raw: Mapping[str, Fraction]
    """Raw quantities per resource (event units; unit-seconds for gauges)."""
    grants: tuple[CreditGrant, ...]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    simulation: Simulation
    invoices: tuple[SimulatedInvoice, ...]
    events: EventTally


def load_document(path: Path) -> Any:
    """A YAML or JSON file (YAML is a superset of JSON), decoded; errors say where."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise DocumentError(f"{path}: not UTF-8 text (byte {error.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise DocumentError(f"{path}: {place}not valid YAML or JSON: {problem}") from None


def read_simulation(document: Any, base: Catalog) -> Simulation:
    """Check a decoded simulation document against the price book it overrides."""
    try:
        return _read(document, base)
    except CatalogError as error:
        raise DocumentError(str(error)) from None


def _read(document: Any, base: Catalog) -> Simulation:
    top = doc.table(document, "file")
    doc.check_keys(top, "", required=("period",), optional=_TOP_KEYS, what="a simulation file")
    period = read_period(top["period"], "period")
    catalog = read_overrides(top.get("catalog"), "catalog", base, period)
    usd_rate = read_oracle(top.get("oracle"), "oracle")
    accounts: dict[str, Terms] = {}
    for index, table in enumerate(doc.tables(top.get("accounts", []), "accounts", non_empty=False)):
        where = f"accounts[{index}]"
        doc.check_keys(table, where, required=("id",), optional=TERMS_KEYS, what="an account")
        account = doc.text(table["id"], doc.join(where, "id"))
        if account in accounts:
            raise CatalogError(doc.join(where, "id"), f"duplicate account {account!r}")
        accounts[account] = read_terms(table, where, catalog)
    events = tuple(
        _event(raw, f"events[{index}]", catalog)
        for index, raw in enumerate(_event_list(top.get("events", [])))
    )
    for event in events:
        accounts.setdefault(event.account, Terms())
    return Simulation(period, usd_rate, catalog, accounts, events)


def read_overrides(value: object, where: str, base: Catalog, period: Period) -> Catalog:
    """Rows that replace the default row of their resource for the case (SPEC §10)."""
    if value is None:
        return base
    table = doc.table(value, where)
    rows: dict[str, PriceRow] = {}
    for resource_id, row in table.items():
        place = doc.join(where, str(resource_id))
        with doc.inside(place):
            base.resource(str(resource_id))
        rows[str(resource_id)] = parse_price_row(
            row, where=place, default_effective_from=_EPOCH_START
        )
    return base.with_rows(rows)


_EPOCH_START = instant_at("1970-01-01T00:00:00Z", "epoch")
"""An override row is in effect from the start of time unless it says otherwise."""


def _event_list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise CatalogError("events", f"must be a list of events, not {doc.kind(value)}")
    return value


def _event(raw: Any, where: str, catalog: Catalog) -> UsageEvent:
    """A live event's validation, without the time window; YAML datetimes become RFC 3339."""
    if isinstance(raw, Mapping) and not isinstance(raw.get("ts", ""), str):
        raw = {**raw, "ts": _rfc3339(raw["ts"], doc.join(where, "ts"))}
    try:
        return parse_event(raw, catalog.resources, None)
    except EventError as error:
        raise CatalogError(doc.join(where, error.field), error.reason) from None


def _rfc3339(value: object, where: str) -> str:
    moment = instant_at(value, where)
    return moment.isoformat().replace("+00:00", "Z")


def dedupe(events: Sequence[UsageEvent]) -> tuple[list[UsageEvent], EventTally]:
    """The events that count, in file order, and how many were duplicates or conflicts."""
    seen: dict[tuple[str, str], str] = {}
    kept: list[UsageEvent] = []
    duplicate = conflict = 0
    for event in events:
        first = seen.get(event.key)
        if first is None:
            seen[event.key] = event.fingerprint
            kept.append(event)
        elif first == event.fingerprint:
            duplicate += 1
        else:
            conflict += 1
    return kept, EventTally(len(kept), duplicate, conflict)


def raw_quantities(
    events: Sequence[UsageEvent], catalog: Catalog, period: Period
) -> dict[str, dict[str, Fraction]]:
    """Per account and resource, the period's raw quantity: Σ of a counter's events in the
    period; a gauge's integral (unit·seconds) summed over its subjects."""
    start_us, end_us = to_us(period.start), to_us(period.end)
    counters: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    levels: dict[tuple[str, str, str], list[Level]] = defaultdict(list)
    for event in events:
        meter = catalog.resource(event.resource).meter
        if meter is MeterKind.COUNTER:
            if start_us <= event.ts_us < end_us:
                counters[(event.account, event.resource)] += event.quantity
        else:
            levels[(event.account, event.resource, event.subject)].append(
                Level(event.ts_us, event.quantity)
            )
    totals: dict[str, dict[str, Fraction]] = defaultdict(dict)
    for (account, resource), total in counters.items():
        totals[account][resource] = Fraction(total)
    for (account, resource, _), history in levels.items():
        history.sort(key=lambda level: level.ts_us)  # stable: equal times keep file order
        integral = Fraction(gauge_integral(history, start_us, end_us))
        totals[account][resource] = totals[account].get(resource, Fraction(0)) + integral
    return totals


def run_simulation(simulation: Simulation) -> SimulationResult:
    """Meter and rate every account of a simulation."""
    kept, tally = dedupe(simulation.events)
    raw = raw_quantities(kept, simulation.catalog, simulation.period)
    invoices = []
    for account, terms in simulation.accounts.items():
        used = {r: q for r, q in raw.get(account, {}).items() if q != 0}
        billable = {
            resource_id: simulation.catalog.resource(resource_id).billable_quantity(
                quantity, simulation.period.seconds
            )
            for resource_id, quantity in used.items()
        }
        rated = rate(simulation.catalog, simulation.period, billable, terms, rate=simulation.rate)
        invoices.append(SimulatedInvoice(account, rated, used, _grants_after(terms, rated)))
    return SimulationResult(simulation, tuple(invoices), tally)


def _grants_after(terms: Terms, rated: Rated) -> tuple[CreditGrant, ...]:
    """Each grant with what is left of it once this invoice has used it."""
    used = {use.grant: use.amount for use in rated.credits}
    return tuple(replace(g, remaining=g.remaining - used.get(g.id, 0)) for g in terms.grants)
