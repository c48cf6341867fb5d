"""Exactly once, proved the hard way: ``synor worker`` processes are killed with SIGKILL at
random points while they consume a stream full of replays, ten times over, then one drains
what is left. The totals in PostgreSQL equal the exact sums: nothing lost, nothing doubled.
(``bench/ingest.py --kill-events 1000000`` runs the same thing full size; this one is small.)"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from synor_economics.adapters.stream.redis_stream import RedisEventStream
from synor_economics.bootstrap import build
from synor_economics.config import Settings
from synor_economics.services.system import System
from tests.e2e.conftest import COMMAND, cpu_events

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

EVENTS = 4000
ACCOUNTS = 7


def periods(now: datetime) -> set[str]:
    """The months the events fall in (two, in the first hours of a month)."""
    return {now.strftime("%Y-%m"), (now - timedelta(hours=11)).strftime("%Y-%m")}


def counted(system: System, account: str, now: datetime) -> tuple[Decimal, int]:
    """An account's CPU quantity and event count so far, over the events' months."""
    rows = [
        row
        for period in periods(now)
        for row in system.usage.period_usage(account, period).resources
        if row.resource.id == "compute.cpu"
    ]
    return sum((r.raw for r in rows), Decimal(0)), sum(r.events for r in rows)


def total_counted(system: System, now: datetime) -> int:
    return sum(counted(system, f"acct_{a}", now)[1] for a in range(ACCOUNTS))


def test_sigkilled_workers_lose_nothing_and_count_nothing_twice(
    tmp_path: Path, postgres_url: str, redis_url: str, stream_name: str
) -> None:
    rng = random.Random(20261124)
    now = datetime.now(UTC)
    events = cpu_events(rng, now, EVENTS, ACCOUNTS)
    sent = events + rng.sample(events, EVENTS // 3)  # producers retrying
    rng.shuffle(sent)
    settings = Settings(
        data_dir=tmp_path, database_url=postgres_url, stream_url=redis_url, stream_name=stream_name
    )
    system = build(settings)  # migrates, creates the consumer group
    producer = RedisEventStream(redis_url, stream_name, settings.stream_group)
    producer.publish([json.dumps(e).encode() for e in sent])
    env = {
        "PATH": "/usr/bin:/bin",
        "SYNOR_DATA_DIR": str(tmp_path),
        "SYNOR_DATABASE_URL": postgres_url,
        "SYNOR_STREAM_URL": redis_url,
        "SYNOR_STREAM_NAME": stream_name,
    }
    # Small batches keep each worker busy for the whole round, so the kills land mid-batch.
    worker = [*COMMAND, "worker", "--batch", "4", "--claim-idle", "0.3"]
    progress = [0]
    for _ in range(10):
        process = subprocess.Popen(
            worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Kill at a random point once the worker is counting (how long it takes to start
        # depends on how busy the machine is; a kill during start-up would prove nothing).
        deadline = time.monotonic() + 30
        while total_counted(system, now) == progress[-1] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        progress.append(total_counted(system, now))
    # The kills landed mid-stream: each round counted more, and the stream was not done.
    assert sum(0 < done < EVENTS for done in progress[1:]) >= 4, progress
    drained = subprocess.run(
        [*worker[:-1], "0", "--drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert drained.returncode == 0, drained.stderr
    for account in range(ACCOUNTS):
        expected = sum(int(e["quantity"]) for e in events if e["account"] == f"acct_{account}")
        assert counted(system, f"acct_{account}", now)[0] == expected, f"acct_{account}"
    assert total_counted(system, now) == EVENTS
    assert producer.pending() == 0
    assert producer.dead_letters(count=1) == []
    producer.close()
    system.close()
