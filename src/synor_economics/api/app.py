"""The HTTP API. Every route is a thin adapter from HTTP to a service call and a shared JSON
document (``services/documents.py``), so the API and the CLI's ``--json`` always agree."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from synor_economics.domain.billing import AccountTerms
from synor_economics.domain.errors import LedgerError, SynorError
from synor_economics.domain.ledger import AccountKind
from synor_economics.domain.money import parse_synor
from synor_economics.domain.period import Period
from synor_economics.domain.usage import MAX_BATCH
from synor_economics.services import billing_documents, documents, usage_documents
from synor_economics.services.billing import BillingError, InvoiceNotFoundError
from synor_economics.services.billing_documents import estimate_document, simulation_document
from synor_economics.services.chain_documents import (
    parse_window,
    payment_document,
    price_document,
    round_document,
    twap_document,
)
from synor_economics.services.estimate import estimate, read_estimate_file
from synor_economics.services.invoice_render import invoice_csv as invoice_csv_text
from synor_economics.services.invoice_render import invoice_html as invoice_page
from synor_economics.services.invoice_render import invoice_pdf as invoice_pdf_bytes
from synor_economics.services.oracle import OracleStaleError
from synor_economics.services.replacement import ReplacementError
from synor_economics.services.simulation import read_simulation, run_simulation
from synor_economics.services.system import System
from synor_economics.services.terms_input import read_commitment, read_discount, read_grant
from synor_economics.services.usage import PeriodError
from synor_economics.services.usage_input import (
    BatchTooLargeError,
    InputError,
    decode_body,
    decode_json,
)

_NOT_FOUND = {"not_found", "unknown_account"}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _aware(moment: datetime | None) -> datetime | None:
    """Query times without a zone are taken as UTC, the zone of every instant here."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


AsOf = Annotated[
    datetime | None,
    Query(description="RFC 3339 time: posted balances as of then (default: now, with pending)"),
]


def create_app(system: System) -> FastAPI:
    """Build the API around an assembled system."""
    app = FastAPI(
        title="Synor economics",
        version=system.version,
        description="Metering, billing, ledger and fee distribution for the Synor network. "
        "Amounts are strings of integer base units (1 SYNOR = 10^18), "
        "with SYNOR display strings beside them.",
    )

    @app.exception_handler(LedgerError)
    async def _ledger_error(_request: Request, error: LedgerError) -> JSONResponse:
        return _error(404 if error.code in _NOT_FOUND else 409, error.code, error.message)

    @app.exception_handler(SynorError)
    async def _domain_error(_request: Request, error: SynorError) -> JSONResponse:
        return _error(422, "invalid", str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p not in ('query', 'path'))}: {e['msg']}"
            for e in error.errors()
        )
        return _error(422, "invalid", problems)

    @app.get("/v1/health", tags=["system"])
    def health() -> JSONResponse:
        """Liveness and readiness: 200 when the database answers with a current schema, 503
        when it answers but is not ready (a schema upgrade is due)."""
        report = dict(system.health())
        return JSONResponse(status_code=200 if report["status"] == "ok" else 503, content=report)

    @app.get("/v1/catalog", tags=["catalog"])
    def catalog(at: AsOf = None) -> dict[str, Any]:
        """The price book, each resource with the price row in effect at ``at`` (default now)."""
        when = _aware(at) or datetime.now(UTC)
        return documents.catalog_document(
            system.catalog.current(), system.catalog.rows_at(when), when
        )

    @app.get("/v1/ledger/accounts", tags=["ledger"])
    def accounts(as_of: AsOf = None, kind: AccountKind | None = None) -> dict[str, Any]:
        """Every ledger account with its balance, optionally of one kind."""
        when = _aware(as_of)
        return documents.balances_document(system.ledger.balances(as_of=when, kind=kind), when)

    @app.get("/v1/ledger/accounts/{account_id}", tags=["ledger"])
    def account(account_id: str, as_of: AsOf = None) -> dict[str, Any]:
        """One account and its balance."""
        return documents.account_document(system.ledger.account(account_id, as_of=_aware(as_of)))

    @app.get("/v1/ledger/accounts/{account_id}/entries", tags=["ledger"])
    def statement(
        account_id: str,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[
            str | None,
            Query(
                pattern=r"^[1-9][0-9]*:[0-9]+$", description="`next_before` of the previous page"
            ),
        ] = None,
    ) -> dict[str, Any]:
        """An account's entries, newest first; the next page is ``?before=`` the ``next_before``
        cursor of this one (``null`` on the last page)."""
        cursor = documents.parse_cursor(before) if before else None
        lines = system.ledger.statement(account_id, limit=limit, before=cursor)
        return documents.statement_page(lines, limit)

    @app.get("/v1/ledger/transfers/{transfer_id:path}", tags=["ledger"])
    def transfer(transfer_id: str) -> dict[str, Any]:
        """One transfer with its entries."""
        return documents.transfer_document(system.ledger.transfer(transfer_id))

    @app.get("/v1/ledger/check", tags=["ledger"])
    def check() -> JSONResponse:
        """Verify every ledger invariant over the stored ledger (200 when sound, 500 when not)."""
        report = system.ledger.check()
        return JSONResponse(
            status_code=200 if report.ok else 500, content=documents.audit_document(report)
        )

    _usage_routes(app, system)
    _billing_routes(app, system)
    _invoice_routes(app, system)
    _chain_routes(app, system)
    _account_routes(app, system)
    return app


class Money(BaseModel):
    """SYNOR received: a decimal string ("12.5"), and the reference it is applied once under."""

    amount: str = Field(description='SYNOR, a decimal string like "12.5"')
    reference: str = Field(min_length=1, max_length=200)

    def units(self) -> int:
        units = parse_synor(self.amount, what="amount")
        if units <= 0:
            raise BillingError("amount must be more than 0")
        return units


class VoidBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class CreditNoteBody(Money):
    reason: str = Field(min_length=1, max_length=2000)


class AccountBody(BaseModel):
    payment_terms_days: int = Field(default=14, ge=0, le=365)
    anchor_day: int = Field(default=1, ge=1, le=28)
    reminder_after_days: int = Field(default=1, ge=0)
    suspend_after_days: int = Field(default=30, ge=1)


class CloseBody(BaseModel):
    period: str = Field(description="Billing month, YYYY-MM", examples=["2026-11"])
    anchor_day: int = Field(
        default=1, ge=1, le=28, description="Close the periods of accounts billed from this day"
    )


class DowntimeBody(BaseModel):
    reference: str = Field(min_length=1, max_length=200)
    service: str
    period: str = Field(description="Billing month, YYYY-MM")
    minutes: Decimal = Field(ge=0)
    account: str | None = Field(default=None, description="Only this account (default: all)")


_TERMS_BODY = {
    "requestBody": {
        "required": True,
        "description": "As in a simulation file (SPEC §10): a discount "
        '{"id", "kind": "percent"|"fixed", "percent" | "amount", "scope", "priority", "start", '
        '"end"}, a credit grant {"id", "amount", "priority", "expires_at", "scope"} or a '
        'commitment {"id", "resource", "quantity", "unit_price", "term_months", "start"}.',
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _invoice_routes(app: FastAPI, system: System) -> None:
    """Issued invoices, drafts, previews, payments, closing periods."""
    billing = system.billing

    @app.exception_handler(InvoiceNotFoundError)
    async def _no_invoice(_request: Request, error: InvoiceNotFoundError) -> JSONResponse:
        return _error(404, "not_found", str(error))

    @app.get("/v1/invoices", tags=["billing"])
    def list_invoices(
        account: str | None = None,
        period: Annotated[str | None, Query(description="YYYY-MM")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[str | None, Query(description="Only numbers before this one")] = None,
    ) -> dict[str, Any]:
        """Issued invoices and credit notes, newest first."""
        found = billing.invoices(
            account=account,
            period=None if period is None else Period.parse_month(period),
            limit=limit,
            before=before,
        )
        return {
            "invoices": [billing_documents.document_of(i) for i in found],
            "next_before": found[-1].number if len(found) == limit else None,
        }

    @app.get("/v1/invoices/{number}", tags=["billing"])
    def invoice(number: str) -> dict[str, Any]:
        return billing_documents.document_of(billing.invoice(number))

    @app.get("/v1/invoices/{number}/pdf", tags=["billing"], response_class=Response)
    def invoice_pdf(number: str) -> Response:
        content = invoice_pdf_bytes(billing_documents.document_of(billing.invoice(number)))
        return Response(content, media_type="application/pdf")

    @app.get("/v1/invoices/{number}/csv", tags=["billing"], response_class=PlainTextResponse)
    def invoice_csv(number: str) -> PlainTextResponse:
        """The invoice as CSV: lines, adjustments, credits used and totals, one row each."""
        content = invoice_csv_text(billing_documents.document_of(billing.invoice(number)))
        return PlainTextResponse(content, media_type="text/csv")

    @app.get("/v1/invoices/{number}/html", tags=["billing"], response_class=HTMLResponse)
    def invoice_html(number: str) -> HTMLResponse:
        return HTMLResponse(invoice_page(billing_documents.document_of(billing.invoice(number))))

    @app.post("/v1/invoices/{number}/payments", tags=["billing"])
    def pay(number: str, body: Money) -> dict[str, Any]:
        """Record a payment: what the invoice has due, the rest to prepaid; once per reference."""
        return billing_documents.payment_document(billing.pay(number, body.units(), body.reference))

    @app.post("/v1/invoices/{number}/void", tags=["billing"])
    def void(number: str, body: VoidBody) -> dict[str, Any]:
        """Cancel an unpaid invoice; its ledger transfer is reversed."""
        return billing_documents.document_of(billing.void(number, body.reason))

    @app.post("/v1/invoices/{number}/credit-notes", tags=["billing"])
    def credit_note(number: str, body: CreditNoteBody) -> dict[str, Any]:
        """A numbered credit note: off what the invoice has due, the rest to prepaid."""
        note = billing.credit_note(number, body.units(), body.reason, body.reference)
        return billing_documents.document_of(note)

    @app.get("/v1/accounts/{account}/invoices/draft", tags=["billing"])
    def draft(
        account: str, period: Annotated[str | None, Query(description="YYYY-MM")] = None
    ) -> dict[str, Any]:
        """The account's invoice for a period as it stands now (default: this month)."""
        found = billing.draft(account, billing.period_of(account, period))
        return billing_documents.draft_document(found, billing.usd_rate)

    @app.get("/v1/accounts/{account}/invoices/preview", tags=["billing"])
    def preview(account: str) -> dict[str, Any]:
        """The open period's cost if usage continues at its current rate."""
        return billing_documents.draft_document(billing.preview(account), billing.usd_rate)

    @app.post("/v1/billing/close", tags=["billing"])
    def close(body: CloseBody) -> dict[str, Any]:
        """Finalise a period's invoices (after its grace period); safe to repeat."""
        report = billing.close_period(Period.parse_month(body.period, anchor_day=body.anchor_day))
        return {
            "period": body.period,
            "issued": list(report.issued),
            "already_invoiced": report.already,
            "grants_written_off": report.broken,
        }

    @app.post("/v1/billing/downtime", tags=["billing"])
    def downtime(body: DowntimeBody) -> dict[str, Any]:
        """Report a service's downtime in a period, for SLA credits; once per reference."""
        recorded = billing.report_downtime(
            body.reference, body.service, Period.parse_month(body.period), body.minutes,
            body.account,
        )  # fmt: skip
        return {"reference": body.reference, "recorded": recorded}


def _account_routes(app: FastAPI, system: System) -> None:
    """An account's billing terms, money in, and standing."""
    billing = system.billing

    @app.get("/v1/accounts/{account}/standing", tags=["billing"])
    def standing(account: str) -> dict[str, Any]:
        """good, overdue or suspended: what the L2 services ask before serving an account."""
        return billing_documents.standing_document(billing.standing(account))

    @app.get("/v1/accounts/{account}/notices", tags=["billing"])
    def notices(account: str) -> dict[str, Any]:
        """Dunning notices (reminders, suspension warnings) for the account's overdue invoices."""
        return {"notices": [billing_documents.notice_document(n) for n in billing.notices(account)]}

    @app.put("/v1/accounts/{account}/terms", tags=["billing"])
    def set_terms(account: str, body: AccountBody) -> dict[str, Any]:
        terms = billing.set_account(AccountTerms(account, **body.model_dump()))
        return {"account": account, **body.model_dump(), "anchor_day": terms.anchor_day}

    @app.post("/v1/accounts/{account}/deposits", tags=["billing"])
    def deposit(account: str, body: Money) -> dict[str, Any]:
        """Prepaid SYNOR received (the chain watcher posts on-chain deposits the same way)."""
        return billing_documents.payment_document(
            billing.deposit(account, body.units(), body.reference)
        )

    @app.post("/v1/accounts/{account}/credits", tags=["billing"], openapi_extra=_TERMS_BODY)
    async def grant(account: str, request: Request) -> dict[str, Any]:
        found = read_grant(decode_json(await request.body()), system.catalog.current())
        await run_in_threadpool(billing.grant_credit, account, found)
        return {"account": account, "grant": found.id, "amount": str(found.amount)}

    @app.post("/v1/accounts/{account}/discounts", tags=["billing"], openapi_extra=_TERMS_BODY)
    async def discount(account: str, request: Request) -> dict[str, Any]:
        found = read_discount(decode_json(await request.body()), system.catalog.current())
        await run_in_threadpool(billing.add_discount, account, found)
        return {"account": account, "discount": found.id}

    @app.post("/v1/accounts/{account}/commitments", tags=["billing"], openapi_extra=_TERMS_BODY)
    async def commitment(account: str, request: Request) -> dict[str, Any]:
        found = read_commitment(decode_json(await request.body()), system.catalog.current())
        await run_in_threadpool(billing.add_commitment, account, found)
        return {"account": account, "commitment": found.id}


_ESTIMATE_BODY = {
    "requestBody": {
        "required": True,
        "description": "Resource id → quantity in the price unit, as a decimal string; optional "
        '`period` ({"start", "end"}, default: this calendar month) and `oracle` '
        '({"synor_usd"}) (SPEC §11). Example: {"compute.cpu": "720", "storage.storage": "500"}',
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_SIMULATION_BODY = {
    "requestBody": {
        "required": True,
        "description": "A billing simulation (SPEC §10) as JSON: period, oracle, catalog "
        "overrides, accounts with their terms, events.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _billing_routes(app: FastAPI, system: System) -> None:
    """Rating without storage: cost estimates and simulations, the engine bills use."""

    async def _document(request: Request) -> Any:
        """The JSON body; a malformed one is a 400 that says where (``InputError``)."""
        return decode_json(await request.body())

    @app.post("/v1/estimates", tags=["billing"], openapi_extra=_ESTIMATE_BODY)
    async def create_estimate(request: Request) -> dict[str, Any]:
        """What a period's usage costs, on demand and reserved for 1, 3 and 12 months."""
        catalog = system.catalog.current()
        quantities, period, usd_rate = read_estimate_file(await _document(request), catalog)
        return estimate_document(estimate(catalog, quantities, period, usd_rate))

    @app.post("/v1/simulations", tags=["billing"], openapi_extra=_SIMULATION_BODY)
    async def simulate(request: Request) -> dict[str, Any]:
        """Rate a billing simulation: the invoices its accounts would get. Nothing is stored."""
        simulation = read_simulation(await _document(request), system.catalog.current())
        return simulation_document(run_simulation(simulation))


_NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
_JSON = "application/json"


_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "description": "One usage event (SPEC §2), a JSON array of them, or NDJSON "
        f"(Content-Type: application/x-ndjson); at most {MAX_BATCH} events.",
        "content": {
            "application/json": {"schema": {"type": ["object", "array"]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


class ReplacementBody(BaseModel):
    """A replacement backfill: the window (whole hours, UTC) and the events that replace it."""

    start: datetime = Field(alias="from", description="Window start, a whole hour")
    end: datetime = Field(alias="to", description="Window end, a whole hour")
    note: str = Field(default="", max_length=2000, description="Why: kept with it")
    events: list[dict[str, Any]] = Field(max_length=MAX_BATCH)


def _utc(moment: datetime) -> datetime:
    aware = _aware(moment)
    assert aware is not None
    return aware


INGEST_THREADS = 32
"""Ingest requests handled at once, each on a worker thread that waits for its group commit.
Their own limit, so that requests waiting on a slow commit never hold the threads the API's
other routes run on (anyio's default limit, 40); more wait for a thread, off the event loop."""


def _usage_routes(app: FastAPI, system: System) -> None:
    """Metering: ingest events, period usage, dead letters."""
    limiters: list[anyio.CapacityLimiter] = []

    def ingest_threads() -> anyio.CapacityLimiter:
        """The ingest requests' limiter, made in the event loop that uses it."""
        if not limiters:
            limiters.append(anyio.CapacityLimiter(INGEST_THREADS))
        return limiters[0]

    @app.exception_handler(BatchTooLargeError)
    async def _too_many(_request: Request, error: BatchTooLargeError) -> JSONResponse:
        return _error(413, "too_many_events", str(error))

    @app.exception_handler(InputError)
    async def _malformed(_request: Request, error: InputError) -> JSONResponse:
        return _error(400, "malformed", str(error))

    @app.post("/v1/events", tags=["usage"], openapi_extra=_EVENTS_BODY)
    async def ingest(request: Request) -> Response:
        """Ingest usage events. Each is answered by its index: accepted, duplicate (same id and
        body as before: counted once), conflict (same id, different body: the first copy
        stands) or rejected (with the field and reason). Good events are kept even when others
        in the batch are bad."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body, ndjson = await request.body(), kind in _NDJSON_TYPES

        # Off the event loop, which only moves bytes, in one worker thread: decoding and
        # validating; storing with the batches of other requests waiting at the same moment
        # (group commit: one transaction for them all), waited for there; the answer written.
        # One hop instead of three (screen, await the commit, answer): 4 clients posting
        # batches of 1,000 got some 8% more through (docs/decisions.md).
        def handle() -> bytes:
            screened = system.usage.screen_batch(decode_body(body, ndjson=ndjson), "http")
            # encoded by msgspec, not FastAPI's generic encoder: the answer lists every event
            return usage_documents.encoded_ingest_document(system.usage.submit(screened).result())

        answer = await anyio.to_thread.run_sync(handle, limiter=ingest_threads())
        return Response(answer, media_type=_JSON)

    @app.get("/v1/accounts/{account}/usage", tags=["usage"])
    def usage(
        account: str,
        period: Annotated[
            str | None, Query(description="Billing month, YYYY-MM (default: this month)")
        ] = None,
    ) -> dict[str, Any]:
        """An account's usage in a billing period so far, per resource: the raw quantity
        (exact) and the billable quantity in price units."""
        month = period or datetime.now(UTC).strftime("%Y-%m")
        try:
            found = system.usage.period_usage(account, month)
        except PeriodError as error:
            raise RequestValidationError(
                [{"loc": ("query", "period"), "msg": str(error), "type": "value_error"}]
            ) from None
        return usage_documents.usage_document(found)

    @app.exception_handler(ReplacementError)
    async def _replacement(_request: Request, error: ReplacementError) -> JSONResponse:
        status = {"not_found": 404, "invalid_window": 422}.get(error.code, 409)
        return _error(status, error.code, str(error))

    @app.post("/v1/accounts/{account}/usage/replacements", tags=["usage"])
    def replace(account: str, body: ReplacementBody) -> dict[str, Any]:
        """Replace the account's events in ``[from, to)`` (whole hours) with ``events``, in one
        transaction; the replaced events are kept and come back if the replacement is
        reverted. Each event is answered by index, as for ``POST /v1/events``."""
        report = system.replacements.replace(
            account, _utc(body.start), _utc(body.end), list(body.events), note=body.note
        )
        return {
            **usage_documents.replacement_document(report.replacement),
            **usage_documents.ingest_document(report.outcomes),
        }

    @app.post("/v1/usage/replacements/{replacement}/revert", tags=["usage"])
    def revert(replacement: int) -> dict[str, Any]:
        """Undo a replacement: its events leave the count, the ones it replaced come back."""
        return usage_documents.replacement_document(system.replacements.revert(replacement))

    @app.get("/v1/usage/replacements", tags=["usage"])
    def replacements(account: str | None = None) -> dict[str, Any]:
        """Replacements, newest first (of one account, if given)."""
        found = system.replacements.replacements(account)
        return {"replacements": [usage_documents.replacement_document(r) for r in found]}

    @app.get("/v1/usage/dead-letters", tags=["usage"])
    def dead_letters(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[
            int | None, Query(ge=1, description="`next_before` of the previous page")
        ] = None,
    ) -> dict[str, Any]:
        """Rejected and conflicting events, newest first, with their reasons and bodies."""
        letters = system.usage.dead_letters(limit=limit, before=before)
        return usage_documents.dead_letters_page(letters, limit)


Window = Annotated[
    str, Query(description="A duration: seconds, or 90s, 30m, 24h, 7d", examples=["30m"])
]


def _chain_routes(app: FastAPI, system: System) -> None:
    """The SYNOR/USD oracle and the payments seen on chain."""

    @app.exception_handler(OracleStaleError)
    async def _no_price(_request: Request, error: OracleStaleError) -> JSONResponse:
        return _error(503, "no_price", str(error))

    @app.get("/v1/oracle/price", tags=["oracle"])
    def oracle_price() -> dict[str, Any]:
        """The last good SYNOR/USD price: its confidence interval, its age, and whether it is
        stale (no quorum in the latest round, or older than the maximum age)."""
        return price_document(system.oracle.price())

    @app.get("/v1/oracle/twap", tags=["oracle"])
    def oracle_twap(window: Window = "30m") -> dict[str, Any]:
        """Arithmetic and geometric time-weighted averages of the published price."""
        return twap_document(system.oracle.twap(parse_window(window)))

    @app.get("/v1/oracle/history", tags=["oracle"])
    def oracle_history(window: Window = "24h") -> dict[str, Any]:
        """The oracle's rounds over a window, oldest first, with each source's quote."""
        rounds = system.oracle.history(parse_window(window))
        return {"rounds": [round_document(r) for r in rounds]}

    @app.post("/rpc", tags=["chain"], response_class=Response)
    async def chain_rpc(request: Request) -> Response:
        """JSON-RPC to the in-process chain that this server holds (the embedded default): point
        a wallet, a script or another `synor` process (`SYNOR_CHAIN_RPC`) here. Refused when the
        product runs against a node: ask the node."""
        answer = await run_in_threadpool(system.chain_rpc, await request.body())
        return Response(answer, media_type="application/json")

    @app.get("/v1/payments", tags=["payments"])
    def chain_payments(
        status: Annotated[
            str | None, Query(pattern="^(pending|credited|unmatched|orphaned)$")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        """Payments seen on chain, newest first, with their status."""
        rows = system.payments.listing(limit=limit, status=status)
        return {"payments": [payment_document(r) for r in rows]}
