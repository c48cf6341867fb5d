"""What every end-to-end test shares: a hermetic environment, and how times are written."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from synor_economics.api.app import create_app
from synor_economics.bootstrap import build
from synor_economics.config import Settings
from synor_economics.services.system import System

with warnings.catch_warnings():  # starlette nags about httpx vs httpx2 at import time
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``Settings`` reads the environment and ``./.env`` too: give the tests neither."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SYNOR_{name.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)


def rfc3339(moment: datetime) -> str:
    """An instant as the documents write it, spelled out independently of the product."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def system(data_dir: Path) -> Iterator[System]:
    """The product as ``synor serve`` assembles it, on a SQLite file of its own."""
    built = build(Settings(data_dir=data_dir))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def client(system: System) -> Iterator[TestClient]:
    with TestClient(create_app(system)) as test_client:
        yield test_client
