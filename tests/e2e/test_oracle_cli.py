"""The oracle and the payment watcher through the CLI and the API, as a user runs them: price
sources in a TOML file (JSON feeds served on this machine), rounds run by `synor oracle run`,
the price read back by every face, an invoice closed at the oracle's rate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from synor_economics.api.app import create_app
from synor_economics.bootstrap import build
from synor_economics.config import Settings
from tests.e2e.conftest import Cli

WINDOW = 2  # seconds: rounds need a window's history before they count


class Feeds(BaseHTTPRequestHandler):
    prices: ClassVar[dict[str, str]] = {"/a": "0.0200", "/b": "0.0202", "/c": "0.0199"}

    def do_GET(self) -> None:
        price = self.prices.get(self.path)
        self.send_response(200 if price else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"usd": {"price": price}}).encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Feeds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    path = tmp_path / "sources.toml"
    path.write_text(
        "".join(
            f'[[source]]\nname = "feed:{n}"\nkind = "json-feed"\nurl = "{base}/{n}"\n'
            f'weight = "{w}"\nprice_path = "usd.price"\n\n'
            for n, w in (("a", 50_000), ("b", 20_000), ("c", 40_000))
        )
    )
    yield path
    server.shutdown()
    server.server_close()


def oracle_env(sources: Path) -> dict[str, str]:
    return {"SYNOR_ORACLE_SOURCES": str(sources), "SYNOR_ORACLE_WINDOW": str(WINDOW)}


def test_the_oracle_runs_publishes_and_is_read_by_every_face(cli: Cli, sources: Path) -> None:
    env = oracle_env(sources)
    first = cli.json("oracle", "run", **env)
    assert first["quorum_met"] is False
    assert all(q["history"] == 0 for q in first["sources"].values())
    refused = cli.run("oracle", "price", **env)
    assert refused.returncode != 0
    assert "no price yet" in refused.stderr

    time.sleep(WINDOW + 1)
    second = cli.json("oracle", "run", **env)
    assert second["quorum_met"] is True
    # weights 40,000 (0.0199), 50,000 (0.02), 20,000 (0.0202): half of 110,000 is reached at 0.02
    assert second["price"] == "0.02"
    assert second["submitted"]["chain_round"] == 1  # the three reporters' median, on chain
    assert int(second["submitted"]["chain_price"]) == 2 * 10**16

    price = cli.json("oracle", "price", **env)
    assert (price["price"], price["round"], price["stale"]) == ("0.02", second["round"], False)
    assert float(price["low"]) < 0.02 < float(price["high"])
    history = cli.json("oracle", "history", "--window", "1h", **env)
    assert [r["round"] for r in history] == [first["round"], second["round"]]
    twap = cli.json("oracle", "twap", "--window", "1s", **env)
    assert twap["arithmetic"] == "0.02"
    table = cli.ok("oracle", "run", **env)
    assert table == ""  # the table goes to stderr; stdout stays clean for pipes
    bad = cli.run("oracle", "history", "--window", "soon", **env)
    assert bad.returncode == 2
    assert "not a duration" in bad.stderr

    # The API reads the same store.
    system = build(Settings(data_dir=cli.data_dir, oracle_sources=sources, oracle_window=WINDOW))
    try:
        with TestClient(create_app(system)) as api:
            body = api.get("/v1/oracle/price").json()
            assert body["price"] == "0.02"
            assert api.get("/v1/oracle/twap", params={"window": "1s"}).json()["arithmetic"] == (
                "0.02"
            )
            rounds = api.get("/v1/oracle/history", params={"window": "1h"}).json()["rounds"]
            assert len(rounds) == 3
            wrong = api.get("/v1/oracle/twap", params={"window": "forever"})
            assert wrong.status_code == 422
            assert "not a duration" in wrong.json()["error"]["message"]
    finally:
        system.close()


def test_without_a_price_the_api_answers_503_and_billing_keeps_its_fixed_rate(
    cli: Cli, sources: Path
) -> None:
    system = build(Settings(data_dir=cli.data_dir))
    try:
        with TestClient(create_app(system)) as api:
            answer = api.get("/v1/oracle/price")
            assert answer.status_code == 503
            assert answer.json()["error"]["code"] == "no_price"
            assert api.get("/v1/payments").json() == {"payments": []}
    finally:
        system.close()
    missing = cli.run("oracle", "run")
    assert missing.returncode != 0
    assert "SYNOR_ORACLE_SOURCES" in missing.stderr


def test_chain_info_and_the_payment_watcher_from_the_cli(cli: Cli) -> None:
    info = cli.json("chain", "info")
    assert info["node"] == "in-process EVM"
    assert set(info["contracts"]) == {
        "SynorToken",
        "PriceOracle",
        "InvoicePayments",
        "FeeDistributor",
    }
    assert cli.ok("payments", "watch", "--interval", "0") == ""
    assert cli.json("payments", "list") == []
    address = "0x" + "ab" * 20
    cli.ok("payments", "address", address, "--account", "acct_a")
    refused = cli.run("payments", "address", "0x12", "--account", "acct_a")
    assert refused.returncode == 2
    assert "40 hex digits" in refused.stderr
    wrong = cli.run("payments", "list", "--status", "lost")
    assert wrong.returncode == 2
