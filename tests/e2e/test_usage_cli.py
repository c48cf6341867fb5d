"""End-to-end tests of ``synor usage``: file backfill in NDJSON, CSV and Parquet, replays, the
usage view in its three forms, and dead letters; each a real ``synor`` process."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.e2e.conftest import Cli

NOW = datetime.now(UTC)
PERIOD = NOW.strftime("%Y-%m")
WHEN = max(
    NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0), NOW - timedelta(minutes=30)
)
TS = WHEN.strftime("%Y-%m-%dT%H:%M:%SZ")


def events(count: int, prefix: str = "e", quantity: str = "3600") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i}",
            "account": "acct_1",
            "resource": "compute.cpu",
            "quantity": quantity,
            "ts": TS,
        }
        for i in range(count)
    ]


def write_ndjson(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def cpu(cli: Cli, field: str = "quantity") -> Decimal:
    document = cli.json("usage", "show", "--account", "acct_1", "--period", PERIOD)
    rows = [r for r in document["resources"] if r["resource"] == "compute.cpu"]
    return Decimal(rows[0][field]) if rows else Decimal(0)


def test_ndjson_backfill_then_replay_counts_once(cli: Cli, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "usage.ndjson", events(12_345))
    first = cli.json("usage", "ingest", str(source), "--batch", "5000")
    assert first == {
        "accepted": 12_345,
        "duplicate": 0,
        "conflict": 0,
        "rejected": 0,
        "problems": [],
    }
    again = cli.json("usage", "ingest", str(source))
    assert again["duplicate"] == 12_345
    assert again["accepted"] == 0
    assert cpu(cli) == 12_345
    table = cli.ok("usage", "ingest", str(source))
    assert "duplicate: 12,345" in table


def test_csv_and_parquet_files_count_like_ndjson(cli: Cli, tmp_path: Path) -> None:
    rows = events(40, prefix="c")
    with (tmp_path / "usage.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["id", "account", "resource", "quantity", "ts", "subject"]
        )
        writer.writeheader()
        writer.writerows(rows)
    assert cli.json("usage", "ingest", str(tmp_path / "usage.csv"))["accepted"] == 40
    parquet_rows = events(60, prefix="p")
    table = pa.table(
        {
            "id": [r["id"] for r in parquet_rows],
            "account": [r["account"] for r in parquet_rows],
            "resource": [r["resource"] for r in parquet_rows],
            "quantity": pa.array([Decimal("3600.5")] * 60, type=pa.decimal128(20, 2)),
            "ts": pa.array([WHEN] * 60, type=pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, tmp_path / "usage.parquet")
    assert cli.json("usage", "ingest", str(tmp_path / "usage.parquet"))["accepted"] == 60
    assert cpu(cli, "raw_quantity") == 40 * 3600 + Decimal("3600.5") * 60


def test_refused_events_exit_1_and_are_listed(cli: Cli, tmp_path: Path) -> None:
    rows = [
        *events(3),
        {**events(1, prefix="x")[0], "quantity": 1.5},
        {**events(1)[0], "quantity": "9"},
    ]
    done = cli.run("usage", "ingest", str(write_ndjson(tmp_path / "mixed.ndjson", rows)), "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert (report["accepted"], report["rejected"], report["conflict"]) == (3, 1, 1)
    assert [(p["index"], p["status"], p["field"]) for p in report["problems"]] == [
        (3, "rejected", "quantity"),
        (4, "conflict", "id"),
    ]
    letters = cli.json("usage", "rejected")["dead_letters"]
    assert [(d["id"], d["status"], d["source"]) for d in letters] == [
        ("e0", "conflict", "file"),
        ("x0", "rejected", "file"),
    ]
    assert "x0" in cli.ok("usage", "rejected")


def test_usage_show_as_table_and_csv(cli: Cli, tmp_path: Path) -> None:
    cli.ok("usage", "ingest", str(write_ndjson(tmp_path / "u.ndjson", events(2, quantity="5400"))))
    table = cli.ok("usage", "show", "--account", "acct_1", "--period", PERIOD)
    assert "compute.cpu" in table
    assert "core-hour" in table
    lines = cli.ok("usage", "show", "--account", "acct_1", "--period", PERIOD, "--csv").splitlines()
    assert lines == [
        "resource,meter,quantity,unit,raw_quantity,raw_unit,events",
        "compute.cpu,counter,3,core-hour,10800,core-seconds,2",
    ]


def test_bad_input_is_a_one_line_error(cli: Cli, tmp_path: Path) -> None:
    missing = cli.run("usage", "ingest", str(tmp_path / "nope.ndjson"))
    assert missing.returncode == 2
    assert "not a readable file" in missing.stderr
    odd = tmp_path / "usage.txt"
    odd.write_text("{}\n")
    unknown = cli.run("usage", "ingest", str(odd))
    assert unknown.returncode == 2
    assert "--format" in unknown.stderr
    broken = write_ndjson(tmp_path / "b.ndjson", events(2))
    broken.write_text(broken.read_text() + "{oops\n")
    cut = cli.run("usage", "ingest", str(broken), "--batch", "1")
    assert cut.returncode == 2
    assert "line 3" in cut.stderr
    assert cpu(cli) == 2  # the events before the break were kept
    period = cli.run("usage", "show", "--account", "acct_1", "--period", "2026-13")
    assert period.returncode == 2
    assert "2026-11" in period.stderr


def test_replace_a_window_from_a_file_and_revert_it(cli: Cli, tmp_path: Path) -> None:
    hour = WHEN.replace(minute=0, second=0)
    start, end = (
        hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    cli.ok("usage", "ingest", str(write_ndjson(tmp_path / "u.ndjson", events(3))))
    fixed = write_ndjson(tmp_path / "fixed.ndjson", events(1, prefix="fix", quantity="7200"))
    made = cli.json(
        "usage",
        "replace",
        str(fixed),
        "--account",
        "acct_1",
        "--from",
        start,
        "--to",
        end,
        "--note",
        "double-counted",
    )
    assert (made["superseded"], made["added"], made["state"]) == (3, 1, "active")
    assert cpu(cli, "raw_quantity") == 7200
    listed = cli.json("usage", "replacements", "--account", "acct_1")["replacements"]
    assert [(r["replacement"], r["note"]) for r in listed] == [
        (made["replacement"], "double-counted")
    ]
    assert cli.json("usage", "revert", str(made["replacement"]))["state"] == "reverted"
    assert cpu(cli, "raw_quantity") == 3 * 3600
    again = cli.run("usage", "revert", str(made["replacement"]))
    assert again.returncode == 2
    assert "already reverted" in again.stderr
    unaligned = cli.run(
        "usage", "replace", str(fixed), "--account", "acct_1", "--from", TS, "--to", end
    )
    if start != TS:
        assert unaligned.returncode == 2
        assert "whole hours" in unaligned.stderr
