"""Exactly once on the embedded default: ``synor usage ingest`` into SQLite is killed with SIGKILL
at random points, six times over, while a second process ingests an overlapping file into the
same database; then each file is ingested to the end. The totals equal the exact sums: the key
index (``adapters/sql/key_index.py``) loses nothing and counts nothing twice across crashes,
restarts and another writer merging its runs."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from synor_economics.bootstrap import build
from synor_economics.config import Settings
from tests.e2e.conftest import COMMAND, cpu_events

EVENTS = 3000
ACCOUNTS = 5


def counted(data_dir: Path, now: datetime) -> dict[str, tuple[int, int]]:
    """Each account's CPU quantity and event count, over the events' months."""
    system = build(Settings(data_dir=data_dir))
    months = {now.strftime("%Y-%m"), (now - timedelta(hours=11)).strftime("%Y-%m")}
    found = {}
    for a in range(ACCOUNTS):
        rows = [
            row
            for month in months
            for row in system.usage.period_usage(f"acct_{a}", month).resources
            if row.resource.id == "compute.cpu"
        ]
        found[f"acct_{a}"] = (int(sum(r.raw for r in rows)), sum(r.events for r in rows))
    system.close()
    return found


def test_sigkilled_backfills_beside_another_writer_count_each_event_once(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    now = datetime.now(UTC)
    events = cpu_events(rng, now, EVENTS, ACCOUNTS)
    killed, beside = tmp_path / "killed.ndjson", tmp_path / "beside.ndjson"
    retried = events + rng.sample(events, EVENTS // 3)  # a producer's retries in the file
    rng.shuffle(retried)
    killed.write_text("".join(json.dumps(e) + "\n" for e in retried))
    beside.write_text("".join(json.dumps(e) + "\n" for e in rng.sample(events, EVENTS // 2)))
    data_dir = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin", "SYNOR_DATA_DIR": str(data_dir)}
    ingest = [*COMMAND, "usage", "ingest", "--json", "--batch"]
    build(Settings(data_dir=data_dir)).close()  # migrated before the processes race
    other = subprocess.Popen(
        [*ingest, "7", str(beside)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    progress = [0]
    for _ in range(6):
        process = subprocess.Popen(
            [*ingest, "5", str(killed)],  # small durable batches: a round lasts a while
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30  # kill once it is counting, at a random point
        while progress[-1] < EVENTS and time.monotonic() < deadline:
            if sum(n for _, n in counted(data_dir, now).values()) > progress[-1]:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.25))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        progress.append(sum(n for _, n in counted(data_dir, now).values()))
    assert sum(0 < done < EVENTS for done in progress[1:]) >= 3, progress
    assert other.wait(timeout=300) == 0, other.stderr.read() if other.stderr else ""
    finished = subprocess.run(
        [*ingest, "500", str(killed)], env=env, capture_output=True, text=True, check=False
    )
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["accepted"] + summary["duplicate"] == len(retried)
    expected = {
        f"acct_{a}": (
            sum(int(e["quantity"]) for e in events if e["account"] == f"acct_{a}"),
            sum(1 for e in events if e["account"] == f"acct_{a}"),
        )
        for a in range(ACCOUNTS)
    }
    assert counted(data_dir, now) == expected
