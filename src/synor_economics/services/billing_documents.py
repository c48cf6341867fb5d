"""JSON documents of rated invoices, simulations and estimates, shared by every face.

Amounts in base units are strings of integers with a SYNOR display string beside them (SPEC §1);
quantities are decimal strings, exact when they terminate, else rounded HALF_EVEN to 18 places
(SPEC §10: display only, amounts come from the exact value); USD values are at the locked rate,
2 decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from synor_economics.domain.catalog import Catalog
from synor_economics.domain.invoice import Line, Rated, TierCharge
from synor_economics.domain.money import BASE, decimal_text, format_synor, format_usd
from synor_economics.domain.period import Period
from synor_economics.domain.terms import CreditGrant, service_of
from synor_economics.services.document_values import amount_fields, plain
from synor_economics.services.time import from_us, instant

if TYPE_CHECKING:
    from synor_economics.domain.billing import IssuedInvoice, Notice, Standing
    from synor_economics.ports import PaymentRecord
    from synor_economics.services.billing import Draft
    from synor_economics.services.estimate import Alternative, Estimate
    from synor_economics.services.simulation import SimulationResult


def money(name: str, units: int, usd_rate: Fraction | None) -> dict[str, str | None]:
    """``{name: "1500…", name_synor: "1.5", name_usd: "0.38"}`` (USD only with a rate)."""
    document: dict[str, str | None] = {**amount_fields(name, units)}
    document[f"{name}_usd"] = (
        None if usd_rate is None else format_usd(Fraction(units, BASE) * usd_rate)
    )
    return document


def period_document(period: Period) -> dict[str, str | None]:
    return dict(_period_document(period))


@lru_cache(maxsize=64)
def _period_document(period: Period) -> tuple[tuple[str, str | None], ...]:
    """Cached: every invoice of a close shares its period."""
    return (("label", period.label), ("start", instant(period.start)), ("end", instant(period.end)))


def _tier(part: TierCharge) -> dict[str, Any]:
    return {
        "up_to": plain(part.up_to),
        "unit_price": plain(part.unit_price),
        "quantity": decimal_text(part.quantity),
        "amount": decimal_text(part.amount),
    }


TOTALS = (  # what every stored invoice record carries, as integer strings of base units
    "charges",
    "discounts",
    "sla_credits",
    "late_usage",
    "subtotal",
    "credits_applied",
    "prepaid_applied",
    "total_due",
)


def line_record(line: Line) -> dict[str, Any]:
    """A line as it is stored with an issued invoice: exact figures, no display strings."""
    return {
        "resource": line.resource,
        "kind": line.kind.value,
        "quantity": decimal_text(line.quantity),
        "unit": line.unit,
        "model": line.model,
        "currency": line.currency.value,
        "unit_price": plain(line.unit_price),
        "tiers": [_tier(part) for part in line.tiers],
        "packages": line.packages,
        "minimum_applied": line.minimum_applied,
        "amount": str(line.amount),
    }


def invoice_record(
    account: str, rated: Rated, raw: Mapping[str, Decimal] | None = None
) -> dict[str, Any]:
    """What an issued invoice stores: every figure, exact; display strings are added when it
    is read (:func:`with_display`), so storing 100,000 invoices does not format them. ``raw``
    keeps the raw quantities it billed, so usage arriving later is noticed."""
    return {
        "account": account,
        "raw": {r: format(q, "f") for r, q in sorted((raw or {}).items())},
        "period": period_document(rated.period),
        "lines": [line_record(line) for line in rated.lines],
        "adjustments": [
            {
                "kind": a.kind.value,
                "source": a.source,
                "line": a.line,
                "percent": plain(a.percent),
                "amount": str(a.amount),
            }
            for a in rated.adjustments
        ],
        "credits": [{"grant": use.grant, "amount": str(use.amount)} for use in rated.credits],
        **{name: str(getattr(rated, name)) for name in TOTALS},
    }


def with_display(record: dict[str, Any], usd_rate: Fraction | None) -> dict[str, Any]:
    """A stored record with SYNOR display strings and USD values (at ``usd_rate``) beside every
    amount."""
    document = dict(record)
    for key in ("lines", "adjustments", "credits"):
        document[key] = [
            {**item, **money("amount", int(item["amount"]), usd_rate)} for item in record[key]
        ]
    for name in TOTALS:
        document.update(money(name, int(record.get(name, "0")), usd_rate))
    return document


def recorded_service_totals(record: dict[str, Any]) -> dict[str, int]:
    """Per service, what a stored invoice billed for its own period: its lines, percent
    discounts and SLA credit (late usage it carried belongs to earlier periods)."""
    totals: dict[str, int] = {}

    def add(service: str, amount: str) -> None:
        totals[service] = totals.get(service, 0) + int(amount)

    for line in record["lines"]:
        add(service_of(line["resource"]), line["amount"])
    for item in record["adjustments"]:
        if item["kind"] == "percent_discount" and item["line"]:
            add(service_of(item["line"]), item["amount"])
        elif item["kind"] == "sla_credit":
            add(item["source"], item["amount"])
    return totals


def line_document(line: Line, usd_rate: Fraction | None) -> dict[str, Any]:
    return {**line_record(line), **money("amount", line.amount, usd_rate)}


def rated_document(account: str, rated: Rated, usd_rate: Fraction | None) -> dict[str, Any]:
    """An invoice's figures: SPEC §10's fields, each line in full, and the USD values."""
    return with_display(invoice_record(account, rated), usd_rate)


def grant_document(grant: CreditGrant, period: Period) -> dict[str, Any]:
    """A grant after the invoice: what is left, and what expires unused (breakage) by the
    period's end."""
    expired = grant.expires_at is not None and grant.expires_at <= period.end
    return {
        "id": grant.id,
        "amount": str(grant.amount),
        "remaining": str(grant.remaining),
        "expires_at": instant(grant.expires_at),
        "breakage": str(grant.remaining if expired else 0),
    }


def catalog_identity(catalog: Catalog) -> dict[str, str]:
    return {"version": catalog.version, "digest": catalog.digest}


def simulation_document(result: SimulationResult) -> dict[str, Any]:
    simulation = result.simulation
    usd_rate = simulation.rate
    return {
        "period": period_document(simulation.period),
        "oracle": None if usd_rate is None else {"synor_usd": decimal_text(usd_rate)},
        "catalog": catalog_identity(simulation.catalog),
        "events": {
            "accepted": result.events.accepted,
            "duplicate": result.events.duplicate,
            "conflict": result.events.conflict,
        },
        "invoices": [
            {
                **rated_document(invoice.account, invoice.rated, usd_rate),
                "grants": [grant_document(g, simulation.period) for g in invoice.grants],
            }
            for invoice in result.invoices
        ],
    }


def estimate_document(result: Estimate) -> dict[str, Any]:
    """The on-demand invoice in full, and every alternative's monthly and yearly totals with
    its saving against on demand. Yearly is twelve periods of the same usage."""
    usd_rate = result.rate
    base = result.on_demand.subtotal

    def summary(alternative: Alternative) -> dict[str, Any]:
        monthly = alternative.rated.subtotal
        saving = base - monthly
        return {
            "option": alternative.name,
            "term_months": alternative.term_months,
            **money("monthly", monthly, usd_rate),
            **money("yearly", 12 * monthly, usd_rate),
            **money("saving_monthly", saving, usd_rate),
            "saving_percent": None if base == 0 else decimal_text(Fraction(100 * saving, base), 2),
        }

    return {
        "period": period_document(result.period),
        "oracle": None if usd_rate is None else {"synor_usd": decimal_text(usd_rate)},
        "quantities": {r: decimal_text(q) for r, q in sorted(result.quantities.items())},
        "lines": [line_document(line, usd_rate) for line in result.on_demand.lines],
        **money("total", result.on_demand.subtotal, usd_rate),
        **money("yearly", 12 * result.on_demand.subtotal, usd_rate),
        "options": [summary(a) for a in result.alternatives],
        "reserved": [
            {"term_months": a.term_months, **rated_document("estimate", a.rated, usd_rate)}
            for a in result.reserved
        ],
    }


def draft_document(draft: Draft, usd_rate: Fraction | None) -> dict[str, Any]:
    """A draft (or projected) invoice: not numbered, not stored, figures as of ``as_of``."""
    return {
        "status": "projected" if draft.projected else "draft",
        "as_of": instant(draft.as_of),
        **rated_document(draft.account, draft.rated, usd_rate),
    }


def standing_document(found: Standing) -> dict[str, Any]:
    return {
        "account": found.account,
        "status": found.status.value,
        "suspend": found.suspend,
        "outstanding": str(found.outstanding),
        "overdue": str(found.overdue),
        "days_overdue": found.days_overdue,
        "overdue_invoices": list(found.overdue_invoices),
        "suspend_after_days": found.suspend_after_days,
    }


def notice_document(notice: Notice) -> dict[str, Any]:
    return {
        "account": notice.account,
        "invoice": notice.invoice,
        "kind": notice.kind.value,
        "days_overdue": notice.days_overdue,
        "created_at": instant(from_us(notice.created_us)),
    }


def payment_document(record: PaymentRecord) -> dict[str, Any]:
    return {
        "reference": record.reference,
        "account": record.account,
        "invoice": record.invoice,
        "amount": str(record.amount),
        "to_invoice": str(record.to_invoice),
        "to_prepaid": str(record.to_prepaid),
        "received_at": instant(from_us(record.received_us)),
    }


def document_of(invoice: IssuedInvoice) -> dict[str, Any]:
    """An issued invoice as JSON: its stored figures and lines, with its number, status and
    dates."""
    return {
        "number": invoice.number,
        "kind": invoice.kind.value,
        "status": invoice.status.value,
        "issued_at": instant(from_us(invoice.issued_us)),
        "due_at": instant(from_us(invoice.due_us)),
        "catalog": {"version": invoice.catalog_version, "digest": invoice.catalog_digest},
        "rate": invoice.rate,
        "paid": str(invoice.paid),
        "paid_synor": format_synor(invoice.paid),
        "outstanding": str(invoice.outstanding),
        "outstanding_synor": format_synor(invoice.outstanding),
        "corrects": invoice.corrects,
        **with_display(invoice.document, None if invoice.rate is None else Fraction(invoice.rate)),
    }
