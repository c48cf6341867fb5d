"""What rating an account from storage needs, read for many accounts at once: the period's
rollups, open gauges, terms, grants, downtime and prepaid balances (a period close reads a chunk
of accounts in a few queries instead of a few per account)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from synor_economics.domain.invoice import Carried, Terms
from synor_economics.domain.meters import EXACT, Level, open_segment
from synor_economics.domain.money import decimal_text
from synor_economics.domain.period import Period
from synor_economics.domain.postings import prepaid
from synor_economics.domain.terms import Commitment, Discount
from synor_economics.ports import BillingTransaction, GrantRecord
from synor_economics.services.time import to_us


@dataclass(frozen=True, slots=True)
class UsageBook:
    """What rating a chunk of accounts for a period needs, read in a few queries."""

    totals: dict[str, dict[str, Decimal]]
    gauges: dict[str, list[tuple[str, Level]]]
    discounts: dict[str, list[Discount]]
    commitments: dict[str, list[Commitment]]
    grants: dict[str, list[GrantRecord]]
    downtime: dict[tuple[str | None, str], Decimal]
    prepaid: dict[str, int]

    @staticmethod
    def read(tx: BillingTransaction, accounts: Sequence[str], period: Period) -> UsageBook:
        start_us, end_us = to_us(period.start), to_us(period.end)
        gauges: dict[str, list[tuple[str, Level]]] = defaultdict(list)
        for (account, resource_id, _), level in tx.usage.open_gauges_of(accounts).items():
            gauges[account].append((resource_id, level))
        balances = tx.ledger.accounts([prepaid(a) for a in accounts])
        return UsageBook(
            totals=tx.usage.period_totals_of(accounts, start_us, end_us),
            gauges=gauges,
            discounts=tx.billing.discounts(accounts),
            commitments=tx.billing.commitments(accounts),
            grants=tx.billing.grants(accounts),
            downtime=tx.billing.downtime(start_us),
            prepaid={a.spec.owner: a.balance.available(a.spec.normal) for a in balances.values()},
        )


def raw_quantities(
    book: UsageBook, account: str, period: Period, as_of_us: int
) -> dict[str, Decimal]:
    """Raw quantities from the hourly rollups, plus each gauge's open segment up to
    ``as_of_us`` (the period's end once it is over); zeros left out."""
    start_us = to_us(period.start)
    totals = dict(book.totals.get(account, {}))
    for resource_id, latest in book.gauges.get(account, []):
        extra = open_segment(latest, start_us, as_of_us)
        if extra:
            totals[resource_id] = EXACT.add(totals.get(resource_id, Decimal(0)), extra)
    return {r: q for r, q in totals.items() if q != 0}


def book_terms(
    book: UsageBook,
    account: str,
    period: Period,
    services: Sequence[str],
    carried: tuple[Carried, ...] = (),
) -> Terms:
    """The account's terms for the period; uptime per service from the downtime reports for
    everyone and for the account: ``100 × (1 − downtime / period length)``."""
    uptime: dict[str, Decimal] = {}
    for service in services:
        minutes = book.downtime.get((None, service), Decimal(0))
        minutes += book.downtime.get((account, service), Decimal(0))
        if minutes > 0:
            share = Fraction(minutes) * 60 / period.seconds
            uptime[service] = Decimal(decimal_text(max(1 - share, Fraction(0)) * 100, 6))
    return Terms(
        discounts=tuple(book.discounts.get(account, ())),
        commitments=tuple(book.commitments.get(account, ())),
        uptime=uptime,
        grants=tuple(r.grant for r in book.grants.get(account, ())),
        prepaid=book.prepaid.get(account, 0),
        carried=carried,
    )
