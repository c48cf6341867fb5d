"""Billing: accounts' terms, the open period's draft, closing a period into numbered invoices with
their ledger transfers, payments, deposits, voids, credit notes and standing (SPEC §5–§7).

**Drafts are computed, invoices are stored.** The current period's draft is rated from the
usage rollups whenever it is asked for, so it is always up to date and nothing has to keep it so.
Closing a period (after its grace period) rates each account once more and stores the result,
immutable, with a gapless number, the catalog version and the rate it used; its ledger transfer
commits in the same transaction. Accounts are closed in chunks, one transaction each: a crash
loses at most the chunk in flight, and closing again skips every account already invoiced, so
closing twice changes nothing.

**Idempotency.** Grants, deposits, payments and downtime reports carry a caller's id or
reference; the same one again with the same body is a no-op, with another body an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

from synor_economics.domain.billing import (
    DAY_US,
    AccountTerms,
    DocumentKind,
    InvoiceStatus,
    IssuedInvoice,
    Notice,
    NoticeKind,
    Standing,
    invoice_number,
    notices_due,
    series,
    standing,
)
from synor_economics.domain.catalog import Catalog, MeterKind
from synor_economics.domain.errors import SynorError
from synor_economics.domain.invoice import Carried, Rated, Terms, rate, service_totals
from synor_economics.domain.ledger import Account, Command, Rejected, Reverse, Transfer
from synor_economics.domain.money import decimal_text, format_synor
from synor_economics.domain.period import Period
from synor_economics.domain.postings import (
    CLEARING,
    CREDIT_NOTES,
    breakage_transfer,
    customer_accounts,
    deposit_transfer,
    grant_transfer,
    invoice_transfer,
    protocol_accounts,
    settlement_transfer,
)
from synor_economics.domain.terms import Commitment, CreditGrant, Discount
from synor_economics.ports import (
    BillingTransaction,
    BillingUnitOfWork,
    Clock,
    PaymentRecord,
)
from synor_economics.services.billing_book import UsageBook, book_terms, raw_quantities
from synor_economics.services.billing_documents import (
    TOTALS,
    invoice_record,
    recorded_service_totals,
)
from synor_economics.services.ledger import open_accounts
from synor_economics.services.posting import apply_commands
from synor_economics.services.time import to_us

CHUNK = 500
"""Accounts per close transaction."""


class BillingError(SynorError, ValueError):
    """A billing request that cannot be done as asked (the message says why)."""


class InvoiceNotFoundError(BillingError):
    """No invoice has that number."""


@dataclass(frozen=True, slots=True)
class CloseReport:
    period: Period
    issued: tuple[str, ...]
    """Numbers issued by this run, in order."""
    already: int
    """Accounts that had an invoice for the period before this run."""
    broken: int
    """Grants whose expired rest was written off."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A chunk of a period close, rated and ready to store."""

    accounts: list[str]
    """Accounts to invoice, in order."""
    already: int
    """Accounts of the chunk that had an invoice for the period already."""
    rated: dict[str, Rated]
    records: dict[str, dict[str, Any]]
    settings: dict[str, AccountTerms]
    usd_rate: Fraction | None


@dataclass(frozen=True, slots=True)
class Draft:
    account: str
    period: Period
    as_of: datetime
    rated: Rated
    projected: bool = False


class MoneyIn(NamedTuple):
    """SYNOR received: for an invoice (``number``) or, without one, an account's prepaid."""

    reference: str
    amount: int
    account: str = ""
    number: str | None = None


class BillingService:
    def __init__(
        self,
        uow: BillingUnitOfWork,
        clock: Clock,
        catalog: Catalog,
        *,
        rate_source: Callable[[], Fraction | None] = lambda: None,
        lock_rate: Callable[[], Fraction | None] | None = None,
        grace: timedelta = timedelta(hours=1),
    ) -> None:
        """``rate_source`` gives the SYNOR/USD rate drafts and estimates show; ``lock_rate``
        (the same unless given) the one a period close locks on its invoices: the oracle's
        TWAP, which refuses (raises) when the price is older than its maximum age."""
        self.uow = uow
        self.clock = clock
        self.catalog = catalog
        self.rate_source = rate_source
        self.lock_rate = lock_rate or rate_source
        self.grace = grace

    def _now_us(self) -> int:
        return to_us(self.clock.now())

    # -- terms -------------------------------------------------------------------------------

    def set_account(self, terms: AccountTerms) -> AccountTerms:
        if not 1 <= terms.anchor_day <= 28 or terms.payment_terms_days < 0:
            raise BillingError("anchor day must be 1-28 and payment terms at least 0 days")
        with self.uow.write() as tx:
            tx.billing.save_account_terms(terms, self._now_us())
        return terms

    def account_terms(self, account: str) -> AccountTerms:
        with self.uow.read() as tx:
            return tx.billing.account_terms([account]).get(account, AccountTerms(account))

    def add_discount(self, account: str, discount: Discount) -> None:
        with self.uow.write() as tx:
            existing = {d.id: d for d in tx.billing.discounts([account]).get(account, [])}
            if discount.id in existing:
                if existing[discount.id] != discount:
                    raise BillingError(f"discount {discount.id} exists with other terms")
                return
            tx.billing.add_discount(account, discount)

    def add_commitment(self, account: str, commitment: Commitment) -> None:
        self.catalog.resource(commitment.resource)
        with self.uow.write() as tx:
            existing = {c.id: c for c in tx.billing.commitments([account]).get(account, [])}
            if commitment.id in existing:
                if existing[commitment.id] != commitment:
                    raise BillingError(f"commitment {commitment.id} exists with other terms")
                return
            tx.billing.add_commitment(account, commitment)

    def grant_credit(self, account: str, grant: CreditGrant) -> None:
        """Record a grant and move its amount into the customer's credit account."""
        if grant.amount <= 0:
            raise BillingError("a credit grant must be for more than 0")
        now_us = self._now_us()
        with self.uow.write() as tx:
            existing = {r.grant.id: r.grant for r in tx.billing.grants([account]).get(account, [])}
            if grant.id in existing:
                same = existing[grant.id]
                if (same.amount, same.priority, same.expires_at, same.scope) != (
                    grant.amount, grant.priority, grant.expires_at, grant.scope,
                ):  # fmt: skip
                    raise BillingError(f"grant {grant.id} exists with other terms")
                return
            self._open(tx, [account], now_us)
            tx.billing.add_grant(account, grant, now_us)
            _post(tx, [grant_transfer(account, grant.id, grant.amount)], now_us)

    def report_downtime(
        self, reference: str, service: str, period: Period, minutes: Decimal, account: str | None
    ) -> bool:
        """Downtime of a service in a period (for one account, or everyone); once per
        reference. True if recorded now, False if it was recorded before."""
        if service not in self.catalog.services():
            raise BillingError(f"unknown service {service!r}")
        if minutes < 0 or minutes * 60 > period.seconds:
            raise BillingError("downtime must be between 0 and the period's length")
        with self.uow.write() as tx:
            return tx.billing.add_downtime(
                reference,
                service=service,
                account=account,
                period_start_us=to_us(period.start),
                minutes=minutes,
                now_us=self._now_us(),
            )

    # -- money in ------------------------------------------------------------------------------

    def deposit(self, account: str, amount: int, reference: str) -> PaymentRecord:
        """Prepaid SYNOR received for an account, applied once per reference."""
        return self._receive(amount, reference, account=account)

    def pay(self, number: str, amount: int, reference: str) -> PaymentRecord:
        """A payment against an invoice: what it has due, the rest to prepaid (SPEC §7)."""
        return self._receive(amount, reference, number=number)

    def receive_all(self, items: Sequence[MoneyIn]) -> list[PaymentRecord | BillingError]:
        """Many payments and deposits in one write transaction (the payment watcher's batch),
        each applied once per reference; per item its record, or the reason it was refused
        (refused items write nothing). The batch's ledger accounts are opened and its
        transfers posted together. If the ledger refuses a posting, which aborts the whole
        transaction, the items are taken one by one instead so the others still go in."""
        now_us = self._now_us()
        try:
            with self.uow.write() as tx:
                results: list[PaymentRecord | BillingError] = []
                applied: dict[str, PaymentRecord] = {}
                transfers: list[Transfer] = []
                for item in items:
                    try:
                        checked = self._check_receipt(tx, item, applied)
                    except BillingError as error:
                        results.append(error)
                        continue
                    if isinstance(checked, PaymentRecord):
                        results.append(checked)  # a retry: applied once
                        continue
                    record, transfer = self._receipt(tx, item, checked, now_us)
                    applied[item.reference] = record
                    transfers.append(transfer)
                    results.append(record)
                if applied:
                    self._open(tx, {r.account for r in applied.values()}, now_us)
                    _post(tx, transfers, now_us)
                    for record in applied.values():
                        tx.billing.add_payment(record)
                return results
        except BillingError:
            if len(items) == 1:
                raise
        outcomes: list[PaymentRecord | BillingError] = []
        for item in items:
            try:
                outcomes.extend(self.receive_all([item]))
            except BillingError as error:
                outcomes.append(error)
        return outcomes

    def _receive(
        self, amount: int, reference: str, *, account: str = "", number: str | None = None
    ) -> PaymentRecord:
        """Money for an account (a deposit), or for an invoice (a payment: its account is the
        invoice's), in one write transaction."""
        (outcome,) = self.receive_all([MoneyIn(reference, amount, account, number)])
        if isinstance(outcome, BillingError):
            raise outcome
        return outcome

    @staticmethod
    def _check_receipt(
        tx: BillingTransaction, item: MoneyIn, applied: Mapping[str, PaymentRecord]
    ) -> IssuedInvoice | PaymentRecord | None:
        """Everything that can refuse a receipt, before anything is written: the invoice it
        pays (None for a deposit), or the record of the same receipt applied before (stored,
        or earlier in this batch: ``applied``)."""
        if item.amount <= 0:
            raise BillingError("an amount received must be more than 0")
        invoice = None if item.number is None else _require(tx, item.number)
        account = item.account if invoice is None else invoice.account
        seen = applied.get(item.reference) or tx.billing.payment(item.reference)
        if seen is not None:
            if (seen.account, seen.invoice, seen.amount) != (account, item.number, item.amount):
                raise BillingError(f"payment {item.reference} was recorded with other details")
            return seen
        return invoice

    @staticmethod
    def _receipt(
        tx: BillingTransaction, item: MoneyIn, invoice: IssuedInvoice | None, now_us: int
    ) -> tuple[PaymentRecord, Transfer]:
        """Apply a checked receipt to its invoice (what it has due; the rest is prepaid, SPEC
        §7); the payment's record and ledger transfer, for the caller to store and post."""
        account, number = item.account, item.number
        to_invoice = 0
        if invoice is not None:
            assert number is not None
            account = invoice.account
            to_invoice = min(item.amount, invoice.outstanding)
            paid = invoice.paid + to_invoice
            tx.billing.set_payment_state(
                number,
                paid=paid,
                credited=invoice.credited,
                status=_settled(invoice, paid, invoice.credited),
            )
        record = PaymentRecord(
            item.reference,
            account,
            number,
            item.amount,
            to_invoice,
            item.amount - to_invoice,
            now_us,
        )
        if number is None:
            return record, deposit_transfer(account, item.reference, item.amount)
        return record, settlement_transfer(
            f"payment:{item.reference}",
            code="invoice.payment",
            source=CLEARING,
            account=account,
            to_receivable=to_invoice,
            to_prepaid=item.amount - to_invoice,
        )

    # -- corrections ---------------------------------------------------------------------------

    def void(self, number: str, reason: str) -> IssuedInvoice:
        """Cancel an unpaid invoice: its ledger transfer is reversed (credits and prepaid it
        used come back) and closing its period again issues a new one. A paid or credited
        invoice is corrected by a credit note instead. Voiding twice is a no-op."""
        now_us = self._now_us()
        with self.uow.write() as tx:
            invoice = _require(tx, number)
            if invoice.kind is not DocumentKind.INVOICE:
                raise BillingError(f"{number} is a credit note; only invoices are voided")
            if invoice.status is InvoiceStatus.VOID:
                return invoice
            if invoice.paid or invoice.credited:
                raise BillingError(
                    f"{number} has payments or credit notes against it: issue a credit note"
                )
            if tx.ledger.transfers([f"invoice:{number}"]):
                _post(tx, [Reverse(f"void:{number}", f"invoice:{number}", memo=reason)], now_us)
            uses = [
                (invoice.account, c["grant"], -int(c["amount"]))
                for c in invoice.document["credits"]
            ]
            tx.billing.use_grants(uses)
            tx.billing.set_payment_state(number, paid=0, credited=0, status=InvoiceStatus.VOID)
            return replace(invoice, status=InvoiceStatus.VOID)

    def credit_note(self, number: str, amount: int, reason: str, reference: str) -> IssuedInvoice:
        """Take ``amount`` off an issued invoice with a numbered credit note: off what it has
        due first, the rest to the customer's prepaid balance. Once per reference."""
        if amount <= 0:
            raise BillingError("a credit note must be for more than 0")
        now_us = self._now_us()
        with self.uow.write() as tx:
            invoice = _require(tx, number)
            earlier = tx.billing.invoices(corrects=number, limit=10_000)
            for note in earlier:
                if note.document.get("reference") == reference:
                    if note.subtotal != amount:
                        raise BillingError(f"credit note {reference} was issued for another amount")
                    return note
            if invoice.kind is not DocumentKind.INVOICE or invoice.status is InvoiceStatus.VOID:
                raise BillingError(f"{number} is not an invoice that can be credited")
            room = invoice.subtotal - sum(note.subtotal for note in earlier)
            if amount > room:
                raise BillingError(
                    f"{number} can be credited at most {format_synor(room)} SYNOR more"
                )
            to_invoice = min(amount, invoice.outstanding)
            year = self.clock.now().year
            note_number = invoice_number(year, tx.billing.take_numbers(series(year), 1))
            note = replace(
                invoice,
                number=note_number,
                kind=DocumentKind.CREDIT_NOTE,
                status=InvoiceStatus.FINALIZED,
                issued_us=now_us,
                due_us=now_us,
                subtotal=amount,
                credits_applied=0,
                prepaid_applied=amount - to_invoice,
                total_due=0,
                paid=0,
                credited=0,
                corrects=number,
                document=_credit_note_record(invoice, amount, to_invoice, reason, reference),
            )
            _post(
                tx,
                [
                    settlement_transfer(
                        f"credit-note:{note_number}",
                        code="invoice.credit_note",
                        source=CREDIT_NOTES,
                        account=invoice.account,
                        to_receivable=to_invoice,
                        to_prepaid=amount - to_invoice,
                    )
                ],
                now_us,
            )
            tx.billing.add_invoices([note])
            credited = invoice.credited + to_invoice
            tx.billing.set_payment_state(
                number,
                paid=invoice.paid,
                credited=credited,
                status=_settled(invoice, invoice.paid, credited),
            )
            return note

    # -- drafts and previews -------------------------------------------------------------------

    def anchor_days(self) -> set[int]:
        """The days of the month some account's billing periods start on (always the 1st)."""
        with self.uow.read() as tx:
            return {1, *tx.billing.anchor_days().values()}

    def period_of(self, account: str, month: str | None = None) -> Period:
        """The account's billing period: the one starting in ``month`` (``2026-11``) on its
        anchor day, or the one running now."""
        anchor = self.account_terms(account).anchor_day
        if month is None:
            return Period.containing(self.clock.now(), anchor_day=anchor)
        return Period.parse_month(month, anchor_day=anchor)

    def draft(self, account: str, period: Period) -> Draft:
        """The account's invoice for a period as it stands now (usage so far)."""
        now = self.clock.now()
        with self.uow.read() as tx:
            rated = self._rate(tx, account, period, min(to_us(now), to_us(period.end)))
        return Draft(account, period, min(now, period.end), rated)

    def preview(self, account: str) -> Draft:
        """What the open period will cost if usage goes on at its rate so far: counters scaled
        to the whole period, gauges held at their current level to its end."""
        now = self.clock.now()
        period = self.period_of(account)
        elapsed = max(to_us(now) - to_us(period.start), 1)
        scale = Fraction(to_us(period.end) - to_us(period.start), elapsed)
        with self.uow.read() as tx:
            rated = self._rate(tx, account, period, to_us(period.end), counter_scale=scale)
        return Draft(account, period, now, rated, projected=True)

    # -- closing ---------------------------------------------------------------------------------

    def close_period(
        self, period: Period, progress: Callable[[int, int], None] = lambda done, total: None
    ) -> CloseReport:
        """Finalise every account's invoice for a period once its grace period is over.
        ``progress(done, total)`` is told after each chunk of accounts."""
        now = self.clock.now()
        if now < period.end + self.grace:
            raise BillingError(
                f"period {period.label} is open until {(period.end + self.grace).isoformat()} "
                f"(its end plus the {self.grace} grace period for late usage)"
            )
        start_us, end_us = to_us(period.start), to_us(period.end)
        anchor = period.start.day
        with self.uow.read() as tx:
            candidates = tx.billing.usage_accounts(start_us, end_us)
            # late usage of the two periods before is billed on this period's invoice
            before = period.earlier(2)
            candidates |= tx.billing.usage_accounts(to_us(before.start), start_us)
            committed = tx.billing.committed_accounts()
            commitments = tx.billing.commitments(committed)
            anchors = tx.billing.anchor_days()
        candidates |= {
            account
            for account, rows in commitments.items()
            if any(c.active_in(period) for c in rows)
        }
        # each account is billed on its own anchor day's periods (the 1st unless set)
        candidates = {a for a in candidates if anchors.get(a, 1) == anchor}
        issued: list[str] = []
        already = 0
        ordered = sorted(candidates)
        usd_rate = self.lock_rate()  # once: every invoice of the close locks the same rate
        chunks = [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]
        # A pipeline, as the ledger's: the next chunk is read and rated (a read transaction, on
        # another thread) while this one is stored (the write transaction, here).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synor-close") as ahead:
            upcoming = (
                ahead.submit(self._prepare_chunk, period, chunks[0], usd_rate) if chunks else None
            )
            for index in range(len(chunks)):
                assert upcoming is not None
                prepared = upcoming.result()
                if index + 1 < len(chunks):
                    upcoming = ahead.submit(
                        self._prepare_chunk, period, chunks[index + 1], usd_rate
                    )
                numbers, skipped = self._commit_chunk(period, prepared)
                issued.extend(numbers)
                already += skipped
                progress(min((index + 1) * CHUNK, len(ordered)), len(ordered))
        broken = self._write_off_expired(period)
        return CloseReport(period, tuple(issued), already, broken)

    def _prepare_chunk(
        self, period: Period, accounts: Sequence[str], usd_rate: Fraction | None
    ) -> _Prepared:
        """Rate a chunk of accounts from what is stored (a read transaction)."""
        end_us = to_us(period.end)
        with self.uow.read() as tx:
            done = tx.billing.invoiced_accounts(accounts, to_us(period.start))
            todo = [a for a in accounts if a not in done]
            settings = tx.billing.account_terms(todo)
            book = UsageBook.read(tx, todo, period)
            late = self._late_usage(tx, todo, period)
        raws = {a: raw_quantities(book, a, period, end_us) for a in todo}
        rated = {
            a: self._rate_from(
                book, a, period, end_us, usd_rate=usd_rate, carried=late.get(a, ()), raw=raws[a]
            )
            for a in todo
        }
        billed = [
            a for a in todo if rated[a].lines or any(x.amount for x in rated[a].adjustments)
        ]  # nothing to bill (late usage that nets out, say): no invoice
        return _Prepared(
            accounts=billed,
            already=len(done),
            rated=rated,
            records={a: invoice_record(a, rated[a], raws[a]) for a in billed},
            settings=settings,
            usd_rate=usd_rate,
        )

    def _commit_chunk(self, period: Period, prepared: _Prepared) -> tuple[list[str], int]:
        """Store a prepared chunk: numbers, invoices and their transfers, one transaction.
        Accounts another closer invoiced since the chunk was prepared are left to it."""
        now_us = self._now_us()
        with self.uow.write() as tx:
            raced = tx.billing.invoiced_accounts(prepared.accounts, to_us(period.start))
            todo = [a for a in prepared.accounts if a not in raced]
            already = prepared.already + len(raced)
            if not todo:
                return [], already
            opened = self._open(tx, todo, now_us, receivable_only=True)
            year = self.clock.now().year
            first = tx.billing.take_numbers(series(year), len(todo))
            invoices: list[IssuedInvoice] = []
            commands: list[Command] = []
            uses: list[tuple[str, str, int]] = []
            for offset, account in enumerate(todo):
                number = invoice_number(year, first + offset)
                invoice = prepared.rated[account]
                invoices.append(
                    self._issue(
                        number,
                        account=account,
                        period=period,
                        rated=invoice,
                        record=prepared.records[account],
                        terms=prepared.settings.get(account, AccountTerms(account)),
                        usd_rate=prepared.usd_rate,
                        now_us=now_us,
                    )
                )
                transfer = invoice_transfer(number, account, invoice)
                if transfer is not None:
                    commands.append(transfer)
                uses.extend((account, use.grant, use.amount) for use in invoice.credits)
            _post(tx, commands, now_us, loaded=opened)
            tx.billing.use_grants(uses)
            tx.billing.add_invoices(invoices)
            return [i.number for i in invoices], already

    def _issue(
        self,
        number: str,
        *,
        account: str,
        period: Period,
        rated: Rated,
        record: dict[str, Any],
        terms: AccountTerms,
        usd_rate: Fraction | None,
        now_us: int,
    ) -> IssuedInvoice:
        return IssuedInvoice(
            number=number,
            account=account,
            kind=DocumentKind.INVOICE,
            period_start_us=to_us(period.start),
            period_end_us=to_us(period.end),
            status=InvoiceStatus.PAID if rated.total_due == 0 else InvoiceStatus.FINALIZED,
            issued_us=now_us,
            due_us=now_us + terms.payment_terms_days * DAY_US,
            catalog_version=self.catalog.version,
            catalog_digest=self.catalog.digest,
            rate=None if usd_rate is None else decimal_text(usd_rate),
            subtotal=rated.subtotal,
            credits_applied=rated.credits_applied,
            prepaid_applied=rated.prepaid_applied,
            total_due=rated.total_due,
            paid=0,
            document=record,
        )

    def _late_usage(
        self, tx: BillingTransaction, accounts: Sequence[str], period: Period
    ) -> dict[str, tuple[Carried, ...]]:
        """Usage of the two periods before ``period`` that arrived after their invoices were
        finalised, per account and service, to carry onto this period's invoice (SPEC §7).

        Late events may be up to 35 days old, so they can only belong to those two periods.
        An invoice records the raw quantities it billed; where the rollups still agree, nothing
        arrived late and nothing is re-rated. Where they differ, the period is rated again with
        today's usage (and the account's terms for it, without credits or prepaid) and the
        difference from what that invoice and earlier carries billed is carried, per service.
        """
        carried: dict[str, list[Carried]] = defaultdict(list)
        earlier = [period.earlier(2), period.earlier(1)]
        issued = tx.billing.invoices_since(accounts, to_us(earlier[0].start))
        for prior in earlier:
            start_us = to_us(prior.start)
            mine = {i.account: i for i in issued if i.period_start_us == start_us}
            if not mine:
                continue
            book = UsageBook.read(tx, list(mine), prior)
            for account, invoice in mine.items():
                raw = raw_quantities(book, account, prior, to_us(prior.end))
                if {r: format(q, "f") for r, q in raw.items()} == invoice.document.get("raw"):
                    continue
                usd_rate = None if invoice.rate is None else Fraction(invoice.rate)
                again = rate(
                    self.catalog,
                    prior,
                    self._billable(raw, prior, Fraction(1)),
                    replace(self._terms(book, account, prior), grants=(), prepaid=0),
                    rate=usd_rate,
                )
                now = service_totals(again.lines, again.adjustments)
                billed = recorded_service_totals(invoice.document)
                for other in issued:
                    for item in other.document["adjustments"]:
                        if item["kind"] == "late_usage" and item["source"] == invoice.number:
                            billed[item["line"]] = billed.get(item["line"], 0) + int(item["amount"])
                for service in sorted(set(now) | set(billed)):
                    delta = now.get(service, 0) - billed.get(service, 0)
                    if delta:
                        carried[account].append(Carried(invoice.number, service, delta))
        return {account: tuple(items) for account, items in carried.items()}

    def _write_off_expired(self, period: Period) -> int:
        """Breakage: every grant expired by the period's end loses its unused rest."""
        now_us = self._now_us()
        with self.uow.write() as tx:
            expired = tx.billing.expiring(to_us(period.end))
            commands: list[Command] = []
            for record in expired:
                if record.grant.remaining > 0:
                    commands.append(
                        breakage_transfer(record.account, record.grant.id, record.grant.remaining)
                    )
                tx.billing.mark_broken(record.account, record.grant.id, now_us)
            _post(tx, commands, now_us)
        return len(expired)

    # -- rating from storage ---------------------------------------------------------------------

    def _rate(
        self,
        tx: BillingTransaction,
        account: str,
        period: Period,
        as_of_us: int,
        *,
        counter_scale: Fraction = Fraction(1),
    ) -> Rated:
        book = UsageBook.read(tx, [account], period)
        return self._rate_from(
            book,
            account,
            period,
            as_of_us,
            usd_rate=self.rate_source(),
            counter_scale=counter_scale,
        )

    def _rate_from(
        self,
        book: UsageBook,
        account: str,
        period: Period,
        as_of_us: int,
        *,
        usd_rate: Fraction | None,
        counter_scale: Fraction = Fraction(1),
        carried: tuple[Carried, ...] = (),
        raw: dict[str, Decimal] | None = None,
    ) -> Rated:
        """Rate an account from a book; ``raw`` if the caller has its raw quantities already."""
        if raw is None:
            raw = raw_quantities(book, account, period, as_of_us)
        quantities = self._billable(raw, period, counter_scale)
        terms = book_terms(book, account, period, self.catalog.services(), carried)
        return rate(self.catalog, period, quantities, terms, rate=usd_rate)

    def _billable(
        self, totals: dict[str, Decimal], period: Period, counter_scale: Fraction
    ) -> dict[str, Fraction]:
        """Raw quantities in price units (counters scaled, for a projection)."""
        quantities: dict[str, Fraction] = {}
        for resource_id, raw in totals.items():
            resource = self.catalog.resources.get(resource_id)
            if resource is None or raw == 0:
                continue
            billable = resource.billable_quantity(raw, period.seconds)
            if counter_scale != 1 and resource.meter is MeterKind.COUNTER:
                billable *= counter_scale
            quantities[resource_id] = billable
        return quantities

    def _terms(self, book: UsageBook, account: str, period: Period) -> Terms:
        return book_terms(book, account, period, self.catalog.services())

    def _open(
        self,
        tx: BillingTransaction,
        accounts: Iterable[str],
        now_us: int,
        *,
        receivable_only: bool = False,
    ) -> list[Account]:
        """Open the protocol's billing accounts and the customers' own. A close needs only the
        receivable: an invoice can use credits or prepaid only if a grant or deposit, which
        open the other two, came first."""
        specs = protocol_accounts(self.catalog.services())
        for account in accounts:
            owned = customer_accounts(account)
            specs.extend(owned[:1] if receivable_only else owned)
        return open_accounts(tx.ledger, specs, now_us)

    # -- reading -----------------------------------------------------------------------------

    def invoice(self, number: str) -> IssuedInvoice:
        with self.uow.read() as tx:
            return _require(tx, number)

    def invoices(
        self,
        *,
        account: str | None = None,
        period: Period | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[IssuedInvoice]:
        with self.uow.read() as tx:
            return tx.billing.invoices(
                account=account,
                period_start_us=None if period is None else to_us(period.start),
                limit=limit,
                before=before,
            )

    def send_notices(self) -> list[Notice]:
        """Record the dunning notices overdue invoices have earned (each kind once per
        invoice): what the scheduler runs, and notifiers deliver from."""
        now_us = self._now_us()
        with self.uow.write() as tx:
            overdue = tx.billing.unpaid_before(now_us)
            if not overdue:
                return []
            terms = tx.billing.account_terms({i.account for i in overdue})
            sent: dict[str, set[NoticeKind]] = defaultdict(set)
            for notice in tx.billing.notices(invoices_of=[i.number for i in overdue]):
                sent[notice.invoice].add(notice.kind)
            fresh = [
                Notice(i.account, i.number, kind, (now_us - i.due_us) // DAY_US, now_us)
                for i in overdue
                for kind in notices_due(
                    terms.get(i.account, AccountTerms(i.account)), i, sent[i.number], now_us
                )
            ]
            tx.billing.add_notices(fresh)
        return fresh

    def notices(self, account: str) -> list[Notice]:
        with self.uow.read() as tx:
            return tx.billing.notices(account=account)

    @property
    def usd_rate(self) -> Fraction | None:
        """The rate invoices are locked at now (None: no USD shown, USD prices refused)."""
        return self.rate_source()

    def standing(self, account: str) -> Standing:
        now_us = self._now_us()
        with self.uow.read() as tx:
            terms = tx.billing.account_terms([account]).get(account, AccountTerms(account))
            issued = tx.billing.invoices(account=account, limit=10_000)
        return standing(terms, issued, now_us)


def _require(tx: BillingTransaction, number: str) -> IssuedInvoice:
    found = tx.billing.invoice(number)
    if found is None:
        raise InvoiceNotFoundError(f"no invoice {number}")
    return found


def _credit_note_record(
    invoice: IssuedInvoice, amount: int, to_invoice: int, reason: str, reference: str
) -> dict[str, Any]:
    """A credit note's stored figures: one negative line against the invoice it corrects."""
    return {
        "account": invoice.account,
        "period": invoice.document["period"],
        "reason": reason,
        "reference": reference,
        "lines": [],
        "adjustments": [
            {
                "kind": "credit_note",
                "source": invoice.number,
                "line": None,
                "percent": None,
                "amount": str(-amount),
            },
        ],
        "credits": [],
        **dict.fromkeys(TOTALS, "0"),
        "subtotal": str(-amount),
        "prepaid_applied": str(-(amount - to_invoice)),
        "total_due": str(-to_invoice),
    }


def _settled(invoice: IssuedInvoice, paid: int, credited: int) -> InvoiceStatus:
    """Paid once payments and credit notes cover what it had due."""
    if invoice.status is InvoiceStatus.VOID:
        return invoice.status
    return InvoiceStatus.PAID if paid + credited >= invoice.total_due else InvoiceStatus.FINALIZED


def _post(
    tx: BillingTransaction,
    commands: Sequence[Command],
    now_us: int,
    *,
    loaded: Sequence[Account] = (),
) -> None:
    """Post transfers inside the transaction; any refusal aborts it (nothing half-billed)."""
    for outcome in apply_commands(tx.ledger, commands, now_us, loaded=loaded):
        if isinstance(outcome, Rejected):
            raise BillingError(f"ledger refused {outcome.id}: {outcome.error}")
