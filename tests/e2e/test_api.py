"""End-to-end tests of the HTTP API: in-process over a real SQLite database built by the
composition root, and once as a real server started with ``synor serve``."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import APIRoute

from synor_economics import __version__
from synor_economics.api.app import create_app
from synor_economics.bootstrap import build
from synor_economics.config import Settings
from synor_economics.domain.ledger import (
    AccountKind,
    AccountSpec,
    Entry,
    Side,
    Transfer,
    TransferRecord,
)
from synor_economics.services.system import System
from synor_economics.services.time import from_us
from tests.e2e.conftest import COMMAND, rfc3339

with warnings.catch_warnings():  # starlette nags about httpx vs httpx2 at import time
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SYNOR = 10**18
RESOURCES = {
    "storage.storage",
    "storage.retrieval",
    "storage.deal",
    "hosting.bandwidth",
    "hosting.custom_domain",
    "hosting.ssl_certificate",
    "database.storage",
    "database.queries",
    "database.vector_search",
    "compute.cpu",
    "compute.gpu.rtx4090",
    "compute.memory",
    "compute.serverless",
    "network.egress",
}
ROUTES = {
    "/v1/health",
    "/v1/catalog",
    "/v1/ledger/accounts",
    "/v1/ledger/accounts/{account_id}",
    "/v1/ledger/accounts/{account_id}/entries",
    "/v1/ledger/transfers/{transfer_id}",
    "/v1/ledger/check",
    "/v1/events",
    "/v1/accounts/{account}/usage",
    "/v1/usage/dead-letters",
    "/v1/accounts/{account}/usage/replacements",
    "/v1/usage/replacements/{replacement}/revert",
    "/v1/usage/replacements",
    "/v1/estimates",
    "/v1/simulations",
    "/v1/invoices",
    "/v1/invoices/{number}",
    "/v1/invoices/{number}/pdf",
    "/v1/invoices/{number}/html",
    "/v1/invoices/{number}/csv",
    "/v1/invoices/{number}/payments",
    "/v1/invoices/{number}/void",
    "/v1/invoices/{number}/credit-notes",
    "/v1/accounts/{account}/invoices/draft",
    "/v1/accounts/{account}/invoices/preview",
    "/v1/billing/close",
    "/v1/billing/downtime",
    "/v1/accounts/{account}/standing",
    "/v1/accounts/{account}/notices",
    "/v1/accounts/{account}/terms",
    "/v1/accounts/{account}/deposits",
    "/v1/accounts/{account}/credits",
    "/v1/accounts/{account}/discounts",
    "/v1/accounts/{account}/commitments",
    "/v1/oracle/price",
    "/v1/oracle/twap",
    "/v1/oracle/history",
    "/v1/payments",
    "/rpc",
}
COUNT_KEYS = {
    "seq",
    "leg",
    "transfers",
    "entries",
    "accounts",
    "violation_count",
}
"""The only keys whose values may be JSON numbers: counts and sequence numbers, never money."""


@pytest.fixture
def ledger(system: System) -> dict[str, TransferRecord]:
    """Five accounts and four transfers (one with three legs); the records by id."""
    system.ledger.open_accounts(
        [
            AccountSpec.of("acct_1:prepaid", AccountKind.CUSTOMER_PREPAID, owner="acct_1"),
            AccountSpec.of("acct_2:prepaid", AccountKind.CUSTOMER_PREPAID, owner="acct_2"),
            AccountSpec.of("treasury", AccountKind.TREASURY),
            AccountSpec.of("revenue", AccountKind.REVENUE),
            AccountSpec.of("node_7:payable", AccountKind.OPERATOR_PAYABLE, owner="node_7"),
        ]
    )
    commands = [
        Transfer.between(
            "dep/acct_1:1", debit="treasury", credit="acct_1:prepaid", amount=3 * SYNOR // 2
        ),
        Transfer.between(
            "dep/acct_2:1", debit="treasury", credit="acct_2:prepaid", amount=2 * SYNOR
        ),
        Transfer(
            "inv/2026-11/acct_1",
            entries=(
                Entry("acct_1:prepaid", Side.DEBIT, SYNOR),
                Entry("revenue", Side.CREDIT, 7 * SYNOR // 10),
                Entry("node_7:payable", Side.CREDIT, 3 * SYNOR // 10),
            ),
            code="invoice.settle",
            memo="November usage",
        ),
        Transfer.between(
            "dep/acct_1:2", debit="treasury", credit="acct_1:prepaid", amount=SYNOR // 4
        ),
    ]
    return {command.id: system.ledger.post(command) for command in commands}


def ts_of(record: TransferRecord) -> datetime:
    return from_us(record.ts_us)


def balances(document: dict[str, Any]) -> dict[str, str]:
    return {a["id"]: a["balance"] for a in document["accounts"]}


def numbers(document: Any, key: str = "$") -> Iterator[tuple[str, int | float]]:
    """Every JSON number in a document, with the key it sits under."""
    if isinstance(document, dict):
        for name, value in document.items():
            yield from numbers(value, name)
    elif isinstance(document, list):
        for item in document:
            yield from numbers(item, key)
    elif isinstance(document, int | float) and not isinstance(document, bool):
        yield key, document


def tamper(db_file: Path) -> None:
    with sqlite3.connect(db_file) as conn:
        conn.executescript(
            "DROP TRIGGER ledger_entries_no_update;"
            "UPDATE ledger_entries SET amount='999' WHERE seq=1 AND leg=0;"
        )
    conn.close()


# --- system and catalog -----------------------------------------------------------------------


def test_health(client: TestClient, system: System) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["version"] == __version__
    assert health["database"]["backend"] == "sqlite"
    assert health["database"]["schema_current"] is True
    assert health["database"]["schema"] == health["database"]["schema_head"]
    assert health["database"]["schema"] is not None
    assert health["catalog"]["version"] == system.catalog.current().version == "2026.11.1"
    assert re.fullmatch(r"[0-9a-f]{64}", health["catalog"]["digest"])


def test_health_is_degraded_on_an_unmigrated_database(data_dir: Path) -> None:
    system = build(Settings(data_dir=data_dir, auto_migrate=False))
    try:
        health = TestClient(create_app(system)).get("/v1/health").json()
    finally:
        system.close()
    assert health["status"] == "degraded"
    assert health["database"]["schema_current"] is False
    assert health["database"]["schema"] is None


def test_health_answers_503_when_not_ready(data_dir: Path) -> None:
    system = build(Settings(data_dir=data_dir, auto_migrate=False))
    try:
        response = TestClient(create_app(system)).get("/v1/health")
    finally:
        system.close()
    assert response.status_code == 503


def test_catalog_lists_every_resource_with_string_prices(client: TestClient) -> None:
    response = client.get("/v1/catalog")
    assert response.status_code == 200
    document = response.json()
    assert len(document["resources"]) == 14
    assert {r["id"] for r in document["resources"]} == RESOURCES
    assert re.fullmatch(r"[0-9a-f]{64}", document["digest"])
    prices = {r["id"]: r["price"]["unit_price"] for r in document["resources"]}
    assert all(isinstance(price, str) for price in prices.values())
    assert Decimal(prices["compute.memory"]) == Decimal("0.005")
    assert Decimal(prices["hosting.custom_domain"]) == Decimal("0.5")
    assert Decimal(prices["network.egress"]) == 0
    assert list(numbers(document)) == []


def test_catalog_at(client: TestClient) -> None:
    before = client.get("/v1/catalog", params={"at": "2020-01-01T00:00:00Z"}).json()
    assert before["at"] == "2020-01-01T00:00:00Z"
    assert [r["price"] for r in before["resources"]] == [None] * 14
    assert all(r["prices"] for r in before["resources"])

    naive = client.get("/v1/catalog", params={"at": "2026-01-01T00:00:00"}).json()
    assert naive["at"] == "2026-01-01T00:00:00Z"
    assert all(r["price"] is not None for r in naive["resources"])


def test_catalog_bad_at_is_422(client: TestClient) -> None:
    response = client.get("/v1/catalog", params={"at": "garbage"})
    assert response.status_code == 422
    assert "at" in response.text


def test_openapi_lists_every_route(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert set(paths) == ROUTES
    posts = {
        p
        for p in ROUTES
        if p in ("/v1/events", "/v1/estimates", "/v1/simulations", "/v1/billing/close")
        or p.endswith(
            ("/replacements", "/revert", "/payments", "/void", "/credit-notes", "/downtime")
        )
        or p.endswith(("/deposits", "/credits", "/discounts", "/commitments"))
    }
    posts -= {"/v1/usage/replacements", "/v1/payments"}
    posts.add("/rpc")
    puts = {"/v1/accounts/{account}/terms"}
    for path in paths:
        method = "post" if path in posts else "put" if path in puts else "get"
        assert method in paths[path], path
    app_routes = {
        route.path.replace(":path}", "}")
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, APIRoute)
    }
    assert app_routes == ROUTES
    assert document["info"]["version"] == __version__


# --- ledger reads -----------------------------------------------------------------------------

NOW = {
    "acct_1:prepaid": "750000000000000000",
    "acct_2:prepaid": "2000000000000000000",
    "treasury": "3750000000000000000",
    "revenue": "700000000000000000",
    "node_7:payable": "300000000000000000",
}


def test_accounts(client: TestClient, ledger: dict[str, TransferRecord]) -> None:
    document = client.get("/v1/ledger/accounts").json()
    assert document["as_of"] is None
    assert balances(document) == NOW
    synor = {a["id"]: a["balance_synor"] for a in document["accounts"]}
    assert synor == {
        "acct_1:prepaid": "0.75",
        "acct_2:prepaid": "2",
        "treasury": "3.75",
        "revenue": "0.7",
        "node_7:payable": "0.3",
    }


def test_accounts_filtered_by_kind(client: TestClient, ledger: dict[str, TransferRecord]) -> None:
    prepaid = client.get("/v1/ledger/accounts", params={"kind": "customer_prepaid"}).json()
    assert balances(prepaid) == {k: NOW[k] for k in ("acct_1:prepaid", "acct_2:prepaid")}
    payable = client.get("/v1/ledger/accounts", params={"kind": "operator_payable"}).json()
    assert [a["owner"] for a in payable["accounts"]] == ["node_7"]


def test_accounts_unknown_kind_is_422(
    client: TestClient, ledger: dict[str, TransferRecord]
) -> None:
    response = client.get("/v1/ledger/accounts", params={"kind": "customer_prepiad"})
    assert response.status_code == 422


def test_accounts_as_of(client: TestClient, ledger: dict[str, TransferRecord]) -> None:
    first = ts_of(ledger["dep/acct_1:1"])
    at_first = client.get("/v1/ledger/accounts", params={"as_of": rfc3339(first)}).json()
    assert at_first["as_of"] == rfc3339(first)
    assert balances(at_first) == {
        "acct_1:prepaid": "1500000000000000000",
        "acct_2:prepaid": "0",
        "treasury": "1500000000000000000",
        "revenue": "0",
        "node_7:payable": "0",
    }
    invoiced = ts_of(ledger["inv/2026-11/acct_1"])
    at_invoice = client.get("/v1/ledger/accounts", params={"as_of": rfc3339(invoiced)}).json()
    assert balances(at_invoice)["acct_1:prepaid"] == "500000000000000000"
    assert balances(at_invoice)["revenue"] == "700000000000000000"

    before = client.get(
        "/v1/ledger/accounts", params={"as_of": rfc3339(first - timedelta(microseconds=1))}
    ).json()
    assert set(balances(before).values()) == {"0"}

    naive = first.replace(tzinfo=None).isoformat()
    assert balances(client.get("/v1/ledger/accounts", params={"as_of": naive}).json()) == balances(
        at_first
    )


def test_account(client: TestClient, ledger: dict[str, TransferRecord]) -> None:
    account = client.get("/v1/ledger/accounts/acct_1:prepaid").json()
    assert account["id"] == "acct_1:prepaid"
    assert account["kind"] == "customer_prepaid"
    assert account["normal"] == "credit"
    assert account["floor"] == "0"
    assert account["balance"] == account["available"] == "750000000000000000"
    assert account["balance_synor"] == "0.75"
    assert account["debits_posted"] == str(SYNOR)
    assert account["credits_posted"] == str(7 * SYNOR // 4)

    first = ts_of(ledger["dep/acct_1:1"])
    then = client.get("/v1/ledger/accounts/acct_1:prepaid", params={"as_of": rfc3339(first)}).json()
    assert then["balance"] == "1500000000000000000"


def test_unknown_account_is_404(client: TestClient, ledger: dict[str, TransferRecord]) -> None:
    for path in (
        "/v1/ledger/accounts/acct_9:prepaid",
        "/v1/ledger/accounts/acct_9:prepaid/entries",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        error = response.json()["error"]
        assert error["code"] == "unknown_account"
        assert "acct_9:prepaid" in error["message"]


def test_entries_newest_first_with_paging(
    client: TestClient, ledger: dict[str, TransferRecord]
) -> None:
    url = "/v1/ledger/accounts/acct_1:prepaid/entries"
    everything = client.get(url).json()
    assert everything["next_before"] is None
    rows = [
        (e["transfer"], e["side"], e["amount"], e["balance_after"]) for e in everything["entries"]
    ]
    assert rows == [
        ("dep/acct_1:2", "credit", "250000000000000000", "750000000000000000"),
        ("inv/2026-11/acct_1", "debit", "1000000000000000000", "500000000000000000"),
        ("dep/acct_1:1", "credit", "1500000000000000000", "1500000000000000000"),
    ]
    seqs = [e["seq"] for e in everything["entries"]]
    assert seqs == sorted(seqs, reverse=True)
    assert everything["entries"][1]["code"] == "invoice.settle"
    assert everything["entries"][1]["balance_after_synor"] == "0.5"

    page1 = client.get(url, params={"limit": 2}).json()
    assert page1["entries"] == everything["entries"][:2]
    last = page1["entries"][-1]
    assert page1["next_before"] == f"{last['seq']}:{last['leg']}"
    page2 = client.get(url, params={"limit": 2, "before": page1["next_before"]}).json()
    assert page2["entries"] == everything["entries"][2:]
    assert page2["next_before"] is None


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 1001}, {"before": "0:0"}, {"before": "12"}, {"before": "x:1"}],
)
def test_entries_bad_paging_is_422(
    client: TestClient, ledger: dict[str, TransferRecord], params: dict[str, object]
) -> None:
    response = client.get("/v1/ledger/accounts/acct_1:prepaid/entries", params=params)
    assert response.status_code == 422


@pytest.mark.parametrize("transfer_id", ["dep/acct_1:1", "inv/2026-11/acct_1"])
def test_transfer_ids_with_colons_and_slashes(
    client: TestClient, ledger: dict[str, TransferRecord], transfer_id: str
) -> None:
    record = ledger[transfer_id]
    for path in (transfer_id, quote(transfer_id, safe="")):
        response = client.get(f"/v1/ledger/transfers/{path}")
        assert response.status_code == 200, path
        document = response.json()
        assert document["id"] == transfer_id
        assert document["seq"] == record.seq
        assert document["kind"] == "posted"
        assert document["ts"] == rfc3339(ts_of(record))
        assert document["amount"] == str(record.amount)
        assert [(e["account"], e["side"], e["amount"]) for e in document["entries"]] == [
            (e.account, e.side.value, str(e.amount)) for e in record.entries
        ]


def test_multi_leg_transfer_document(client: TestClient, ledger: dict[str, TransferRecord]) -> None:
    document = client.get("/v1/ledger/transfers/inv/2026-11/acct_1").json()
    assert document["amount"] == str(SYNOR)
    assert document["amount_synor"] == "1"
    assert document["code"] == "invoice.settle"
    assert document["memo"] == "November usage"
    assert document["ref"] is None
    assert [e["amount_synor"] for e in document["entries"]] == ["1", "0.7", "0.3"]


def test_unknown_transfer_is_404(client: TestClient, ledger: dict[str, TransferRecord]) -> None:
    response = client.get("/v1/ledger/transfers/dep/acct_9:1")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/v1/ledger/accounts", "/v1/ledger/accounts/treasury", "/v1/catalog"]
)
def test_bad_time_is_422_naming_the_parameter(
    client: TestClient, ledger: dict[str, TransferRecord], path: str
) -> None:
    name = "at" if path == "/v1/catalog" else "as_of"
    response = client.get(path, params={name: "next tuesday"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"].startswith(f"{name}:")


def test_validation_errors_use_the_error_envelope(client: TestClient) -> None:
    response = client.get("/v1/ledger/accounts", params={"as_of": "next tuesday"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    assert "as_of" in response.json()["error"]["message"]


def test_no_money_is_a_json_number(client: TestClient, ledger: dict[str, TransferRecord]) -> None:
    paths = [
        "/v1/health",
        "/v1/catalog",
        "/v1/ledger/accounts",
        "/v1/ledger/accounts/treasury",
        "/v1/ledger/accounts/treasury/entries",
        "/v1/ledger/transfers/inv/2026-11/acct_1",
        "/v1/ledger/check",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        found = list(numbers(response.json()))
        assert not [n for n in found if isinstance(n[1], float)], path
        assert not [n for n in found if n[0] not in COUNT_KEYS], path


# --- the invariant check ----------------------------------------------------------------------


def test_check_ok_then_500_after_tampering(
    client: TestClient, ledger: dict[str, TransferRecord], data_dir: Path
) -> None:
    sound = client.get("/v1/ledger/check")
    assert sound.status_code == 200
    report = sound.json()
    assert report["ok"] is True
    assert (report["transfers"], report["entries"], report["accounts"]) == (4, 9, 5)
    assert report["total_debits"] == report["total_credits"] == str(19 * SYNOR // 4)
    assert report["violations"] == []

    tamper(data_dir / "synor.db")
    broken = client.get("/v1/ledger/check")
    assert broken.status_code == 500
    report = broken.json()
    assert report["ok"] is False
    assert report["violation_count"] == len(report["violations"]) >= 2
    assert {"fingerprint", "unbalanced"} <= {v["code"] for v in report["violations"]}
    assert any("dep/acct_1:1" in v["where"] for v in report["violations"])
    # The reads still work, and show what is stored: the check is what notices.
    assert client.get("/v1/ledger/transfers/dep/acct_1:1").json()["entries"][0]["amount"] == "999"


# --- one account on two legs of one transfer --------------------------------------------------


@pytest.fixture
def split(system: System) -> TransferRecord:
    """A transfer that debits the same account twice (allowed: entries need only balance)."""
    system.ledger.open_accounts(
        [
            AccountSpec.of("treasury", AccountKind.TREASURY),
            AccountSpec.of("equity", AccountKind.EQUITY),
        ]
    )
    return system.ledger.post(
        Transfer(
            "split/1",
            entries=(
                Entry("treasury", Side.DEBIT, 3),
                Entry("treasury", Side.DEBIT, 4),
                Entry("equity", Side.CREDIT, 7),
            ),
        )
    )


def test_two_legs_on_one_account_pass_the_check(client: TestClient, split: TransferRecord) -> None:
    response = client.get("/v1/ledger/check")
    assert response.json()["violations"] == []
    assert response.status_code == 200


def test_two_legs_on_one_account_have_running_balances(
    client: TestClient, split: TransferRecord
) -> None:
    entries = client.get("/v1/ledger/accounts/treasury/entries").json()["entries"]
    assert [(e["leg"], e["amount"], e["balance_after"]) for e in entries] == [
        (1, "4", "7"),
        (0, "3", "3"),
    ]


def test_paging_does_not_drop_a_second_leg(client: TestClient, split: TransferRecord) -> None:
    url = "/v1/ledger/accounts/treasury/entries"
    seen: list[int] = []
    params: dict[str, object] = {"limit": 1}
    for _ in range(5):
        page = client.get(url, params=params).json()
        seen.extend(e["leg"] for e in page["entries"])
        if page["next_before"] is None:
            break
        params = {"limit": 1, "before": page["next_before"]}
    assert seen == [1, 0]


# --- a real server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until_healthy(
    proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"synor serve exited {proc.returncode} before answering:\n{log.read_text()}"
            )
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"synor serve did not answer {url} within {timeout} s:\n{log.read_text()}")


@pytest.mark.parametrize("via", ["option", "environment"])
def test_synor_serve(tmp_path: Path, via: str) -> None:
    command = list(COMMAND)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNOR_")}
    env["SYNOR_DATA_DIR"] = str(tmp_path / "served")
    if via == "option":
        command += ["serve", "--port", str(port)]
        env["SYNOR_PORT"] = str(free_port())  # the option wins over the setting
    else:
        command += ["serve"]
        env["SYNOR_PORT"] = str(port)
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            health = wait_until_healthy(proc, f"{base}/v1/health", log, timeout=20)
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            assert health.json()["database"]["backend"] == "sqlite"
            catalog = httpx.get(f"{base}/v1/catalog", timeout=5)
            assert catalog.status_code == 200
            assert {r["id"] for r in catalog.json()["resources"]} == RESOURCES
            missing = httpx.get(f"{base}/v1/ledger/accounts/nobody", timeout=5)
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "unknown_account"
        finally:
            proc.terminate()
            try:
                code: int | None = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                code = None
    assert code in (0, -signal.SIGTERM), f"synor serve did not stop on SIGTERM:\n{log.read_text()}"
    output = log.read_text()
    assert f"http://127.0.0.1:{port}/v1/health" in output
    assert "Finished server process" in output
    assert (tmp_path / "served" / "synor.db").is_file()
