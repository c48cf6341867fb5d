"""Billing through the HTTP API and the CLI on the embedded default: usage in, a period closed,
invoices out as JSON, HTML, PDF and CSV, payments and deposits once per reference, standing."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.api.app import create_app
from synor_economics.bootstrap import build
from synor_economics.config import Settings
from synor_economics.services.system import System
from tests.e2e.conftest import Cli

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SYNOR = 10**18


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 20, tzinfo=UTC))


@pytest.fixture
def billed(data_dir: Path, clock: FixedClock) -> Iterator[System]:
    system = build(Settings(data_dir=data_dir, synor_usd="0.25"), clock=clock)
    try:
        yield system
    finally:
        system.close()


@pytest.fixture
def api(billed: System) -> Iterator[TestClient]:
    with TestClient(create_app(billed)) as test_client:
        yield test_client


def cpu(event_id: str, account: str, core_seconds: str) -> dict[str, str]:
    return {
        "id": event_id,
        "account": account,
        "resource": "compute.cpu",
        "quantity": core_seconds,
        "ts": "2026-11-10T00:00:00Z",
    }


def csv_totals(text: str) -> dict[str, Decimal]:
    """Check that an invoice's CSV adds up, as a spreadsheet would; return its totals."""
    rows = list(csv.DictReader(io.StringIO(text)))
    totals = {r["item"]: Decimal(r["amount_synor"]) for r in rows if r["kind"] == "total"}
    body = sum(Decimal(r["amount_synor"]) for r in rows if r["kind"] not in ("total", "credit"))
    credits = sum(Decimal(r["amount_synor"]) for r in rows if r["kind"] == "credit")
    assert body == totals["subtotal"]
    assert credits == totals["credits_applied"]
    due = totals["subtotal"] - totals["credits_applied"] - totals["prepaid_applied"]
    assert due == totals["total_due"]
    return totals


def test_a_month_billed_over_http(api: TestClient, clock: FixedClock) -> None:
    # acct_a: 200 core-hours = 4 SYNOR, 10% off; 0.6 of credit; 1 SYNOR prepaid → 2 due
    answer = api.post(
        "/v1/events", json=[cpu("e1", "acct_a", "720000"), cpu("e2", "acct_b", "3600")]
    )
    assert answer.status_code == 200, answer.text
    assert api.put("/v1/accounts/acct_a/terms", json={"payment_terms_days": 10}).status_code == 200
    discount = {"id": "d1", "kind": "percent", "percent": "10"}
    assert api.post("/v1/accounts/acct_a/discounts", json=discount).status_code == 200
    grant = {"id": "g1", "amount": "0.6", "scope": {"service": "compute"}}
    assert api.post("/v1/accounts/acct_a/credits", json=grant).status_code == 200
    deposit = {"amount": "1", "reference": "dep-1"}
    for _ in range(2):  # a retry is applied once
        assert api.post("/v1/accounts/acct_a/deposits", json=deposit).status_code == 200
    draft = api.get("/v1/accounts/acct_a/invoices/draft", params={"period": "2026-11"}).json()
    assert (draft["status"], draft["total_due"]) == ("draft", str(2 * SYNOR))
    preview = api.get("/v1/accounts/acct_a/invoices/preview").json()
    assert preview["status"] == "projected"
    # 19 of 30 days gone: the month projects to 4 × 30/19 = 6.315… core-hour SYNOR
    assert preview["lines"][0]["quantity"].startswith("315.789473684210526")

    early = api.post("/v1/billing/close", json={"period": "2026-11"})
    assert early.status_code == 422
    assert "grace" in early.json()["error"]["message"]
    clock.at = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    closed = api.post("/v1/billing/close", json={"period": "2026-11"}).json()
    assert closed["issued"] == ["SYN-2026-000001", "SYN-2026-000002"]
    again = api.post("/v1/billing/close", json={"period": "2026-11"}).json()
    assert (again["issued"], again["already_invoiced"]) == ([], 2)

    invoice = api.get("/v1/invoices/SYN-2026-000001").json()
    assert invoice["account"] == "acct_a"
    assert invoice["lines"][0]["amount"] == str(4 * SYNOR)
    assert invoice["discounts"] == str(-4 * SYNOR // 10)
    assert (invoice["credits_applied"], invoice["prepaid_applied"]) == (
        str(6 * SYNOR // 10),
        str(SYNOR),
    )
    assert invoice["total_due"] == str(2 * SYNOR)
    assert invoice["rate"] == "0.25"
    assert invoice["total_due_usd"] == "0.50"
    assert invoice["due_at"].startswith("2026-12-11")
    listed = api.get("/v1/invoices", params={"account": "acct_a"}).json()["invoices"]
    assert [i["number"] for i in listed] == ["SYN-2026-000001"]
    assert api.get("/v1/invoices/SYN-2026-999999").status_code == 404

    html = api.get("/v1/invoices/SYN-2026-000001/html")
    assert html.status_code == 200
    assert "SYN-2026-000001" in html.text
    assert "compute.cpu" in html.text
    pdf = api.get("/v1/invoices/SYN-2026-000001/pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    sheet = api.get("/v1/invoices/SYN-2026-000001/csv")
    assert sheet.headers["content-type"].startswith("text/csv")
    assert sheet.text.startswith("number,item,kind,quantity,unit,unit_price,amount_synor")
    assert "SYN-2026-000001,compute.cpu,usage,200,core-hour,0.02,4,1.00" in sheet.text
    totals = csv_totals(sheet.text)
    assert (totals["subtotal"], totals["total_due"]) == (Decimal("3.6"), Decimal(2))

    assert api.get("/v1/accounts/acct_a/standing").json()["status"] == "good"
    clock.advance(timedelta(days=11))
    standing = api.get("/v1/accounts/acct_a/standing").json()
    assert (standing["status"], standing["overdue_invoices"]) == ("overdue", ["SYN-2026-000001"])
    payment = {"amount": "2.5", "reference": "0x1:0xfeed:3"}
    paid = api.post("/v1/invoices/SYN-2026-000001/payments", json=payment).json()
    assert (paid["to_invoice"], paid["to_prepaid"]) == (str(2 * SYNOR), str(SYNOR // 2))
    assert api.get("/v1/invoices/SYN-2026-000001").json()["status"] == "paid"
    assert api.get("/v1/accounts/acct_a/standing").json()["status"] == "good"
    note_body = {"amount": "0.5", "reason": "outage", "reference": "cn-1"}
    note = api.post("/v1/invoices/SYN-2026-000001/credit-notes", json=note_body).json()
    assert (note["number"], note["kind"], note["corrects"]) == (
        "SYN-2026-000003",
        "credit_note",
        "SYN-2026-000001",
    )
    voided = api.post("/v1/invoices/SYN-2026-000002/void", json={"reason": "test account"})
    assert voided.json()["status"] == "void"
    refused = api.post("/v1/invoices/SYN-2026-000001/void", json={"reason": "paid already"})
    assert refused.status_code == 422
    assert api.get("/v1/ledger/check").status_code == 200


def test_bad_billing_requests_say_what_is_wrong(api: TestClient) -> None:
    bad_discount = {"id": "d", "kind": "percent", "percent": "150"}
    answer = api.post("/v1/accounts/a/discounts", json=bad_discount)
    assert answer.status_code == 422
    assert "percent" in answer.json()["error"]["message"]
    bad_grant = {"id": "g", "amount": 1.5}
    answer = api.post("/v1/accounts/a/credits", json=bad_grant)
    assert answer.status_code == 422
    assert "body.amount" in answer.json()["error"]["message"]
    answer = api.post("/v1/accounts/a/deposits", json={"amount": "-1", "reference": "r"})
    assert answer.status_code == 422
    answer = api.post("/v1/billing/close", json={"period": "November"})
    assert answer.status_code == 422


def test_the_cli_bills_a_month(cli: Cli) -> None:
    """The CLI on the embedded default: events from last month, closed with no grace."""
    now = datetime.now(UTC)
    last_month_end = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ts = (last_month_end - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    label = (last_month_end - timedelta(days=1)).strftime("%Y-%m")
    events = cli.cwd / "events.ndjson"
    events.write_text(
        f'{{"id":"e1","account":"acct_a","resource":"compute.cpu","quantity":"720000","ts":"{ts}"}}\n'
    )
    settings = {"SYNOR_GRACE_MINUTES": "0", "SYNOR_SYNOR_USD": "0.25"}
    cli.ok("usage", "ingest", str(events), **settings)
    cli.ok("account", "deposit", "acct_a", "--amount", "1", "--reference", "d1", **settings)
    closed = cli.json("billing", "close", "--period", label, **settings)
    assert closed["issued"] == 1
    number = closed["first"]
    shown = cli.json("invoice", "show", number, **settings)
    assert (shown["subtotal"], shown["prepaid_applied"]) == (str(4 * SYNOR), str(SYNOR))
    table = cli.ok("invoice", "list", **settings)
    assert number in table
    pdf = cli.cwd / "invoice.pdf"
    cli.ok("invoice", "pdf", number, "-o", str(pdf), **settings)
    assert pdf.read_bytes().startswith(b"%PDF")
    paid = cli.json("invoice", "pay", number, "--amount", "3", "--reference", "p1", **settings)
    assert paid["to_invoice"] == str(3 * SYNOR)
    assert cli.json("account", "standing", "acct_a", **settings)["status"] == "good"
    assert "ledger check OK" in cli.ok("ledger", "check", **settings)


def test_the_demo_bills_a_month_once(cli: Cli) -> None:
    first = cli.ok("demo", "--accounts", "8", "--period", "2026-09")
    assert "8 invoices" in first
    assert "ledger check: OK" in first
    again = cli.ok("demo", "--accounts", "8", "--period", "2026-09")
    assert "0 of" in again  # every event was counted the first time
    listed = cli.json("invoice", "list", "--period", "2026-09")["invoices"]
    assert len(listed) == 8
    assert {i["account"] for i in listed} == {f"demo_{n:03d}" for n in range(1, 9)}
    assert all(i["lines"] for i in listed)
    assert "ledger check OK" in cli.ok("ledger", "check")


def test_every_billing_command_end_to_end(cli: Cli) -> None:
    """The account, billing and invoice commands on the embedded default, with the real clock:
    last month's usage, closed with no grace period."""
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ts = (month_start - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    label = (month_start - timedelta(days=1)).strftime("%Y-%m")
    last_start = (month_start - timedelta(days=1)).replace(day=1).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = cli.cwd / "events.ndjson"
    events.write_text(
        f'{{"id":"e1","account":"acct_a","resource":"compute.cpu","quantity":"720000","ts":"{ts}"}}\n'
    )
    env = {"SYNOR_GRACE_MINUTES": "0"}
    cli.ok("usage", "ingest", str(events), **env)
    cli.ok("account", "set", "acct_a", "--payment-terms-days", "3", **env)
    cli.ok("account", "discount", "acct_a", "--id", "d1", "--percent", "25", **env)
    cli.ok("account", "discount", "acct_a", "--id", "d2", "--amount", "0.5", **env)
    cli.ok(
        "account", "commit", "acct_a", "--id", "r1", "--resource", "database.queries",
        "--quantity", "10", "--unit-price", "0.01", "--term-months", "1", "--start", last_start,
        **env,
    )  # fmt: skip
    cli.ok("account", "grant", "acct_a", "--id", "g1", "--amount", "0.25", **env)
    assert "recorded" in cli.ok(
        "billing", "downtime", "--service", "compute", "--minutes", "2000", "--reference",
        "inc-1", "--period", label, **env,
    )  # fmt: skip
    # 4 SYNOR of compute, 25% off = 3, SLA 25% (2000 min down: < 99%) = 0.75 → 2.25;
    # reserved 10 × 0.01 = 0.1, 25% off = 0.075; fixed 0.5 off → 1.825; grant 0.25 → 1.575 due
    first = cli.json("billing", "close", "--period", label, **env)["first"]
    invoice = cli.json("invoice", "show", first, **env)
    assert invoice["subtotal_synor"] == "1.825"
    assert invoice["total_due_synor"] == "1.575"
    sheet = csv_totals(cli.ok("invoice", "show", first, "--csv", **env))
    assert (sheet["subtotal"], sheet["total_due"]) == (Decimal("1.825"), Decimal("1.575"))
    cli.ok("invoice", "void", first, "--reason", "wrong downtime", **env)
    second = cli.json("billing", "close", "--period", label, **env)["first"]
    assert second != first
    note = cli.json(
        "invoice", "credit", second, "--amount", "0.5", "--reason", "goodwill",
        "--reference", "cn-1", **env,
    )  # fmt: skip
    assert (note["kind"], note["corrects"]) == ("credit_note", second)
    assert cli.json("invoice", "show", second, **env)["outstanding"] == str(1075 * SYNOR // 1000)
    standing = cli.json("account", "standing", "acct_a", **env)
    assert standing["outstanding"] == str(1075 * SYNOR // 1000)
    assert cli.json("account", "notices", "acct_a", **env) == {"notices": []}
    assert "ledger check OK" in cli.ok("ledger", "check", **env)
