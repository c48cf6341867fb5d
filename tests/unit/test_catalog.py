"""The price book: resources, meters, effective-dated rows, the TOML loader and the default book."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from importlib import resources as package_data
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synor_economics.catalog import (
    load_catalog,
    load_default_catalog,
    parse_catalog,
    parse_price_row,
)
from synor_economics.domain.catalog import Catalog, MeterKind, PriceRow, Resource
from synor_economics.domain.errors import CatalogError, MoneyError
from synor_economics.domain.pricing import Currency, Graduated, Package, PerUnit, Tier, Volume

D = Decimal
F = Fraction
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)
NOVEMBER_SECONDS = 30 * 24 * 3600
DECEMBER_SECONDS = 31 * 24 * 3600


def per_unit(price: str, when: datetime = JAN_1, **kwargs: Any) -> PriceRow:
    return PriceRow(when, PerUnit(unit_price=D(price), **kwargs))


def resource(
    resource_id: str = "compute.cpu",
    *,
    meter: MeterKind = MeterKind.COUNTER,
    divisor: int = 3600,
    allows_corrections: bool = False,
    prices: tuple[PriceRow, ...] = (per_unit("0.02"),),
) -> Resource:
    return Resource(
        id=resource_id,
        meter=meter,
        event_unit="units",
        price_unit="unit",
        divisor=divisor,
        description="",
        allows_corrections=allows_corrections,
        prices=prices,
    )


STORAGE = resource("storage.storage", meter=MeterKind.GAUGE, divisor=10**9)
CPU = resource()


# --- billable quantity -----------------------------------------------------------------------


def test_counter_divides_the_sum_by_the_divisor() -> None:
    # 720000 core-seconds / 3600 = 200 core-hours (SPEC §10 example)
    assert CPU.billable_quantity(F(720_000), None) == 200


def test_counter_quantity_stays_exact_when_it_does_not_terminate() -> None:
    # 1000 / 3600 = 5/18 core-hours (0.2777…)
    assert CPU.billable_quantity(F(1000), None) == F(5, 18)


@pytest.mark.parametrize("period_seconds", [NOVEMBER_SECONDS, DECEMBER_SECONDS, 28 * 24 * 3600])
def test_gauge_held_all_period_is_that_many_unit_months(period_seconds: int) -> None:
    # 100 GB = 10**11 bytes held for the whole period: ∫ = 10**11 × period_seconds byte-seconds;
    # / (10**9 × period_seconds) = 100 GB-month, whatever the month's length
    integral = F(100 * 10**9 * period_seconds)
    assert STORAGE.billable_quantity(integral, period_seconds) == 100


def test_gauge_held_half_the_period_is_half() -> None:
    # 100 GB for 15 of November's 30 days → 50 GB-month
    integral = F(100 * 10**9 * (NOVEMBER_SECONDS // 2))
    assert STORAGE.billable_quantity(integral, NOVEMBER_SECONDS) == 50


@pytest.mark.parametrize("period_seconds", [None, 0, -1, True])
def test_gauge_needs_a_positive_period(period_seconds: Any) -> None:
    with pytest.raises(MoneyError, match="period_seconds"):
        STORAGE.billable_quantity(F(1), period_seconds)


def test_negative_raw_quantity_only_with_corrections() -> None:
    with pytest.raises(MoneyError, match="does not allow corrections"):
        CPU.billable_quantity(F(-3600), None)
    correctable = resource(allows_corrections=True)
    assert correctable.billable_quantity(F(-3600), None) == -1


def test_billable_quantity_refuses_floats() -> None:
    with pytest.raises(MoneyError, match="not float"):
        CPU.billable_quantity(cast(Any, 3600.0), None)


@given(
    st.integers(min_value=0, max_value=10**15),
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=1, max_value=10**8),
)
def test_gauge_level_held_all_period_bills_level_over_divisor(
    level: int, divisor: int, period_seconds: int
) -> None:
    gauge = resource("x.y", meter=MeterKind.GAUGE, divisor=divisor)
    assert gauge.billable_quantity(F(level * period_seconds), period_seconds) == F(level, divisor)


# --- resources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_id", "service"),
    [("compute.gpu.rtx4090", "compute"), ("storage.storage", "storage"), ("a.b", "a")],
)
def test_service_is_the_part_before_the_first_dot(resource_id: str, service: str) -> None:
    assert resource(resource_id).service == service


@pytest.mark.parametrize(
    "bad_id", ["compute", "Compute.cpu", "compute..cpu", "compute.cpu.", ".cpu", "compute.1gpu", ""]
)
def test_resource_ids_are_lowercase_dotted_segments(bad_id: str) -> None:
    with pytest.raises(CatalogError, match="lowercase dotted") as caught:
        resource(bad_id)
    assert caught.value.where == "id"


def test_gauge_cannot_allow_corrections() -> None:
    with pytest.raises(CatalogError) as caught:
        resource(meter=MeterKind.GAUGE, allows_corrections=True)
    assert caught.value.where == "allows_corrections"


@pytest.mark.parametrize("divisor", [0, -1, True, cast(Any, 3600.0), cast(Any, "3600")])
def test_divisor_is_a_positive_integer(divisor: Any) -> None:
    with pytest.raises(CatalogError, match="positive integer") as caught:
        resource(divisor=divisor)
    assert caught.value.where == "divisor"


def test_a_resource_needs_a_price() -> None:
    with pytest.raises(CatalogError) as caught:
        resource(prices=())
    assert caught.value.where == "prices"


def test_rows_must_be_in_date_order_without_duplicates() -> None:
    with pytest.raises(CatalogError, match="duplicate effective_from") as caught:
        resource(prices=(per_unit("1"), per_unit("2")))
    assert caught.value.where == "prices[1].effective_from"
    with pytest.raises(CatalogError, match="date order") as caught:
        resource(prices=(per_unit("1", NOV_1), per_unit("2", JAN_1)))
    assert caught.value.where == "prices[1].effective_from"


@pytest.mark.parametrize(
    "when",
    [datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))],
    ids=["naive", "plus-two"],
)
def test_price_rows_are_dated_in_utc(when: datetime) -> None:
    with pytest.raises(CatalogError, match="UTC") as caught:
        per_unit("1", when)
    assert caught.value.where == "effective_from"


# --- effective-dated selection ------------------------------------------------------------------

PRICE_CHANGE = resource(prices=(per_unit("0.02", JAN_1), per_unit("0.03", NOV_15)))


@pytest.mark.parametrize(
    ("when", "price"),
    [
        (JAN_1, "0.02"),  # the first row is in effect from its instant on
        (NOV_1, "0.02"),  # a November period starts before the change: old price all month
        (NOV_15 - timedelta(microseconds=1), "0.02"),
        (NOV_15, "0.03"),  # effective_from is inclusive
        (datetime(2027, 6, 1, tzinfo=UTC), "0.03"),
    ],
)
def test_price_at_picks_the_latest_row_in_effect(when: datetime, price: str) -> None:
    row = PRICE_CHANGE.price_at(when)
    assert isinstance(row.model, PerUnit)
    assert row.model.unit_price == D(price)


def test_no_price_before_the_first_row_names_the_resource() -> None:
    with pytest.raises(CatalogError, match="no price in effect") as caught:
        PRICE_CHANGE.price_at(datetime(2025, 12, 31, tzinfo=UTC))
    assert caught.value.where == "compute.cpu"


def test_price_at_refuses_a_naive_instant() -> None:
    with pytest.raises(CatalogError, match="UTC"):
        PRICE_CHANGE.price_at(datetime(2026, 11, 1))


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=8, unique=True),
    st.integers(min_value=0, max_value=1100),
)
def test_price_at_is_the_latest_start_not_after_the_instant(starts: list[int], day: int) -> None:
    rows = tuple(per_unit(str(start), JAN_1 + timedelta(days=start)) for start in sorted(starts))
    dated = resource(prices=rows)
    when = JAN_1 + timedelta(days=day)
    in_effect = [row for row in rows if row.effective_from <= when]
    if not in_effect:
        with pytest.raises(CatalogError):
            dated.price_at(when)
    else:
        assert dated.price_at(when) == in_effect[-1]


# --- catalogs -----------------------------------------------------------------------------------

SMALL = Catalog(
    "t1",
    "digest",
    {
        "storage.storage": STORAGE,
        "compute.cpu": CPU,
        "compute.memory": resource("compute.memory"),
    },
)


def test_catalog_iterates_in_id_order_and_lists_services() -> None:
    assert [r.id for r in SMALL] == ["compute.cpu", "compute.memory", "storage.storage"]
    assert list(SMALL.resources) == ["compute.cpu", "compute.memory", "storage.storage"]
    assert SMALL.services() == ("compute", "storage")
    assert len(SMALL) == 3
    assert "compute.cpu" in SMALL
    assert "compute.gpu" not in SMALL


def test_unknown_resource_is_named_with_a_suggestion() -> None:
    assert SMALL.resource("compute.cpu") is CPU
    with pytest.raises(CatalogError, match=r"did you mean 'compute\.cpu'\?") as caught:
        SMALL.resource("compute.cpus")
    assert caught.value.where == "compute.cpus"


def test_catalog_resources_are_read_only() -> None:
    with pytest.raises(TypeError):
        cast(Any, SMALL.resources)["x.y"] = CPU


def test_catalog_keys_must_match_resource_ids() -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog("t", "d", {"compute.gpu": CPU})
    assert caught.value.where == "compute.gpu"


def test_with_rows_replaces_only_the_named_resources() -> None:
    free_first = PriceRow(JAN_1, Graduated(tiers=(Tier(D("100"), D("0")), Tier(None, D("0.02")))))
    changed = SMALL.with_rows({"compute.cpu": free_first})
    assert changed.resource("compute.cpu").prices == (free_first,)
    assert changed.resource("compute.cpu").meter is MeterKind.COUNTER
    assert changed.resource("storage.storage") is STORAGE
    assert SMALL.resource("compute.cpu") is CPU  # the original is untouched
    assert changed.version == SMALL.version
    assert changed.digest != SMALL.digest
    assert changed.digest == SMALL.with_rows({"compute.cpu": free_first}).digest
    assert SMALL.with_rows({}).digest != changed.digest


def test_with_rows_refuses_unknown_resources() -> None:
    with pytest.raises(CatalogError, match="unknown resource") as caught:
        SMALL.with_rows({"compute.gpu.h100": per_unit("1")})
    assert caught.value.where == "compute.gpu.h100"


# --- the default price book (SPEC §3) -----------------------------------------------------------

SpecRow = tuple[str, str, str, str, int, str]
G = 10**9
M = 10**6
SPEC_TABLE: list[SpecRow] = [
    # id, meter, event unit, price unit, divisor, SYNOR per price unit
    ("storage.storage", "gauge", "bytes", "GB-month", G, "0.02"),
    ("storage.retrieval", "counter", "bytes", "GB", G, "0.01"),
    ("storage.deal", "counter", "deals", "deal", 1, "0.001"),
    ("hosting.bandwidth", "counter", "bytes", "GB", G, "0.05"),
    ("hosting.custom_domain", "gauge", "domains", "domain-month", 1, "0.50"),
    ("hosting.ssl_certificate", "gauge", "certificates", "certificate-month", 1, "0"),
    ("database.storage", "gauge", "bytes", "GB-month", G, "0.10"),
    ("database.queries", "counter", "queries", "1M queries", M, "0.01"),
    ("database.vector_search", "counter", "searches", "1M searches", M, "0.05"),
    ("compute.cpu", "counter", "core-seconds", "core-hour", 3600, "0.02"),
    ("compute.gpu.rtx4090", "counter", "gpu-seconds", "GPU-hour", 3600, "0.50"),
    ("compute.memory", "counter", "GB-seconds", "GB-hour", 3600, "0.005"),
    ("compute.serverless", "counter", "invocations", "1M invocations", M, "0.20"),
    ("network.egress", "counter", "bytes", "GB", G, "0"),
]


def test_default_catalog_lists_exactly_the_spec_resources() -> None:
    assert sorted(r.id for r in load_default_catalog()) == sorted(row[0] for row in SPEC_TABLE)
    assert load_default_catalog().services() == (
        "compute",
        "database",
        "hosting",
        "network",
        "storage",
    )


@pytest.mark.parametrize("spec_row", SPEC_TABLE, ids=[row[0] for row in SPEC_TABLE])
def test_default_catalog_matches_the_spec_table(spec_row: SpecRow) -> None:
    resource_id, meter, event_unit, price_unit, divisor, price = spec_row
    found = load_default_catalog().resource(resource_id)
    assert (found.meter, found.event_unit, found.price_unit, found.divisor) == (
        MeterKind(meter),
        event_unit,
        price_unit,
        divisor,
    )
    assert found.description
    assert len(found.prices) == 1
    row = found.price_at(JAN_1)
    assert row.model == PerUnit(unit_price=D(price))
    assert row.currency is Currency.SYNOR
    assert not (found.meter is MeterKind.GAUGE and found.allows_corrections)


def test_default_catalog_identity_is_its_version_and_file_digest() -> None:
    catalog = load_default_catalog()
    raw = package_data.files("synor_economics.catalog").joinpath("default.toml").read_bytes()
    assert catalog.version == "2026.11.1"
    assert catalog.digest == hashlib.sha256(raw).hexdigest()
    assert load_default_catalog() is catalog  # parsed once


def test_default_catalog_rates_the_spec_example() -> None:
    # 720000 core-seconds → 200 core-hours × 0.02 = 4 SYNOR
    cpu = load_default_catalog().resource("compute.cpu")
    assert cpu.price_at(NOV_1).model.exact_amount(cpu.billable_quantity(F(720_000), None)) == 4


def test_simulation_overrides_parse_and_replace_default_rows() -> None:
    # SPEC §10: graduated compute.cpu (100 free) and a USD-pegged custom domain
    overrides: dict[str, dict[str, Any]] = {
        "compute.cpu": {
            "model": "graduated",
            "tiers": [{"up_to": "100", "unit_price": "0"}, {"up_to": None, "unit_price": "0.02"}],
        },
        "hosting.custom_domain": {"currency": "USD", "unit_price": "0.125"},
    }
    rows = {
        key: parse_price_row(value, where=f"catalog.{key}", default_effective_from=NOV_1)
        for key, value in overrides.items()
    }
    catalog = load_default_catalog().with_rows(rows)
    cpu = catalog.resource("compute.cpu").price_at(NOV_1)
    # 200 core-hours: 100 × 0 + 100 × 0.02 = 2
    assert cpu.model.exact_amount(F(200)) == 2
    domain = catalog.resource("hosting.custom_domain").price_at(NOV_1)
    assert domain.currency is Currency.USD
    assert domain.effective_from == NOV_1
    # half a domain-month × 0.125 USD = 0.0625 USD
    assert domain.model.exact_amount(F(1, 2)) == F(1, 16)


# --- the TOML format ----------------------------------------------------------------------------

EVERY_MODEL = """
version = "test.1"

[[resources]]
id = "compute.cpu"
meter = "counter"
event_unit = "core-seconds"
price_unit = "core-hour"
divisor = 3600
description = "CPU"
allows_corrections = true

[[resources.prices]]
effective_from = "2026-01-01T00:00:00Z"
unit_price = "0.02"

[[resources.prices]]
effective_from = 2026-06-01T00:00:00Z
model = "graduated"
minimum = "1"
tiers = [{up_to = "100", unit_price = "0"}, {unit_price = "0.02"}]

[[resources]]
id = "database.queries"
meter = "counter"
event_unit = "queries"
price_unit = "1M queries"
divisor = 1_000_000

[[resources.prices]]
effective_from = "2026-01-01T00:00:00Z"
model = "volume"
currency = "USD"
tiers = [{up_to = "10", unit_price = "0.01"}, {unit_price = "0.005"}]

[[resources]]
id = "storage.deal"
meter = "counter"
event_unit = "deals"
price_unit = "deal"
divisor = 1

[[resources.prices]]
effective_from = "2026-01-01T00:00:00.5+00:00"
model = "package"
package_size = "10"
package_price = "0.005"
"""


def test_every_model_is_representable_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "book.toml"
    path.write_text(EVERY_MODEL, encoding="utf-8")
    catalog = load_catalog(path)
    assert catalog.version == "test.1"
    assert catalog.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    cpu = catalog.resource("compute.cpu")
    assert cpu.allows_corrections
    assert cpu.prices[0].model == PerUnit(unit_price=D("0.02"))
    assert cpu.prices[1] == PriceRow(
        datetime(2026, 6, 1, tzinfo=UTC),
        Graduated(tiers=(Tier(D("100"), D("0")), Tier(None, D("0.02"))), minimum=D("1")),
    )
    queries = catalog.resource("database.queries")
    assert not queries.allows_corrections
    assert queries.description == ""
    assert queries.prices[0].model == Volume(
        tiers=(Tier(D("10"), D("0.01")), Tier(None, D("0.005"))), currency=Currency.USD
    )
    deal = catalog.resource("storage.deal").prices[0]
    assert deal.effective_from == datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    assert deal.model == Package(package_size=D("10"), package_price=D("0.005"))


def good_document() -> dict[str, Any]:
    return tomllib.loads(EVERY_MODEL)


Edit = Callable[[dict[str, Any]], object]
CPU_ROW = "resources[0](compute.cpu).prices[1]"

BROKEN_DOCUMENTS: list[tuple[str, Edit, str, str]] = [
    ("missing version", lambda d: d.pop("version"), "version", "missing"),
    ("unknown top key", lambda d: d.update(owner="x"), "owner", "unknown key"),
    ("no resources", lambda d: d.update(resources=[]), "resources", "must not be empty"),
    ("resources table", lambda d: d.update(resources={}), "resources", "list of tables"),
    (
        "missing meter",
        lambda d: d["resources"][1].pop("meter"),
        "resources[1](database.queries).meter",
        "missing",
    ),
    (
        "unknown resource key",
        lambda d: d["resources"][2].update(unit="x"),
        "resources[2](storage.deal).unit",
        "unknown key in a resource",
    ),
    (
        "bad id syntax",
        lambda d: d["resources"][1].update(id="Database.Queries"),
        "resources[1](Database.Queries).id",
        "lowercase dotted",
    ),
    (
        "id not a string",
        lambda d: d["resources"][1].update(id=7),
        "resources[1].id",
        "lowercase dotted",
    ),
    (
        "duplicate id",
        lambda d: d["resources"][2].update(id="compute.cpu"),
        "resources[2](compute.cpu).id",
        r"duplicate resource id, first defined at resources\[0\]",
    ),
    (
        "unknown meter",
        lambda d: d["resources"][0].update(meter="level"),
        "resources[0](compute.cpu).meter",
        "unknown meter kind 'level'; expected one of: counter, gauge",
    ),
    (
        "zero divisor",
        lambda d: d["resources"][0].update(divisor=0),
        "resources[0](compute.cpu).divisor",
        "positive integer",
    ),
    (
        "string divisor",
        lambda d: d["resources"][0].update(divisor="3600"),
        "resources[0](compute.cpu).divisor",
        "positive integer",
    ),
    (
        "non-bool corrections",
        lambda d: d["resources"][0].update(allows_corrections="yes"),
        "resources[0](compute.cpu).allows_corrections",
        "must be a bool",
    ),
    (
        "gauge with corrections",
        lambda d: d["resources"][0].update(meter="gauge"),
        "resources[0](compute.cpu).allows_corrections",
        "level cannot be negative",
    ),
    (
        "event unit not text",
        lambda d: d["resources"][0].update(event_unit=3),
        "resources[0](compute.cpu).event_unit",
        "must be a string",
    ),
    (
        "no prices",
        lambda d: d["resources"][0].update(prices=[]),
        "resources[0](compute.cpu).prices",
        "at least one price row",
    ),
    (
        "row not a table",
        lambda d: d["resources"][0]["prices"].append("0.02"),
        "resources[0](compute.cpu).prices[2]",
        "must be a table",
    ),
    (
        "bad model",
        lambda d: d["resources"][0]["prices"][1].update(model="tiered"),
        f"{CPU_ROW}.model",
        "unknown model 'tiered'; expected one of: per_unit, graduated, volume, package",
    ),
    (
        "tiers on a per_unit row",
        lambda d: d["resources"][0]["prices"][0].update(tiers=[]),
        "resources[0](compute.cpu).prices[0].tiers",
        "unknown key in a per_unit row",
    ),
    (
        "graduated without tiers",
        lambda d: d["resources"][0]["prices"][1].pop("tiers"),
        f"{CPU_ROW}.tiers",
        "missing: a graduated row needs it",
    ),
    (
        "missing effective_from",
        lambda d: d["resources"][0]["prices"][0].pop("effective_from"),
        "resources[0](compute.cpu).prices[0].effective_from",
        "missing",
    ),
    (
        "unparsable date",
        lambda d: d["resources"][0]["prices"][0].update(effective_from="1 Jan 2026"),
        "resources[0](compute.cpu).prices[0].effective_from",
        "RFC 3339",
    ),
    (
        "impossible date",
        lambda d: d["resources"][0]["prices"][0].update(effective_from="2026-02-30T00:00:00Z"),
        "resources[0](compute.cpu).prices[0].effective_from",
        "not a valid timestamp",
    ),
    (
        "non-UTC date",
        lambda d: d["resources"][0]["prices"][0].update(effective_from="2026-01-01T00:00:00+01:00"),
        "resources[0](compute.cpu).prices[0].effective_from",
        "must be a UTC datetime",
    ),
    (
        "date without a zone",
        lambda d: d["resources"][0]["prices"][0].update(effective_from="2026-01-01T00:00:00"),
        "resources[0](compute.cpu).prices[0].effective_from",
        "RFC 3339",
    ),
    (
        "duplicate effective_from",
        lambda d: d["resources"][0]["prices"][1].update(effective_from="2026-01-01T00:00:00Z"),
        f"{CPU_ROW}.effective_from",
        "duplicate effective_from",
    ),
    (
        "rows out of order",
        lambda d: d["resources"][0]["prices"][1].update(effective_from="2025-01-01T00:00:00Z"),
        f"{CPU_ROW}.effective_from",
        "date order",
    ),
    (
        "negative price",
        lambda d: d["resources"][0]["prices"][0].update(unit_price="-0.02"),
        "resources[0](compute.cpu).prices[0].unit_price",
        "must not be negative",
    ),
    (
        "exponent price",
        lambda d: d["resources"][0]["prices"][0].update(unit_price="2e-2"),
        "resources[0](compute.cpu).prices[0].unit_price",
        "not a plain decimal",
    ),
    (
        "boolean price",
        lambda d: d["resources"][0]["prices"][0].update(unit_price=True),
        "resources[0](compute.cpu).prices[0].unit_price",
        "must be a decimal string",
    ),
    (
        "negative minimum",
        lambda d: d["resources"][0]["prices"][1].update(minimum="-1"),
        f"{CPU_ROW}.minimum",
        "must not be negative",
    ),
    (
        "unknown currency",
        lambda d: d["resources"][0]["prices"][1].update(currency="EUR"),
        f"{CPU_ROW}.currency",
        "unknown currency 'EUR'; expected one of: SYNOR, USD",
    ),
    (
        "unsorted tiers",
        lambda d: d["resources"][0]["prices"][1]["tiers"].insert(
            1, {"up_to": "50", "unit_price": "0.01"}
        ),
        f"{CPU_ROW}.tiers[1].up_to",
        r"greater than the previous tier's up_to \(100\)",
    ),
    (
        "last tier bounded",
        lambda d: d["resources"][0]["prices"][1]["tiers"][1].update(up_to="1000"),
        f"{CPU_ROW}.tiers[1].up_to",
        "last tier must be open-ended",
    ),
    (
        "open tier in the middle",
        lambda d: d["resources"][0]["prices"][1]["tiers"].insert(0, {"unit_price": "1"}),
        f"{CPU_ROW}.tiers[0].up_to",
        "only the last tier may be open-ended",
    ),
    (
        "zero up_to",
        lambda d: d["resources"][0]["prices"][1]["tiers"][0].update(up_to="0"),
        f"{CPU_ROW}.tiers[0].up_to",
        "greater than zero",
    ),
    (
        "tier without price",
        lambda d: d["resources"][0]["prices"][1]["tiers"][1].pop("unit_price"),
        f"{CPU_ROW}.tiers[1].unit_price",
        "missing: a tier needs it",
    ),
    (
        "unknown tier key",
        lambda d: d["resources"][0]["prices"][1]["tiers"][1].update(from_="100"),
        f"{CPU_ROW}.tiers[1].from_",
        "unknown key in a tier",
    ),
    (
        "empty tiers",
        lambda d: d["resources"][0]["prices"][1].update(tiers=[]),
        f"{CPU_ROW}.tiers",
        "at least one tier",
    ),
    (
        "zero package size",
        lambda d: d["resources"][2]["prices"][0].update(package_size="0"),
        "resources[2](storage.deal).prices[0].package_size",
        "greater than zero",
    ),
]


@pytest.mark.parametrize(
    ("edit", "where", "problem"),
    [case[1:] for case in BROKEN_DOCUMENTS],
    ids=[case[0] for case in BROKEN_DOCUMENTS],
)
def test_every_loader_error_names_its_place(edit: Edit, where: str, problem: str) -> None:
    document = good_document()
    edit(document)
    with pytest.raises(CatalogError, match=problem) as caught:
        parse_catalog(document, digest="d")
    assert caught.value.where == where
    assert str(caught.value).startswith(f"{where}: ")


def test_the_good_document_parses() -> None:
    assert len(parse_catalog(good_document(), digest="d")) == 3


# Every place a number is written, with a float instead of an exact string or integer.
FLOAT_SPOTS = [
    ('unit_price = "0.02"', "unit_price = 0.02", "resources[0](compute.cpu).prices[0].unit_price"),
    ('minimum = "1"', "minimum = 1.0", f"{CPU_ROW}.minimum"),
    ('up_to = "100"', "up_to = 100.0", f"{CPU_ROW}.tiers[0].up_to"),
    ('unit_price = "0"}', "unit_price = 0.0}", f"{CPU_ROW}.tiers[0].unit_price"),
    ("divisor = 3600", "divisor = 3600.0", "resources[0](compute.cpu).divisor"),
    (
        'package_size = "10"',
        "package_size = 1e1",
        "resources[2](storage.deal).prices[0].package_size",
    ),
    (
        'package_price = "0.005"',
        "package_price = 0.005",
        "resources[2](storage.deal).prices[0].package_price",
    ),
]


@pytest.mark.parametrize(("exact", "inexact", "where"), FLOAT_SPOTS)
def test_no_toml_float_is_accepted(exact: str, inexact: str, where: str) -> None:
    assert exact in EVERY_MODEL
    document = tomllib.loads(EVERY_MODEL.replace(exact, inexact, 1))
    with pytest.raises(CatalogError, match="is a float") as caught:
        parse_catalog(document, digest="d")
    assert caught.value.where == where


def test_integers_are_exact_enough_for_prices() -> None:
    document = tomllib.loads(EVERY_MODEL.replace('unit_price = "0.02"', "unit_price = 2", 1))
    row = parse_catalog(document, digest="d").resource("compute.cpu").prices[0]
    assert row.model == PerUnit(unit_price=D(2))


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('version = "1"\n[[resources]\n', encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid TOML") as caught:
        load_catalog(path)
    assert caught.value.where == str(path)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read") as caught:
        load_catalog(tmp_path / "absent.toml")
    assert caught.value.where == str(tmp_path / "absent.toml")


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'version = "caf\xe9"\n')
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog(path)


# --- parse_price_row (simulation overrides) -----------------------------------------------------


def test_row_defaults_are_per_unit_synor_and_the_given_instant() -> None:
    row = parse_price_row({"unit_price": "0.5"}, where="catalog.x", default_effective_from=NOV_1)
    assert row == PriceRow(NOV_1, PerUnit(unit_price=D("0.5")))


def test_row_may_carry_its_own_date_as_a_datetime() -> None:
    data = {"unit_price": "1", "effective_from": NOV_15}
    assert parse_price_row(data, where="r", default_effective_from=NOV_1).effective_from == NOV_15


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"unit_price": 0.125}, "catalog.x.unit_price"),
        ({"unit_price": "1", "minimum": 0.5}, "catalog.x.minimum"),
        (
            {"model": "volume", "tiers": [{"up_to": 10.0, "unit_price": "1"}]},
            "catalog.x.tiers[0].up_to",
        ),
        ({"model": "graduated", "tiers": [{"unit_price": 0.02}]}, "catalog.x.tiers[0].unit_price"),
        (
            {"model": "package", "package_size": 2.5, "package_price": "1"},
            "catalog.x.package_size",
        ),
        (
            {"model": "package", "package_size": "1", "package_price": 1.5},
            "catalog.x.package_price",
        ),
    ],
)
def test_no_float_is_accepted_in_an_override(data: dict[str, Any], where: str) -> None:
    with pytest.raises(CatalogError, match="is a float") as caught:
        parse_price_row(data, where="catalog.x", default_effective_from=NOV_1)
    assert caught.value.where == where


@given(
    st.sampled_from(["unit_price", "minimum"]),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_float_anywhere_in_a_row_is_refused(key: str, value: float) -> None:
    data: dict[str, Any] = {"unit_price": "1", key: value}
    with pytest.raises(CatalogError, match="is a float"):
        parse_price_row(data, where="r", default_effective_from=NOV_1)


def test_override_with_a_non_table_is_named() -> None:
    with pytest.raises(CatalogError, match="must be a table") as caught:
        parse_price_row(
            cast(Any, "0.02"), where="catalog.compute.cpu", default_effective_from=NOV_1
        )
    assert caught.value.where == "catalog.compute.cpu"


def test_a_parsed_row_is_independent_of_its_source() -> None:
    data: dict[str, Any] = {"model": "graduated", "tiers": [{"unit_price": "1"}]}
    row = parse_price_row(data, where="r", default_effective_from=NOV_1)
    data["tiers"].append({"unit_price": "2"})
    assert row.model == Graduated(tiers=(Tier(None, D("1")),))
