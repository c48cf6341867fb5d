"""What every end-to-end test shares: a hermetic environment, and how times are written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from synor_economics.config import Settings


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``Settings`` reads the environment and ``./.env`` too: give the tests neither."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SYNOR_{name.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)


def rfc3339(moment: datetime) -> str:
    """An instant as the documents write it, spelled out independently of the product."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
