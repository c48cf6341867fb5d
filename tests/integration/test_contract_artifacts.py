"""The committed contract artifacts are exactly what the pinned compiler makes of the sources.

The chain adapter deploys and calls the contracts from these JSON files and never runs the
compiler, so a source edited without `scripts/compile-contracts` would silently ship stale code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import vyper  # type: ignore[import-untyped, unused-ignore]

from tests.integration.contract_kit import ARTIFACTS_DIR, CONTRACTS_DIR, PRAGMA, ROOT

SOURCES = sorted(CONTRACTS_DIR.glob("*.vy"))
SCRIPT = ROOT / "scripts" / "compile-contracts"


def test_compiler_is_the_pinned_release() -> None:
    assert vyper.__version__.split("+")[0] == "0.4.3"


def test_there_are_sources() -> None:
    assert {p.stem for p in SOURCES} >= {
        "SynorToken",
        "PriceOracle",
        "InvoicePayments",
        "FeeDistributor",
    }


def test_one_artifact_per_source_and_back() -> None:
    assert {p.stem for p in ARTIFACTS_DIR.glob("*.json")} == {p.stem for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pragma_names_the_pinned_compiler(source: Path) -> None:
    assert source.read_text("utf-8").splitlines()[0] == PRAGMA


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_artifact_matches_a_fresh_compile(source: Path) -> None:
    raw = source.read_bytes()
    artifact: dict[str, Any] = json.loads((ARTIFACTS_DIR / f"{source.stem}.json").read_text())
    fresh = vyper.compile_code(raw.decode("utf-8"), output_formats=["abi", "bytecode"])
    assert artifact["contract"] == source.stem
    assert artifact["compiler"] == "vyper 0.4.3"
    assert artifact["source_sha256"] == hashlib.sha256(raw).hexdigest(), (
        f"{source.name} changed: run .venv/bin/python scripts/compile-contracts"
    )
    assert artifact["abi"] == fresh["abi"]
    assert artifact["bytecode"] == fresh["bytecode"]
    assert artifact["bytecode"].startswith("0x")
    text = (ARTIFACTS_DIR / f"{source.stem}.json").read_text()
    assert text == json.dumps(artifact, sort_keys=True, indent=1) + "\n"


TINY = """# pragma version 0.4.3
value: public(uint256)
"""


def test_compile_script_writes_checks_and_prunes(tmp_path: Path) -> None:
    """The script on a scratch tree (it finds contracts/ and the artifacts from its own place)."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "compile-contracts"
    shutil.copy(SCRIPT, script)
    (tmp_path / "contracts").mkdir()
    source = tmp_path / "contracts" / "Tiny.vy"
    source.write_text(TINY)
    artifacts = tmp_path / "src" / "synor_economics" / "adapters" / "chain" / "artifacts"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, text=True, check=False
        )

    assert run("--check").returncode == 1  # missing artifact
    assert run().returncode == 0
    written = json.loads((artifacts / "Tiny.json").read_text())
    assert written["contract"] == "Tiny"
    assert written["source_sha256"] == hashlib.sha256(TINY.encode()).hexdigest()
    assert run("--check").returncode == 0

    source.write_text(TINY + "other: public(uint256)\n")
    stale = run("--check")
    assert stale.returncode == 1
    assert "Tiny.json is out of date" in stale.stderr
    assert run().returncode == 0

    (artifacts / "Gone.json").write_text("{}\n")
    orphan = run("--check")
    assert orphan.returncode == 1
    assert "Gone.json has no source" in orphan.stderr
    assert run().returncode == 0
    assert sorted(p.name for p in artifacts.iterdir()) == ["Tiny.json"]
