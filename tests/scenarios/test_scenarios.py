"""The golden tests: every simulation file under ``tests/scenarios/`` (SPEC §10) is rated by the
billing engine and must give the figures its ``.expected.json`` states, which were worked out by
hand (the arithmetic is in the YAML's comments).

Expected documents are matched as a subset: every key they give must be there with that value, and
every list they give must have exactly their items, in order. So an expected file states the
figures that matter to its case, and the engine may report more.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synor_economics.catalog import load_default_catalog
from synor_economics.services.billing_documents import simulation_document
from synor_economics.services.simulation import load_document, read_simulation, run_simulation

HERE = Path(__file__).parent
SCENARIOS = sorted(HERE.glob("*.yaml"))


def mismatches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where ``actual`` differs from the subset ``expected`` describes."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or '.'}: expected an object, got {actual!r}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            else:
                problems.extend(mismatches(value, actual[key], f"{where}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            count = len(actual) if isinstance(actual, list) else actual
            return [f"{where}: expected {len(expected)} items, got {count}"]
        return [
            problem
            for index, (want, got) in enumerate(zip(expected, actual, strict=True))
            for problem in mismatches(want, got, f"{where}[{index}]")
        ]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 25
    for scenario in SCENARIOS:
        assert scenario.with_suffix(".expected.json").exists(), scenario.name


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario(scenario: Path) -> None:
    expected = json.loads(scenario.with_suffix(".expected.json").read_text())
    simulation = read_simulation(load_document(scenario), load_default_catalog())
    document = simulation_document(run_simulation(simulation))
    problems = mismatches(expected, document)
    assert not problems, "\n".join(problems)


def test_the_cli_prints_the_same_document() -> None:
    """``synor simulate FILE --json`` runs the same engine: one scenario end to end."""
    scenario = HERE / "01_basic.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "synor_economics.main", "simulate", str(scenario), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = json.loads(scenario.with_suffix(".expected.json").read_text())
    assert not mismatches(expected, json.loads(result.stdout))


def test_mismatches_reports_what_differs() -> None:
    assert mismatches({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}], "c": 0}) == [
        ".a[1].b: expected 2, got 3"
    ]
    assert mismatches({"a": [1]}, {"a": [1, 2]}) == [".a: expected 1 items, got 2"]
    assert mismatches({"a": 1}, {}) == [".a: missing"]
