"""What every end-to-end test shares: a hermetic environment, and how times are written."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


TIMEOUT = 60
"""Seconds any one CLI run may take before the test fails (a hang is a failure, not a wait)."""

SCRIPT = Path(sys.executable).with_name("synor")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "synor_economics.main"]


@dataclass
class Cli:
    """Runs ``synor`` in a clean environment: only the ``SYNOR_`` settings a test gives."""

    data_dir: Path
    cwd: Path
    env: dict[str, str]

    @property
    def db_file(self) -> Path:
        return self.data_dir / "synor.db"

    def run(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **settings}
        return subprocess.run(
            [*COMMAND, *args],
            env=env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def ok(self, *args: str, **settings: str) -> str:
        """Run and require exit 0; the stdout."""
        done = self.run(*args, **settings)
        assert done.returncode == 0, (
            f"synor {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        )
        return done.stdout

    def json(self, *args: str, **settings: str) -> Any:
        return json.loads(self.ok(*args, "--json", **settings))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNOR_")}
    env.update(SYNOR_DATA_DIR=str(data_dir), COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return Cli(data_dir=data_dir, cwd=tmp_path, env=env)


def cpu_events(
    rng: random.Random, now: datetime, count: int, accounts: int
) -> list[dict[str, str]]:
    """``count`` CPU events over ``accounts`` accounts in the 10 hours before ``now`` (the kill
    tests' streams and files): ids ``evt-<n>``, random quantities."""
    return [
        {
            "id": f"evt-{i}",
            "account": f"acct_{i % accounts}",
            "resource": "compute.cpu",
            "quantity": str(rng.randrange(1, 10**6)),
            "ts": (now - timedelta(minutes=rng.randrange(1, 600))).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for i in range(count)
    ]
