"""``synor cost estimate`` and ``POST /v1/estimates``, end to end, and the promise that an
estimate equals the invoice for the same usage, to the base unit, across the golden scenarios."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from synor_economics.catalog import load_default_catalog
from synor_economics.domain.invoice import LineKind
from synor_economics.domain.period import Period
from synor_economics.services.estimate import estimate
from synor_economics.services.simulation import load_document, read_simulation, run_simulation
from tests.e2e.conftest import Cli

SYNOR = 10**18
SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))
FLAGS = ("--storage-gb", "500", "--cpu-core-hours", "720", "--gpu-hours", "10", "--queries", "30M")


def units(text: str) -> str:
    return str(int(Decimal(text) * SYNOR))


def test_flags_in_natural_units_price_like_the_book(cli: Cli) -> None:
    document = cli.json("cost", "estimate", *FLAGS, "--rate", "0.25", "--period", "2026-11")
    # 500 GB-month × 0.02 = 10; 720 core-hours × 0.02 = 14.4; 10 GPU-hours × 0.5 = 5;
    # 30M queries = 30 × 0.01 = 0.3. Total 29.7 SYNOR a month, 356.4 a year;
    # at 0.25 USD per SYNOR: 7.425 USD → 7.42 (HALF_EVEN), 89.10 a year.
    assert document["quantities"] == {
        "compute.cpu": "720",
        "compute.gpu.rtx4090": "10",
        "database.queries": "30",
        "storage.storage": "500",
    }
    assert [(line["resource"], line["amount"]) for line in document["lines"]] == [
        ("compute.cpu", units("14.4")),
        ("compute.gpu.rtx4090", units("5")),
        ("database.queries", units("0.3")),
        ("storage.storage", units("10")),
    ]
    assert (document["total"], document["total_usd"]) == (units("29.7"), "7.42")
    assert (document["yearly"], document["yearly_usd"]) == (units("356.4"), "89.10")
    assert document["period"]["label"] == "2026-11"
    # the price book offers 5%, 15% and 30% off for 1, 3 and 12 months
    options = {o["option"]: (o["monthly"], o["saving_percent"]) for o in document["options"]}
    assert options == {
        "on-demand": (units("29.7"), "0"),
        "reserved 1 month": (units("28.215"), "5"),
        "reserved 3 months": (units("25.245"), "15"),
        "reserved 12 months": (units("20.79"), "30"),
    }


def test_table_csv_and_file(cli: Cli, tmp_path: Path) -> None:
    table = cli.ok("cost", "estimate", *FLAGS)
    assert "29.7" in table
    assert "reserved 12 months" in table
    assert "--rate" in table  # no rate: it says how to get USD
    rows = list(csv.DictReader(io.StringIO(cli.ok("cost", "estimate", *FLAGS, "--csv"))))
    assert next(r["resource"] for r in rows if r["row"] == "option") == "on-demand"
    assert next(r for r in rows if r["row"] == "option")["monthly_synor"] == "29.7"
    usage = tmp_path / "usage.yaml"
    usage.write_text(
        'period: {start: "2026-02-01T00:00:00Z", end: "2026-03-01T00:00:00Z"}\n'
        'oracle: {synor_usd: "2"}\n'
        'compute.cpu: "720"\n'
        'storage.storage: "500"\n'
        'database.queries: "30"\n'
    )
    document = cli.json("cost", "estimate", "--file", str(usage))
    assert (document["total"], document["total_usd"]) == (units("24.7"), "49.40")
    assert document["period"]["label"] == "2026-02"
    # without --rate or an oracle in the file: the rate invoices lock, when one is configured
    configured = cli.json("cost", "estimate", *FLAGS, SYNOR_SYNOR_USD="0.5")
    assert configured["total_usd"] == "14.85"  # 29.7 × 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--queries", "30X"), "not a quantity"),
        (("--usage", "compute.cpux=1"), "did you mean 'compute.cpu'"),
        ((), "give some usage"),
        (("--cpu-core-hours", "1", "--rate", "-1"), "positive"),
    ],
)
def test_bad_input_is_named(cli: Cli, args: tuple[str, ...], message: str) -> None:
    done = cli.run("cost", "estimate", *args)
    assert done.returncode != 0
    assert message in done.stderr + done.stdout


def test_the_api_gives_the_cli_document(cli: Cli, client: TestClient) -> None:
    body = {
        "period": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        "oracle": {"synor_usd": "0.25"},
        "storage.storage": "500",
        "compute.cpu": "720",
        "compute.gpu.rtx4090": "10",
        "database.queries": "30",
    }
    answer = client.post("/v1/estimates", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == cli.json(
        "cost", "estimate", *FLAGS, "--rate", "0.25", "--period", "2026-11"
    )
    unknown = client.post("/v1/estimates", json={"compute.cpux": "1"})
    assert unknown.status_code == 422
    assert "compute.cpu" in unknown.json()["error"]["message"]
    assert client.post("/v1/estimates", content=b"{nope").status_code == 400


def test_the_api_runs_simulations(client: TestClient) -> None:
    document = load_document(SCENARIOS[0])
    answer = client.post("/v1/simulations", json=document)
    assert answer.status_code == 200, answer.text
    assert answer.json()["invoices"][0]["total_due"] == "520000000000000000"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_an_estimate_equals_the_invoice_for_the_same_usage(scenario: Path) -> None:
    """Every usage line of every scenario invoice is priced identically by the estimate; an
    account without terms gets an estimate total equal to its invoice subtotal."""
    simulation = read_simulation(load_document(scenario), load_default_catalog())
    period: Period = simulation.period
    for invoice in run_simulation(simulation).invoices:
        rated = invoice.rated
        usage = {
            line.resource: line.quantity for line in rated.lines if line.kind is LineKind.USAGE
        }
        quote = estimate(simulation.catalog, usage, period, simulation.rate).on_demand
        expected = [(line.resource, line.amount) for line in rated.lines if line.resource in usage]
        assert [(line.resource, line.amount) for line in quote.lines] == expected
        terms = simulation.accounts[invoice.account]
        if not (terms.discounts or terms.commitments or terms.uptime):
            assert quote.subtotal == max(rated.charges, 0)
        assert all(isinstance(q, Fraction) for q in usage.values())
