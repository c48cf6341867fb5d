"""End-to-end tests of the ``synor`` command line: the real console script, run as a subprocess
with a temporary data directory and an environment free of any other ``SYNOR_`` setting.

The ledger is populated in-process through the composition root (the CLI has no write commands
yet), then read back and checked through the command line; tampering goes straight to the
database file or server, the way a careless operator or an attacker would.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from synor_economics import __version__
from synor_economics.bootstrap import build
from synor_economics.config import Settings
from synor_economics.domain.ledger import AccountKind, AccountSpec, Entry, Side, Transfer
from synor_economics.services.time import from_us
from tests.e2e.conftest import Cli, rfc3339

SYNOR = 10**18
# SPEC §3: resource -> (meter, event unit, price unit, event units per price unit, SYNOR price).
SPEC_PRICE_BOOK: dict[str, tuple[str, str, str, int, str]] = {
    "storage.storage": ("gauge", "bytes", "GB-month", 10**9, "0.02"),
    "storage.retrieval": ("counter", "bytes", "GB", 10**9, "0.01"),
    "storage.deal": ("counter", "deals", "deal", 1, "0.001"),
    "hosting.bandwidth": ("counter", "bytes", "GB", 10**9, "0.05"),
    "hosting.custom_domain": ("gauge", "domains", "domain-month", 1, "0.50"),
    "hosting.ssl_certificate": ("gauge", "certificates", "certificate-month", 1, "0"),
    "database.storage": ("gauge", "bytes", "GB-month", 10**9, "0.10"),
    "database.queries": ("counter", "queries", "1M queries", 10**6, "0.01"),
    "database.vector_search": ("counter", "searches", "1M searches", 10**6, "0.05"),
    "compute.cpu": ("counter", "core-seconds", "core-hour", 3600, "0.02"),
    "compute.gpu.rtx4090": ("counter", "gpu-seconds", "GPU-hour", 3600, "0.50"),
    "compute.memory": ("counter", "GB-seconds", "GB-hour", 3600, "0.005"),
    "compute.serverless": ("counter", "invocations", "1M invocations", 10**6, "0.20"),
    "network.egress": ("counter", "bytes", "GB", 10**9, "0"),
}


def populate(settings: Settings) -> datetime:
    """Three transfers through the composition root; the time of the first."""
    system = build(settings)
    try:
        system.ledger.open_accounts(
            [
                AccountSpec.of("acct_1:prepaid", AccountKind.CUSTOMER_PREPAID, owner="acct_1"),
                AccountSpec.of("acct_2:prepaid", AccountKind.CUSTOMER_PREPAID, owner="acct_2"),
                AccountSpec.of("treasury", AccountKind.TREASURY),
                AccountSpec.of("revenue", AccountKind.REVENUE),
                AccountSpec.of("node_7:payable", AccountKind.OPERATOR_PAYABLE, owner="node_7"),
            ]
        )
        first = system.ledger.post(
            Transfer.between(
                "dep/acct_1:1",
                debit="treasury",
                credit="acct_1:prepaid",
                amount=3 * SYNOR // 2,
                code="prepaid.deposit",
            )
        )
        system.ledger.post(
            Transfer.between(
                "dep/acct_2:1",
                debit="treasury",
                credit="acct_2:prepaid",
                amount=2 * SYNOR,
                code="prepaid.deposit",
            )
        )
        system.ledger.post(
            Transfer(
                "inv/2026-11/acct_1",
                entries=(
                    Entry("acct_1:prepaid", Side.DEBIT, SYNOR),
                    Entry("revenue", Side.CREDIT, 7 * SYNOR // 10),
                    Entry("node_7:payable", Side.CREDIT, 3 * SYNOR // 10),
                ),
                code="invoice.settle",
            )
        )
    finally:
        system.close()
    return from_us(first.ts_us)


def balances_by_id(document: Any) -> dict[str, tuple[str, str]]:
    return {a["id"]: (a["balance"], a["balance_synor"]) for a in document["accounts"]}


# --- the command tree -------------------------------------------------------------------------


def test_help_lists_every_command(cli: Cli) -> None:
    out = cli.ok("--help")
    for command in ("serve", "config", "version", "db", "catalog", "ledger"):
        assert re.search(rf"^\W*{command}\b", out, re.MULTILINE), f"{command} missing from:\n{out}"


@pytest.mark.parametrize(
    ("group", "commands"),
    [("db", ("upgrade", "status")), ("catalog", ("show",)), ("ledger", ("balances", "check"))],
)
def test_group_help_lists_its_commands(cli: Cli, group: str, commands: tuple[str, ...]) -> None:
    out = cli.ok(group, "--help")
    for command in commands:
        assert re.search(rf"^\W*{command}\b", out, re.MULTILINE), f"{command} missing from:\n{out}"


def test_unknown_command_is_a_usage_error(cli: Cli) -> None:
    done = cli.run("frobnicate")
    assert done.returncode == 2
    assert "frobnicate" in done.stderr
    assert "Traceback" not in done.stderr


def test_version_is_the_installed_distribution_version(cli: Cli) -> None:
    out = cli.ok("version").strip()
    assert out == __version__
    assert out == metadata.version("synor-economics")


# --- settings ---------------------------------------------------------------------------------


def test_config_json_shows_values_and_their_sources(cli: Cli) -> None:
    settings = cli.json("config")
    assert settings["data_dir"] == {"value": str(cli.data_dir), "source": "environment"}
    assert settings["database_url"] == {"value": f"sqlite:///{cli.db_file}", "source": "default"}
    assert settings["port"] == {"value": "8000", "source": "default"}
    assert settings["host"] == {"value": "127.0.0.1", "source": "default"}
    assert all(set(entry) == {"value", "source"} for entry in settings.values())
    assert not cli.data_dir.exists(), "`synor config` must not create the data dir or database"


def test_config_reports_environment_overrides(cli: Cli) -> None:
    settings = cli.json("config", SYNOR_PORT="8123", SYNOR_LOG_LEVEL="WARNING")
    assert settings["port"] == {"value": "8123", "source": "environment"}
    assert settings["log_level"] == {"value": "warning", "source": "environment"}


def test_config_hides_the_database_password(cli: Cli) -> None:
    url = "postgresql+psycopg://synor:s3cret-pw@db.example:5432/synor"
    settings = cli.json("config", SYNOR_DATABASE_URL=url)
    shown = settings["database_url"]
    assert shown["source"] == "environment"
    assert "s3cret-pw" not in shown["value"]
    assert shown["value"] == "postgresql+psycopg://synor:***@db.example:5432/synor"


def test_config_never_shows_private_keys(cli: Cli) -> None:
    key = "0x" + "ab" * 32
    settings = cli.json(
        "config", SYNOR_CHAIN_DEPLOYER_KEY=key, SYNOR_ORACLE_REPORTER_KEYS=f"{key},{key}"
    )
    for name in ("chain_deployer_key", "oracle_reporter_keys"):
        assert settings[name] == {"value": "(set, hidden)", "source": "environment"}
    assert key[2:] not in cli.ok("config", SYNOR_CHAIN_DEPLOYER_KEY=key)


def test_config_table_lists_every_setting(cli: Cli) -> None:
    out = cli.ok("config")
    for name in Settings.model_fields:
        assert name in out
    assert str(cli.data_dir) in out


BAD_STARTUP = [
    pytest.param({"SYNOR_PORT": "notanumber"}, "SYNOR_PORT", id="port-not-a-number"),
    pytest.param({"SYNOR_PORT": "70000"}, "SYNOR_PORT", id="port-out-of-range"),
    pytest.param({"SYNOR_LOG_LEVEL": "loud"}, "SYNOR_LOG_LEVEL", id="unknown-log-level"),
    pytest.param({"SYNOR_TREASURY_ADDRESS": "0x12"}, "SYNOR_TREASURY_ADDRESS", id="address"),
    pytest.param(
        {"SYNOR_CHAIN_DEPLOYER_KEY": "0x" + "1" * 63 + "z"}, "SYNOR_CHAIN_DEPLOYER_KEY", id="key"
    ),
    pytest.param(
        {"SYNOR_ORACLE_REPORTER_KEYS": "0x" + "1" * 64 + ";0x" + "2" * 64},
        "SYNOR_ORACLE_REPORTER_KEYS",
        id="reporter-keys",
    ),
]


@pytest.mark.parametrize(("settings", "named"), BAD_STARTUP)
def test_a_bad_setting_fails_and_names_it(cli: Cli, settings: dict[str, str], named: str) -> None:
    done = cli.run("config", "--json", **settings)
    assert done.returncode != 0
    assert done.stdout == ""
    assert named in done.stderr


def test_a_malformed_key_is_refused_without_being_printed(cli: Cli) -> None:
    key = "0x" + "7" * 63 + "z"
    done = cli.run("config", "--json", SYNOR_CHAIN_DEPLOYER_KEY=key)
    assert done.returncode != 0
    assert "7777777" not in done.stderr + done.stdout


def test_a_bad_setting_is_a_short_message_not_a_traceback(cli: Cli) -> None:
    done = cli.run("config", "--json", SYNOR_PORT="notanumber")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "SYNOR_PORT" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 5


@pytest.mark.parametrize(
    ("settings", "mentions"),
    [
        pytest.param(
            {"SYNOR_CATALOG_PATH": "/nonexistent/prices.toml"}, "prices.toml", id="catalog"
        ),
        pytest.param(
            {"SYNOR_DATABASE_URL": "postgresql+psycopg://synor@127.0.0.1:1/synor"},
            "127.0.0.1",
            id="database",
        ),
    ],
)
def test_startup_failures_are_short_messages(
    cli: Cli, settings: dict[str, str], mentions: str
) -> None:
    done = cli.run("db", "status", **settings)
    assert done.returncode != 0
    assert mentions in done.stderr
    assert "Traceback" not in done.stderr


# --- schema -----------------------------------------------------------------------------------


def test_db_upgrade_creates_the_sqlite_file_and_is_idempotent(cli: Cli) -> None:
    assert not cli.db_file.exists()
    first = cli.ok("db", "upgrade")
    assert cli.db_file.is_file()
    assert "sqlite" in first
    revision = re.search(r"schema at (\S+)", first)
    assert revision is not None
    assert revision.group(1) != "None"

    second = cli.ok("db", "upgrade")
    assert second == first
    status = cli.ok("db", "status")
    assert "up to date" in status
    assert f"{revision.group(1)} (newest {revision.group(1)})" in status

    with sqlite3.connect(cli.db_file) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    conn.close()
    assert {"ledger_accounts", "ledger_transfers", "ledger_entries"} <= tables
    assert versions == [(revision.group(1),)]


def test_db_status_without_auto_migrate_asks_for_an_upgrade(cli: Cli) -> None:
    manual = {"SYNOR_AUTO_MIGRATE": "false"}
    before = cli.run("db", "status", **manual)
    assert before.returncode == 1
    assert "synor db upgrade" in before.stdout
    assert "up to date" not in before.stdout

    cli.ok("db", "upgrade", **manual)
    after = cli.run("db", "status", **manual)
    assert after.returncode == 0
    assert "up to date" in after.stdout


# --- catalog ----------------------------------------------------------------------------------


def test_catalog_json_is_the_spec_price_book(cli: Cli) -> None:
    before = datetime.now(UTC)
    document = cli.json("catalog", "show")
    after = datetime.now(UTC)

    packaged = resources.files("synor_economics").joinpath("catalog/default.toml").read_bytes()
    assert document["digest"] == hashlib.sha256(packaged).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", document["digest"])
    assert isinstance(document["version"], str)
    assert document["version"]
    at = datetime.fromisoformat(document["at"])
    assert before - timedelta(seconds=1) <= at <= after + timedelta(seconds=1)

    by_id = {r["id"]: r for r in document["resources"]}
    assert len(document["resources"]) == 14
    assert set(by_id) == set(SPEC_PRICE_BOOK)
    for rid, (meter, event_unit, price_unit, divisor, price) in SPEC_PRICE_BOOK.items():
        resource = by_id[rid]
        assert resource["service"] == rid.split(".")[0]
        assert (resource["meter"], resource["event_unit"], resource["price_unit"]) == (
            meter,
            event_unit,
            price_unit,
        ), rid
        assert resource["divisor"] == str(divisor), rid
        current = resource["price"]
        assert current["model"] == "per_unit", rid
        assert current["currency"] == "SYNOR", rid
        assert isinstance(current["unit_price"], str), rid
        assert Decimal(current["unit_price"]) == Decimal(price), rid
        assert current["effective_from"] == "2026-01-01T00:00:00Z", rid
        assert resource["prices"][-1] == current, rid


@pytest.mark.parametrize(
    ("at", "priced"),
    [
        ("2025-12-31T23:59:59.999999Z", False),
        ("2026-01-01", True),
        ("2025-12-31T23:30:00-01:00", True),
    ],
)
def test_catalog_at_picks_the_row_in_effect(cli: Cli, at: str, priced: bool) -> None:
    document = cli.json("catalog", "show", "--at", at)
    assert len(document["resources"]) == 14
    for resource in document["resources"]:
        assert (resource["price"] is not None) is priced, resource["id"]
        assert resource["prices"], resource["id"]


def test_catalog_before_the_first_row_shows_null_prices(cli: Cli) -> None:
    document = cli.json("catalog", "show", "--at", "2020-01-01T00:00:00Z")
    assert document["at"] == "2020-01-01T00:00:00Z"
    assert [r["price"] for r in document["resources"]] == [None] * 14
    out = cli.ok("catalog", "show", "--at", "2020-01-01T00:00:00Z")
    assert out.count("not yet priced") == 14


def test_catalog_bad_at_names_the_option(cli: Cli) -> None:
    done = cli.run("catalog", "show", "--at", "garbage")
    assert done.returncode == 2
    assert "--at" in done.stderr
    assert "garbage" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_catalog_table_lists_every_resource(cli: Cli) -> None:
    out = cli.ok("catalog", "show")
    packaged = resources.files("synor_economics").joinpath("catalog/default.toml").read_bytes()
    for rid in SPEC_PRICE_BOOK:
        assert rid in out
    assert tomllib.loads(packaged.decode())["version"] in out
    assert hashlib.sha256(packaged).hexdigest() in out
    assert "0.005 SYNOR" in out


def test_catalog_path_setting_replaces_the_packaged_book(cli: Cli, tmp_path: Path) -> None:
    packaged = resources.files("synor_economics").joinpath("catalog/default.toml").read_text()
    custom = tmp_path / "prices.toml"
    custom.write_text(re.sub(r'(?m)^version = ".*"$', 'version = "test.1"', packaged))
    document = cli.json("catalog", "show", SYNOR_CATALOG_PATH=str(custom))
    assert document["version"] == "test.1"
    assert document["digest"] == hashlib.sha256(custom.read_bytes()).hexdigest()
    assert len(document["resources"]) == 14


# --- ledger -----------------------------------------------------------------------------------


@pytest.fixture
def ledger_cli(cli: Cli) -> tuple[Cli, datetime]:
    """The CLI over a SQLite ledger of three transfers; the first transfer's time."""
    first = populate(Settings(data_dir=cli.data_dir))
    return cli, first


NOW_BALANCES = {
    "acct_1:prepaid": ("500000000000000000", "0.5"),
    "acct_2:prepaid": ("2000000000000000000", "2"),
    "treasury": ("3500000000000000000", "3.5"),
    "revenue": ("700000000000000000", "0.7"),
    "node_7:payable": ("300000000000000000", "0.3"),
}


def test_ledger_balances_json(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    document = cli.json("ledger", "balances")
    assert document["as_of"] is None
    assert balances_by_id(document) == NOW_BALANCES
    prepaid = next(a for a in document["accounts"] if a["id"] == "acct_1:prepaid")
    assert prepaid["kind"] == "customer_prepaid"
    assert prepaid["normal"] == "credit"
    assert prepaid["owner"] == "acct_1"
    assert prepaid["floor"] == "0"
    assert prepaid["available"] == "500000000000000000"
    assert prepaid["available_synor"] == "0.5"
    assert prepaid["debits_posted"] == str(SYNOR)
    assert prepaid["credits_posted"] == str(3 * SYNOR // 2)


def test_ledger_balances_filter_by_kind(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    document = cli.json("ledger", "balances", "--kind", "customer_prepaid")
    assert balances_by_id(document) == {
        "acct_1:prepaid": NOW_BALANCES["acct_1:prepaid"],
        "acct_2:prepaid": NOW_BALANCES["acct_2:prepaid"],
    }


def test_ledger_balances_as_of_shows_earlier_balances(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, first = ledger_cli
    at_first = cli.json("ledger", "balances", "--as-of", rfc3339(first))
    assert balances_by_id(at_first) == {
        "acct_1:prepaid": ("1500000000000000000", "1.5"),
        "acct_2:prepaid": ("0", "0"),
        "treasury": ("1500000000000000000", "1.5"),
        "revenue": ("0", "0"),
        "node_7:payable": ("0", "0"),
    }
    before_all = cli.json(
        "ledger", "balances", "--as-of", rfc3339(first - timedelta(microseconds=1))
    )
    assert {b for b, _ in balances_by_id(before_all).values()} == {"0"}


def test_ledger_balances_table(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    out = cli.ok("ledger", "balances")
    for account_id in NOW_BALANCES:
        assert account_id in out
    assert re.search(r"treasury\s.*\b3\.5", out)


def test_ledger_balances_bad_as_of_names_the_option(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    done = cli.run("ledger", "balances", "--as-of", "yesterday")
    assert done.returncode == 2
    assert "--as-of" in done.stderr
    assert "Traceback" not in done.stderr


def test_ledger_balances_unknown_kind_is_refused(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    done = cli.run("ledger", "balances", "--kind", "customer_prepiad", "--json")
    assert done.returncode == 2
    assert "customer_prepaid" in done.stderr


def test_ledger_balances_json_as_of_is_normalised(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    document = cli.json("ledger", "balances", "--as-of", "2026-01-01")
    assert document["as_of"] == "2026-01-01T00:00:00Z"


def test_cli_and_api_documents_agree(ledger_cli: tuple[Cli, datetime]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from synor_economics.api.app import create_app

    cli, first = ledger_cli
    as_of = rfc3339(first)
    system = build(Settings(data_dir=cli.data_dir))
    try:
        with TestClient(create_app(system)) as client:
            api_balances = client.get("/v1/ledger/accounts", params={"as_of": as_of}).json()
            api_catalog = client.get("/v1/catalog", params={"at": "2026-06-01T00:00:00Z"}).json()
            api_check = client.get("/v1/ledger/check").json()
    finally:
        system.close()
    assert cli.json("ledger", "balances", "--as-of", as_of) == api_balances
    assert cli.json("catalog", "show", "--at", "2026-06-01T00:00:00Z") == api_catalog
    assert cli.json("ledger", "check") == api_check


def tamper_sqlite(db_file: Path) -> None:
    with sqlite3.connect(db_file) as conn:
        conn.executescript(
            "DROP TRIGGER ledger_entries_no_update;"
            "UPDATE ledger_entries SET amount='999' WHERE seq=1 AND leg=0;"
        )
    conn.close()


def assert_check_passes(cli: Cli, **settings: str) -> None:
    out = cli.ok("ledger", "check", **settings)
    assert "OK" in out
    assert "BROKEN" not in out
    assert "3 transfers, 7 entries, 5 accounts" in out
    report = cli.json("ledger", "check", **settings)
    assert report["ok"] is True
    assert report["violations"] == []
    assert report["violation_count"] == 0
    assert report["total_debits"] == report["total_credits"] == str(9 * SYNOR // 2)


def assert_check_fails(cli: Cli, **settings: str) -> None:
    done = cli.run("ledger", "check", **settings)
    assert done.returncode == 1
    assert "BROKEN" in done.stdout
    assert "dep/acct_1:1" in done.stdout
    assert "Traceback" not in done.stderr

    as_json = cli.run("ledger", "check", "--json", **settings)
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert report["violation_count"] == len(report["violations"]) >= 2
    codes = {v["code"] for v in report["violations"]}
    assert {"fingerprint", "unbalanced"} <= codes
    assert any("dep/acct_1:1" in v["where"] for v in report["violations"])
    assert report["total_debits"] != report["total_credits"]


def test_ledger_check_sqlite_ok_then_tampered(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    assert_check_passes(cli)
    tamper_sqlite(cli.db_file)
    assert_check_fails(cli)


def test_ledger_check_on_an_empty_ledger(cli: Cli) -> None:
    report = cli.json("ledger", "check")
    assert report["ok"] is True
    assert (report["transfers"], report["entries"], report["accounts"]) == (0, 0, 0)


@pytest.mark.postgres
def test_ledger_check_postgres_ok_then_tampered(cli: Cli, postgres_url: str) -> None:
    populate(Settings(data_dir=cli.data_dir, database_url=postgres_url))
    pg = {"SYNOR_DATABASE_URL": postgres_url}

    status = cli.ok("db", "status", **pg)
    assert "postgresql" in status
    assert "up to date" in status
    assert_check_passes(cli, **pg)
    assert not cli.db_file.exists(), "a PostgreSQL setup must not create a SQLite file"

    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE ledger_entries DISABLE TRIGGER ALL"))
            updated = conn.execute(
                text("UPDATE ledger_entries SET amount = 999 WHERE seq = 1 AND leg = 0")
            )
            assert updated.rowcount == 1
    finally:
        engine.dispose()
    assert_check_fails(cli, **pg)


def test_ledger_statement_pages_newest_first(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    # acct_1:prepaid: deposit 1.5 (credit), then the invoice settles 1 (debit): 0.5 left.
    first = cli.json("ledger", "statement", "acct_1:prepaid", "--limit", "1")
    assert [e["transfer"] for e in first["entries"]] == ["inv/2026-11/acct_1"]
    assert first["entries"][0]["balance_after_synor"] == "0.5"
    assert first["next_before"] == f"{first['entries'][0]['seq']}:{first['entries'][0]['leg']}"
    second = cli.json(
        "ledger", "statement", "acct_1:prepaid", "--limit", "1", "--before", first["next_before"]
    )
    assert [e["transfer"] for e in second["entries"]] == ["dep/acct_1:1"]
    assert second["entries"][0]["balance_after_synor"] == "1.5"
    table = cli.ok("ledger", "statement", "acct_1:prepaid", COLUMNS="200")
    assert "inv/2026-11/acct_1" in table
    assert "dep/acct_1:1" in table


def test_ledger_statement_refuses_a_bad_cursor_and_an_unknown_account(
    ledger_cli: tuple[Cli, datetime],
) -> None:
    cli, _ = ledger_cli
    bad = cli.run("ledger", "statement", "acct_1:prepaid", "--before", "yesterday")
    assert bad.returncode == 2
    assert "--before" in bad.stderr
    unknown = cli.run("ledger", "statement", "acct_9:prepaid")
    assert unknown.returncode == 1
    assert "acct_9:prepaid does not exist" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_ledger_transfer_shows_its_entries(ledger_cli: tuple[Cli, datetime]) -> None:
    cli, _ = ledger_cli
    document = cli.json("ledger", "transfer", "inv/2026-11/acct_1")
    assert document["amount"] == str(SYNOR)
    assert [(e["account"], e["side"], e["amount_synor"]) for e in document["entries"]] == [
        ("acct_1:prepaid", "debit", "1"),
        ("revenue", "credit", "0.7"),
        ("node_7:payable", "credit", "0.3"),
    ]
    text = cli.ok("ledger", "transfer", "inv/2026-11/acct_1", COLUMNS="200")
    assert "invoice.settle" in text
    assert "node_7:payable" in text
    missing = cli.run("ledger", "transfer", "nope")
    assert missing.returncode == 1
    assert "transfer nope does not exist" in missing.stderr
