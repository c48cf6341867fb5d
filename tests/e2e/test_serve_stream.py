"""``synor serve`` is the whole product in one process: with a Redis stream configured, events
sent to the stream show up in its usage API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from synor_economics.adapters.stream.redis_stream import RedisEventStream
from tests.e2e.conftest import COMMAND
from tests.e2e.test_api import free_port, wait_until_healthy

pytestmark = pytest.mark.redis


def test_serve_counts_the_usage_stream(tmp_path: Path, redis_url: str, stream_name: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNOR_")}
    env.update(
        SYNOR_DATA_DIR=str(tmp_path / "data"),
        SYNOR_PORT=str(port),
        SYNOR_STREAM_URL=redis_url,
        SYNOR_STREAM_NAME=stream_name,
    )
    now = datetime.now(UTC)
    when = max(
        now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now - timedelta(minutes=5)
    )
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*COMMAND, "serve"], env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            assert wait_until_healthy(proc, f"{base}/v1/health", log, timeout=20).status_code == 200
            producer = RedisEventStream(redis_url, stream_name, "synor-ingest")
            event = {
                "account": "acct_5",
                "resource": "compute.cpu",
                "quantity": "60",
                "ts": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            producer.publish([json.dumps({**event, "id": f"s{i}"}).encode() for i in range(30)])
            producer.publish([json.dumps({**event, "id": "s0"}).encode()])  # a replay
            usage = f"{base}/v1/accounts/acct_5/usage?period={when.strftime('%Y-%m')}"
            deadline = time.monotonic() + 20
            rows: list[dict[str, str]] = []
            while time.monotonic() < deadline:
                rows = httpx.get(usage, timeout=5).json()["resources"]
                if rows and rows[0]["raw_quantity"] == "1800" and producer.pending() == 0:
                    break
                time.sleep(0.05)
            assert rows[0]["raw_quantity"] == "1800"
            assert producer.pending() == 0
            producer.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert f"usage stream: {stream_name}" in log.read_text()
