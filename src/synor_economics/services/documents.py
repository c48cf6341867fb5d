"""JSON documents of the read side, shared by every face so the CLI's ``--json`` and the API
say the same thing. Base-unit amounts are strings of integers, with SYNOR display strings beside
them (SPEC §1); prices and quantities are exact decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from synor_economics.domain.catalog import Catalog, PriceRow, Resource
from synor_economics.domain.errors import LedgerError
from synor_economics.domain.ledger import TransferRecord
from synor_economics.domain.ledger_audit import AuditReport
from synor_economics.domain.pricing import Graduated, Package, PerUnit, PricingModel, Volume
from synor_economics.services.document_values import amount_fields, plain
from synor_economics.services.ledger import AccountView, StatementLine
from synor_economics.services.time import from_us, instant


def price_model_document(model: PricingModel) -> dict[str, Any]:
    document: dict[str, Any] = {"model": model.name, "currency": model.currency.value}
    if isinstance(model, PerUnit):
        document["unit_price"] = plain(model.unit_price)
    elif isinstance(model, Graduated | Volume):
        document["tiers"] = [
            {"up_to": plain(tier.up_to), "unit_price": plain(tier.unit_price)}
            for tier in model.tiers
        ]
    elif isinstance(model, Package):
        document["package_size"] = plain(model.package_size)
        document["package_price"] = plain(model.package_price)
    document["minimum"] = plain(model.minimum)
    return document


def price_row_document(row: PriceRow) -> dict[str, Any]:
    return {
        "effective_from": instant(row.effective_from),
        **price_model_document(row.model),
    }


def resource_document(resource: Resource, current: PriceRow | None) -> dict[str, Any]:
    return {
        "id": resource.id,
        "service": resource.service,
        "meter": resource.meter.value,
        "event_unit": resource.event_unit,
        "price_unit": resource.price_unit,
        "divisor": str(resource.divisor),
        "description": resource.description,
        "allows_corrections": resource.allows_corrections,
        "price": None if current is None else price_row_document(current),
        "prices": [price_row_document(row) for row in resource.prices],
    }


def catalog_document(
    catalog: Catalog, rows: list[tuple[Resource, PriceRow | None]], at: datetime
) -> dict[str, Any]:
    return {
        "version": catalog.version,
        "digest": catalog.digest,
        "at": instant(at),
        "resources": [resource_document(resource, row) for resource, row in rows],
    }


def account_document(view: AccountView) -> dict[str, Any]:
    spec, balance = view.spec, view.balance
    return {
        "id": spec.id,
        "kind": spec.kind.value,
        "normal": spec.normal.value,
        "owner": spec.owner,
        "floor": None if spec.floor is None else str(spec.floor),
        **amount_fields("balance", view.posted),
        **amount_fields("available", view.available),
        "pending_in": str(view.pending_in),
        "pending_out": str(view.pending_out),
        "debits_posted": str(balance.debits_posted),
        "credits_posted": str(balance.credits_posted),
    }


def transfer_document(record: TransferRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "seq": record.seq,
        "kind": record.kind.value,
        "ref": record.ref,
        "ts": instant(from_us(record.ts_us)),
        "code": record.code,
        "memo": record.memo,
        **amount_fields("amount", record.amount),
        "entries": [
            {"account": e.account, "side": e.side.value, **amount_fields("amount", e.amount)}
            for e in record.entries
        ],
    }


def balances_document(views: list[AccountView], as_of: datetime | None) -> dict[str, Any]:
    return {"as_of": instant(as_of), "accounts": [account_document(v) for v in views]}


def parse_cursor(text: str) -> tuple[int, int]:
    """A statement cursor ``"seq:leg"`` (as ``next_before`` gives it) as a tuple."""
    seq, _, leg = text.partition(":")
    if not (seq.isdigit() and leg.isdigit()):
        raise LedgerError("invalid_cursor", f"cursor {text!r} must look like 123:0")
    return int(seq), int(leg)


def statement_page(lines: list[StatementLine], limit: int) -> dict[str, Any]:
    """One page of a statement, with the cursor of the next (``None`` on the last page)."""
    last = lines[-1].entry if len(lines) == limit else None
    return {
        "entries": [statement_document(line) for line in lines],
        "next_before": None if last is None else f"{last.seq}:{last.leg}",
    }


def statement_document(line: StatementLine) -> dict[str, Any]:
    return {
        "seq": line.entry.seq,
        "leg": line.entry.leg,
        "transfer": line.transfer.id,
        "kind": line.transfer.kind.value,
        "code": line.transfer.code,
        "ts": instant(from_us(line.transfer.ts_us)),
        "side": line.entry.side.value,
        "pending": line.entry.pending,
        **amount_fields("amount", line.entry.amount),
        **amount_fields("balance_after", line.balance_after),
    }


def audit_document(report: AuditReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "transfers": report.transfers,
        "entries": report.entries,
        "accounts": report.accounts,
        "total_debits": str(report.total_debits),
        "total_credits": str(report.total_credits),
        "violation_count": report.violation_count,
        "violations": [
            {"code": v.code, "where": v.where, "detail": v.detail} for v in report.violations
        ],
    }
