"""Issued invoices, their numbers, and what they say about an account's standing (SPEC §7).

A finalised invoice is immutable: its figures and its document (every line, as rated) are stored
once and never change; only its payment state moves (``paid`` grows, ``status`` becomes ``paid``)
or it is voided. Corrections are credit notes, themselves numbered documents.

Numbers are gapless and sequential per series: ``SYN-2026-000001``, the series being the issuer
prefix and the year of issue. A number is taken in the same transaction that stores the invoice,
so a failed close leaves no hole.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

ISSUER = "SYN"
DAY_US = 86_400_000_000


class InvoiceStatus(StrEnum):
    FINALIZED = "finalized"
    PAID = "paid"
    VOID = "void"


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


def series(year: int) -> str:
    return f"{ISSUER}-{year:04d}"


def invoice_number(year: int, sequence: int) -> str:
    """``SYN-2026-000001``: six digits, more when a year issues a million."""
    return f"{series(year)}-{sequence:06d}"


@dataclass(frozen=True, slots=True)
class AccountTerms:
    """An account's commercial settings: payment terms, billing anchor, dunning."""

    account: str
    payment_terms_days: int = 14
    anchor_day: int = 1
    reminder_after_days: int = 1
    """Days past due before the first reminder."""
    suspend_after_days: int = 30
    """Days past due before the L2 services are told to suspend the account."""


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    """An invoice or credit note as stored. Amounts in base units."""

    number: str
    account: str
    kind: DocumentKind
    period_start_us: int
    period_end_us: int
    status: InvoiceStatus
    issued_us: int
    due_us: int
    catalog_version: str
    catalog_digest: str
    rate: str | None
    subtotal: int
    credits_applied: int
    prepaid_applied: int
    total_due: int
    paid: int
    document: dict[str, Any]
    credited: int = 0
    """What credit notes took off what it has due."""
    corrects: str | None = None
    """For a credit note: the invoice it corrects."""

    @property
    def outstanding(self) -> int:
        """What is still owed on it (nothing on a void invoice or a credit note)."""
        if self.status is InvoiceStatus.VOID or self.kind is DocumentKind.CREDIT_NOTE:
            return 0
        return max(self.total_due - self.paid - self.credited, 0)


class NoticeKind(StrEnum):
    REMINDER = "reminder"
    SUSPENSION = "suspension"


@dataclass(frozen=True, slots=True)
class Notice:
    """A dunning notice for an overdue invoice; ``seq`` is set by storage."""

    account: str
    invoice: str
    kind: NoticeKind
    days_overdue: int
    created_us: int
    seq: int = 0


def notices_due(
    terms: AccountTerms, invoice: IssuedInvoice, sent: set[NoticeKind], now_us: int
) -> list[NoticeKind]:
    """The notices an overdue invoice has earned and not yet had: a reminder after
    ``reminder_after_days`` past due, a suspension warning once it suspends the account."""
    if invoice.outstanding == 0 or invoice.due_us >= now_us:
        return []
    days = (now_us - invoice.due_us) // DAY_US
    due = []
    if days >= terms.reminder_after_days and NoticeKind.REMINDER not in sent:
        due.append(NoticeKind.REMINDER)
    if days >= terms.suspend_after_days and NoticeKind.SUSPENSION not in sent:
        due.append(NoticeKind.SUSPENSION)
    return due


class StandingStatus(StrEnum):
    GOOD = "good"
    OVERDUE = "overdue"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class Standing:
    """What the L2 services ask before serving an account."""

    account: str
    status: StandingStatus
    outstanding: int
    overdue: int
    days_overdue: int
    overdue_invoices: tuple[str, ...]
    suspend_after_days: int

    @property
    def suspend(self) -> bool:
        return self.status is StandingStatus.SUSPENDED


def standing(terms: AccountTerms, invoices: list[IssuedInvoice], now_us: int) -> Standing:
    """Overdue once an invoice is unpaid past its due date; suspended once the oldest overdue
    invoice is ``suspend_after_days`` past due."""
    owed = [i for i in invoices if i.outstanding > 0]
    late = [i for i in owed if i.due_us < now_us]
    days = max(((now_us - i.due_us) // DAY_US for i in late), default=0)
    status = StandingStatus.GOOD
    if late:
        status = (
            StandingStatus.SUSPENDED if days >= terms.suspend_after_days else StandingStatus.OVERDUE
        )
    return Standing(
        account=terms.account,
        status=status,
        outstanding=sum(i.outstanding for i in owed),
        overdue=sum(i.outstanding for i in late),
        days_overdue=days,
        overdue_invoices=tuple(i.number for i in sorted(late, key=lambda i: i.due_us)),
        suspend_after_days=terms.suspend_after_days,
    )
