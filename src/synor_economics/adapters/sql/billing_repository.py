"""The billing repository over SQLAlchemy Core: account terms, credit grants, uptime reports,
invoices with their gapless numbers, and payments. Reads take many accounts at once (a period
close works through accounts in chunks)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Connection, select, update

from synor_economics.adapters.sql.bulk import chunks, driver_of
from synor_economics.adapters.sql.tables import (
    billing_accounts,
    billing_commitments,
    billing_discounts,
    billing_notices,
    credit_grants,
    invoice_counters,
    invoices,
    payments,
    uptime_reports,
    usage_gauges,
)
from synor_economics.adapters.sql.usage_repository import hourly_rows
from synor_economics.domain.billing import (
    AccountTerms,
    DocumentKind,
    InvoiceStatus,
    IssuedInvoice,
    Notice,
    NoticeKind,
)
from synor_economics.domain.instants import from_us, to_us
from synor_economics.domain.pricing import Currency
from synor_economics.domain.terms import Commitment, CreditGrant, Discount, DiscountKind, Scope
from synor_economics.ports import GrantRecord, PaymentRecord

_CHUNK = 2000

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
"""Invoice documents are JSON; msgspec reads and writes them several times faster than ``json``
(a period close stores one per account)."""


def _scope(service: str | None, resource: str | None) -> Scope | None:
    if service is None and resource is None:
        return None
    return Scope(service=service, resource=resource)


def _scope_columns(scope: Scope | None) -> dict[str, str | None]:
    return {
        "scope_service": None if scope is None else scope.service,
        "scope_resource": None if scope is None else scope.resource,
    }


def _optional_us(value: Any) -> int | None:
    return None if value is None else to_us(value)


def _issued(row: Any) -> IssuedInvoice:
    values = dict(row._mapping)
    values["kind"] = DocumentKind(values["kind"])
    values["status"] = InvoiceStatus(values["status"])
    values["document"] = _decode(values["document"])
    return IssuedInvoice(**values)


_INVOICE_FIELDS = tuple(invoices.c.keys())
_EXACT_FIELDS = {"subtotal", "credits_applied", "prepaid_applied", "total_due", "paid", "credited"}
_SQLITE_INSERT_INVOICES = (
    f"INSERT INTO invoices ({', '.join(_INVOICE_FIELDS)}) SELECT "  # noqa: S608 (constants)
    + ", ".join(
        f"value->{i}" if name in _EXACT_FIELDS or name == "document" else f"value->>{i}"
        for i, name in enumerate(_INVOICE_FIELDS)
    )
    + " FROM json_each(?)"
)
"""Amounts are JSON integers of any size read with ``->`` (their exact digits); the document is
a nested object read with ``->`` (its JSON text)."""


def _invoice_value(invoice: IssuedInvoice, name: str) -> Any:
    value = getattr(invoice, name)
    return value.value if name in ("kind", "status") else value


class SqlBillingRepository:
    """Implements ``ports.BillingRepository`` on one connection inside a transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- accounts and terms --------------------------------------------------------------------

    def account_terms(self, accounts: Collection[str]) -> dict[str, AccountTerms]:
        found: dict[str, AccountTerms] = {}
        for chunk in chunks(accounts, _CHUNK):
            query = select(billing_accounts).where(billing_accounts.c.account.in_(chunk))
            for row in self.conn.execute(query):
                values = dict(row._mapping)
                values.pop("created_us")
                found[row.account] = AccountTerms(**values)
        return found

    def save_account_terms(self, terms: AccountTerms, now_us: int) -> None:
        values = {
            "payment_terms_days": terms.payment_terms_days,
            "anchor_day": terms.anchor_day,
            "reminder_after_days": terms.reminder_after_days,
            "suspend_after_days": terms.suspend_after_days,
        }
        c = billing_accounts.c
        done = self.conn.execute(update(billing_accounts).where(c.account == terms.account), values)
        if done.rowcount == 0:
            self.conn.execute(
                billing_accounts.insert(),
                {"account": terms.account, "created_us": now_us, **values},
            )

    def anchor_days(self) -> dict[str, int]:
        """Accounts billed on another day of the month than the 1st, with their day."""
        c = billing_accounts.c
        query = select(c.account, c.anchor_day).where(c.anchor_day != 1)
        return {row.account: row.anchor_day for row in self.conn.execute(query)}

    def discounts(self, accounts: Collection[str]) -> dict[str, list[Discount]]:
        found: dict[str, list[Discount]] = defaultdict(list)
        for chunk in chunks(accounts, _CHUNK):
            query = select(billing_discounts).where(billing_discounts.c.account.in_(chunk))
            for row in self.conn.execute(query.order_by(billing_discounts.c.id)):
                found[row.account].append(
                    Discount(
                        id=row.id,
                        kind=DiscountKind(row.kind),
                        percent=row.percent,
                        amount=row.amount,
                        scope=_scope(row.scope_service, row.scope_resource),
                        priority=row.priority,
                        start=None if row.start_us is None else from_us(row.start_us),
                        end=None if row.end_us is None else from_us(row.end_us),
                    )
                )
        return found

    def add_discount(self, account: str, discount: Discount) -> None:
        self.conn.execute(
            billing_discounts.insert(),
            {
                "account": account,
                "id": discount.id,
                "kind": discount.kind.value,
                "percent": discount.percent,
                "amount": discount.amount,
                **_scope_columns(discount.scope),
                "priority": discount.priority,
                "start_us": _optional_us(discount.start),
                "end_us": _optional_us(discount.end),
            },
        )

    def commitments(self, accounts: Collection[str]) -> dict[str, list[Commitment]]:
        found: dict[str, list[Commitment]] = defaultdict(list)
        for chunk in chunks(accounts, _CHUNK):
            query = select(billing_commitments).where(billing_commitments.c.account.in_(chunk))
            for row in self.conn.execute(query.order_by(billing_commitments.c.id)):
                found[row.account].append(
                    Commitment(
                        id=row.id,
                        resource=row.resource,
                        quantity=row.quantity,
                        unit_price=row.unit_price,
                        term_months=row.term_months,
                        start=from_us(row.start_us),
                        currency=Currency(row.currency),
                    )
                )
        return found

    def committed_accounts(self) -> set[str]:
        return set(self.conn.execute(select(billing_commitments.c.account).distinct()).scalars())

    def add_commitment(self, account: str, commitment: Commitment) -> None:
        self.conn.execute(
            billing_commitments.insert(),
            {
                "account": account,
                "id": commitment.id,
                "resource": commitment.resource,
                "quantity": commitment.quantity,
                "unit_price": commitment.unit_price,
                "currency": commitment.currency.value,
                "term_months": commitment.term_months,
                "start_us": to_us(commitment.start),
            },
        )

    # -- credit grants ---------------------------------------------------------------------------

    def grants(self, accounts: Collection[str]) -> dict[str, list[GrantRecord]]:
        found: dict[str, list[GrantRecord]] = defaultdict(list)
        for chunk in chunks(accounts, _CHUNK):
            query = select(credit_grants).where(credit_grants.c.account.in_(chunk))
            for row in self.conn.execute(query.order_by(credit_grants.c.seq)):
                grant = CreditGrant(
                    id=row.id,
                    amount=row.amount,
                    remaining=row.amount - row.used,
                    priority=row.priority,
                    expires_at=None if row.expires_us is None else from_us(row.expires_us),
                    scope=_scope(row.scope_service, row.scope_resource),
                    created=row.seq,
                )
                found[row.account].append(
                    GrantRecord(row.account, grant, row.created_us, row.broken_us)
                )
        return found

    def add_grant(self, account: str, grant: CreditGrant, created_us: int) -> None:
        self.conn.execute(
            credit_grants.insert(),
            {
                "account": account,
                "id": grant.id,
                "amount": grant.amount,
                "used": grant.amount - grant.remaining,
                "priority": grant.priority,
                "expires_us": _optional_us(grant.expires_at),
                **_scope_columns(grant.scope),
                "created_us": created_us,
                "broken_us": None,
            },
        )

    def use_grants(self, uses: Sequence[tuple[str, str, int]]) -> None:
        """Add (account, grant id, amount) to what each grant has paid."""
        c = credit_grants.c
        for account, grant_id, amount in uses:
            row = self.conn.execute(
                select(c.used).where(c.account == account, c.id == grant_id)
            ).one()
            self.conn.execute(
                update(credit_grants).where(c.account == account, c.id == grant_id),
                {"used": row.used + amount},
            )

    def mark_broken(self, account: str, grant_id: str, at_us: int) -> None:
        c = credit_grants.c
        self.conn.execute(
            update(credit_grants).where(c.account == account, c.id == grant_id),
            {"broken_us": at_us},
        )

    def expiring(self, before_us: int) -> list[GrantRecord]:
        """Grants expired by ``before_us`` whose unused rest is not yet written off."""
        c = credit_grants.c
        query = select(c.account).where(c.expires_us <= before_us, c.broken_us.is_(None))
        accounts = set(self.conn.execute(query).scalars())
        return [
            record
            for rows in self.grants(accounts).values()
            for record in rows
            if record.broken_us is None
            and record.grant.expires_at is not None
            and to_us(record.grant.expires_at) <= before_us
        ]

    # -- uptime ----------------------------------------------------------------------------------

    def add_downtime(
        self,
        reference: str,
        *,
        service: str,
        account: str | None,
        period_start_us: int,
        minutes: Decimal,
        now_us: int,
    ) -> bool:
        """Record a downtime report once per reference; False if it was recorded before."""
        c = uptime_reports.c
        if self.conn.execute(select(c.seq).where(c.reference == reference)).first():
            return False
        self.conn.execute(
            uptime_reports.insert(),
            {
                "service": service,
                "account": account,
                "period_start_us": period_start_us,
                "downtime_minutes": minutes,
                "reference": reference,
                "reported_us": now_us,
            },
        )
        return True

    def downtime(self, period_start_us: int) -> dict[tuple[str | None, str], Decimal]:
        """Minutes of downtime per (account or None for everyone, service) in a period."""
        c = uptime_reports.c
        totals: dict[tuple[str | None, str], Decimal] = defaultdict(Decimal)
        query = select(c.account, c.service, c.downtime_minutes).where(
            c.period_start_us == period_start_us
        )
        for row in self.conn.execute(query):
            totals[(row.account, row.service)] += row.downtime_minutes
        return totals

    # -- accounts with usage -------------------------------------------------------------------

    def usage_accounts(self, start_us: int, end_us: int) -> set[str]:
        """Accounts with counted usage in the period, or a gauge level carried into it."""
        hourly = hourly_rows().c
        found = set(
            self.conn.execute(
                select(hourly.account)
                .where(hourly.hour_us >= start_us, hourly.hour_us < end_us)
                .distinct()
            ).scalars()
        )
        gauges = usage_gauges.c
        found.update(
            self.conn.execute(
                select(gauges.account)
                .where(gauges.since_us < end_us, gauges.level != Decimal(0))
                .distinct()
            ).scalars()
        )
        return found

    # -- invoices ------------------------------------------------------------------------------

    def take_numbers(self, series: str, count: int) -> int:
        """Reserve ``count`` consecutive numbers of a series; the first one. Inside the
        transaction that stores the invoices, so a rollback returns them."""
        c = invoice_counters.c
        row = self.conn.execute(select(c.last).where(c.series == series)).first()
        if row is None:
            self.conn.execute(invoice_counters.insert(), {"series": series, "last": count})
            return 1
        self.conn.execute(
            update(invoice_counters).where(c.series == series), {"last": row.last + count}
        )
        return int(row.last) + 1

    def invoiced_accounts(self, accounts: Collection[str], period_start_us: int) -> set[str]:
        c = invoices.c
        found: set[str] = set()
        for chunk in chunks(accounts, _CHUNK):
            query = select(c.account).where(
                c.account.in_(chunk),
                c.period_start_us == period_start_us,
                c.kind == DocumentKind.INVOICE.value,
                c.status != InvoiceStatus.VOID.value,
            )
            found.update(self.conn.execute(query).scalars())
        return found

    def invoices_since(self, accounts: Collection[str], start_us: int) -> list[IssuedInvoice]:
        """The accounts' invoices (not void, not credit notes) for periods from ``start_us``."""
        c = invoices.c
        found: list[IssuedInvoice] = []
        for chunk in chunks(accounts, _CHUNK):
            query = select(invoices).where(
                c.account.in_(chunk),
                c.period_start_us >= start_us,
                c.kind == DocumentKind.INVOICE.value,
                c.status != InvoiceStatus.VOID.value,
            )
            found.extend(_issued(row) for row in self.conn.execute(query.order_by(c.number)))
        return found

    def add_invoices(self, issued: Sequence[IssuedInvoice]) -> None:
        """Store invoices; on SQLite as one statement over a JSON array, like the ledger's bulk
        writes (SQLAlchemy's per-row parameter processing cost more than the insert itself)."""
        if not issued:
            return
        if self.conn.dialect.name == "sqlite":
            values = [
                tuple(_invoice_value(invoice, name) for name in _INVOICE_FIELDS)
                for invoice in issued
            ]
            driver_of(self.conn).execute(_SQLITE_INSERT_INVOICES, (_encode(values),))
            return
        rows = []
        for invoice in issued:
            row = {
                name: getattr(invoice, name)
                for name in IssuedInvoice.__dataclass_fields__
                if name != "document"
            }
            row["kind"] = invoice.kind.value
            row["status"] = invoice.status.value
            row["document"] = _encode(invoice.document).decode()
            rows.append(row)
        self.conn.execute(invoices.insert(), rows)

    def invoice(self, number: str) -> IssuedInvoice | None:
        row = self.conn.execute(select(invoices).where(invoices.c.number == number)).first()
        return None if row is None else _issued(row)

    def invoices(
        self,
        *,
        account: str | None = None,
        period_start_us: int | None = None,
        limit: int = 100,
        before: str | None = None,
        corrects: str | None = None,
    ) -> list[IssuedInvoice]:
        c = invoices.c
        query = select(invoices).order_by(c.number.desc()).limit(limit)
        if account is not None:
            query = query.where(c.account == account)
        if period_start_us is not None:
            query = query.where(c.period_start_us == period_start_us)
        if before is not None:
            query = query.where(c.number < before)
        if corrects is not None:
            query = query.where(c.corrects == corrects)
        return [_issued(row) for row in self.conn.execute(query)]

    def set_payment_state(
        self, number: str, *, paid: int, credited: int, status: InvoiceStatus
    ) -> None:
        self.conn.execute(
            update(invoices).where(invoices.c.number == number),
            {"paid": paid, "credited": credited, "status": status.value},
        )

    def unpaid_before(self, due_us: int) -> list[IssuedInvoice]:
        """Finalised invoices not paid by ``due_us`` (candidates for dunning)."""
        c = invoices.c
        query = select(invoices).where(
            c.kind == DocumentKind.INVOICE.value,
            c.status == InvoiceStatus.FINALIZED.value,
            c.due_us < due_us,
        )
        return [_issued(row) for row in self.conn.execute(query.order_by(c.number))]

    def notices(
        self, *, account: str | None = None, invoices_of: Collection[str] = ()
    ) -> list[Notice]:
        c = billing_notices.c
        query = select(billing_notices).order_by(c.seq)
        if account is not None:
            query = query.where(c.account == account)
        found = []
        chunked = list(chunks(invoices_of, _CHUNK)) if invoices_of else [None]
        for chunk in chunked:
            page = query if chunk is None else query.where(c.invoice.in_(chunk))
            for row in self.conn.execute(page):
                found.append(Notice(**{**row._mapping, "kind": NoticeKind(row.kind)}))
        return found

    def add_notices(self, notices: Sequence[Notice]) -> None:
        if notices:
            self.conn.execute(
                billing_notices.insert(),
                [
                    {
                        "account": n.account,
                        "invoice": n.invoice,
                        "kind": n.kind.value,
                        "days_overdue": n.days_overdue,
                        "created_us": n.created_us,
                    }
                    for n in notices
                ],
            )

    # -- payments ------------------------------------------------------------------------------

    def payment(self, reference: str) -> PaymentRecord | None:
        row = self.conn.execute(select(payments).where(payments.c.reference == reference)).first()
        return None if row is None else PaymentRecord(**row._mapping)

    def add_payment(self, payment: PaymentRecord) -> None:
        self.conn.execute(payments.insert(), payment._asdict())
