"""Compiled contracts: the project's own (``artifacts/*.json``, built from ``contracts/*.vy`` by
``scripts/compile-contracts`` and checked against the sources by the test suite), and any other
artifact file with an ``abi`` and a ``bytecode`` (the Uniswap packages the tests install)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from synor_economics.domain.errors import SynorError


@dataclass(frozen=True, slots=True)
class Artifact:
    """A contract's interface and creation code."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


@cache
def load_artifact(name: str) -> Artifact:
    """One of the project's contracts, by name (``SynorToken``, ``PriceOracle``…)."""
    folder = resources.files("synor_economics.adapters.chain") / "artifacts"
    try:
        data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SynorError(f"no compiled contract named {name}") from error
    return Artifact(name, data["abi"], data["bytecode"])


def read_artifact(path: Path) -> Artifact:
    """An artifact file of another toolchain (Waffle, Hardhat): ``abi`` and ``bytecode``,
    the latter a hex string or under ``evm.bytecode.object``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    code = data.get("bytecode")
    if isinstance(code, dict):
        code = code.get("object")
    if not code:
        code = data.get("evm", {}).get("bytecode", {}).get("object")
    if not code:
        raise SynorError(f"{path} carries no bytecode")
    if not code.startswith("0x"):
        code = "0x" + code
    return Artifact(data.get("contractName") or path.stem, data["abi"], code)
