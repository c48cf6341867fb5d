"""Usage ingestion throughput: file backfill, replay, HTTP, and accepted → visible latency.

Every figure goes through the product's own path into a fresh SQLite database:

  file backfill   NDJSON events with random uuid4 ids, read, validated, deduplicated, counted
                  into hourly rollups and committed, as ``synor usage ingest`` does
  replay          the same file again: every event a duplicate
  HTTP            ``POST /v1/events`` in batches of 1,000 to a real ``synor serve``, from one
                  connection and from four side by side (the server stores requests that wait
                  together in one transaction); bodies are encoded before the clock starts, so
                  the figure is the server's, not the client's JSON encoder
  visible         time from a batch's answer to its usage showing in
                  ``GET /v1/accounts/{id}/usage`` (p50/p99 over the samples)
  stream          Redis Streams → PostgreSQL: ``synor worker --drain`` processes (one, then two)
                  counting a stream into a fresh database, timed from the workers' start-up
                  line (and, beside it, from their launch); twice: "live", events of the last
                  10 minutes, as a stream carries usage while it happens, and "history", events
                  spread over 20 days like the backfill's (nearly every event then starts an
                  hourly rollup row of its own: the rollups' worst case)
  memory          (with ``--memory-events N``) peak resident memory of ``synor usage ingest``
                  backfilling a file of N events, against the same run on N/10: bounded means
                  the two are about the same
  SIGKILL x10     (with ``--kill-events N``) exactly once, full size: N events and N/3 replays
                  in a stream, ten ``synor worker`` processes in turn each killed with SIGKILL
                  at a random moment, then one that drains; every total must be exact (exit 1
                  if not)

Usage: python bench/ingest.py [--events 200000] [--accounts 1000] [--http-events 100000]
                              [--stream-events 100000] [--memory-events 0] [--kill-events 0]
                              [--redis-url URL] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

from synor_economics.bootstrap import build
from synor_economics.config import Settings
from synor_economics.services.usage_input import events_of, read_events

RESOURCES = ("compute.cpu", "compute.memory", "database.queries", "hosting.bandwidth")


HISTORY_S = 20 * 86_400
"""Events of the backfill figures happened at random over the last 20 days."""
LIVE_S = 600
"""Events of the live stream figures happened at random over the last 10 minutes: usage as a
stream carries it, sent as it happens (so most hours of an account's series get many events)."""


def make_events(
    count: int, accounts: int, seed: int = 5, spread_s: int = HISTORY_S
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "account": f"acct_{rng.randrange(accounts)}",
            "resource": RESOURCES[i % len(RESOURCES)],
            "quantity": str(rng.randrange(1, 10**6)),
            "ts": (now - timedelta(seconds=rng.randrange(1, spread_s))).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
        for i in range(count)
    ]


def write_events(path: Path, count: int, accounts: int) -> None:
    """An NDJSON file of ``count`` events, written a slice at a time (10M events do not fit
    this process's memory as dicts)."""
    with path.open("w") as handle:
        for start in range(0, count, 100_000):
            events = make_events(min(100_000, count - start), accounts, seed=start + 1)
            handle.write("".join(json.dumps(e) + "\n" for e in events))


def ingest_peak_mib(path: Path, data_dir: Path) -> float:
    """Peak resident memory of a ``synor usage ingest`` process backfilling ``path``."""
    script = Path(sys.executable).with_name("synor")
    env = {**os.environ, "SYNOR_DATA_DIR": str(data_dir)}
    code = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code, str(script), "usage", "ingest", str(path), "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(answer.stdout.split()[-1]) / 1024


def memory_figures(count: int, accounts: int, folder: Path) -> None:
    for events in (count // 10, count):
        path = folder / f"memory-{events}.ndjson"
        write_events(path, events, accounts)
        started = time.perf_counter()
        peak = ingest_peak_mib(path, folder / f"memory-{events}")
        rate = events / (time.perf_counter() - started)
        print(f"memory          {peak:>10,.0f} MiB peak (synor usage ingest, {events:,} events, "
              f"{rate:,.0f} events/s)")  # fmt: skip
        path.unlink()


def backfill(path: Path, data_dir: Path, batch: int) -> tuple[float, dict[str, int]]:
    system = build(Settings(data_dir=data_dir))
    system.tune()  # as `synor usage ingest` does
    counts: dict[str, int] = {}
    started = time.perf_counter()
    total = 0
    chunks = read_events(path, "ndjson", batch)
    for chunk, outcomes in system.usage.ingest_all(chunks, source="file", events=events_of):
        for status, count in outcomes.counts().items():
            counts[status.value] = counts.get(status.value, 0) + count
        total += len(chunk.events)
    elapsed = time.perf_counter() - started
    system.close()
    return total / elapsed, counts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_figures(
    events: list[dict[str, Any]], data_dir: Path, connections: int
) -> tuple[float, list[float]]:
    """Events/s of ``connections`` clients posting batches of 1,000 to a fresh ``synor serve``,
    then the accepted → visible latencies."""
    bodies = [msgspec.json.encode(events[at : at + 1000]) for at in range(0, len(events), 1000)]
    port = free_port()
    env = {**os.environ, "SYNOR_DATA_DIR": str(data_dir), "SYNOR_PORT": str(port)}
    script = Path(sys.executable).with_name("synor")
    server = subprocess.Popen(
        [str(script), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("synor serve did not start")
                time.sleep(0.1)
            started = time.perf_counter()
            posters = [
                threading.Thread(target=post_all, args=(base, bodies[k::connections]))
                for k in range(connections)
            ]
            for poster in posters:
                poster.start()
            for poster in posters:
                poster.join()
            rate = len(events) / (time.perf_counter() - started)
            return rate, visible_latencies(client)
    finally:
        server.terminate()
        server.wait(timeout=30)


def post_all(base: str, bodies: list[bytes]) -> None:
    """Post each body on one connection, checking that every event was accepted."""
    with httpx.Client(base_url=base, timeout=60) as client:
        for body in bodies:
            answer = client.post("/v1/events", content=body, headers=_JSON)
            answer.raise_for_status()
            if answer.json()["accepted"] != body.count(b'"id"'):
                raise SystemExit(f"not every event was accepted: {answer.text[:300]}")


_JSON = {"content-type": "application/json"}


def visible_latencies(client: httpx.Client, samples: int = 100) -> list[float]:
    """Post one event for a fresh account, then poll its usage until it shows."""
    period = datetime.now(UTC).strftime("%Y-%m")
    latencies = []
    for i in range(samples):
        account = f"probe_{i}"
        event = {
            "id": f"probe-{i}",
            "account": account,
            "resource": "compute.cpu",
            "quantity": "1",
            "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        client.post("/v1/events", json=event).raise_for_status()
        answered = time.perf_counter()
        while not client.get(f"/v1/accounts/{account}/usage", params={"period": period}).json()[
            "resources"
        ]:
            time.sleep(0.001)
        latencies.append(time.perf_counter() - answered)
    return sorted(latencies)


def busy_core_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all processes and cores together
    (``/proc/stat``), or NaN where there is no such file."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def stream_figure(
    events: list[dict[str, Any]], workers: int, redis_url: str, postgres_url: str, folder: Path
) -> tuple[float, float, float]:
    """Events/s of ``workers`` worker processes draining a stream into a fresh PostgreSQL:
    counted from the moment every worker is up (its start-up line, printed once its system is
    built, just before it reads), and counted from the processes' launch, start-up (about a
    second of imports and connections) included; and the machine's CPU time per event while
    the workers ran (workers, PostgreSQL, Redis: everything), which bounds what the machine's
    cores can do, whatever the number of workers."""
    from synor_economics.adapters.sql.engine import scratch_postgres
    from synor_economics.adapters.stream.redis_stream import RedisEventStream

    name = f"synor:bench:{uuid.uuid4().hex[:8]}"
    with scratch_postgres(postgres_url, prefix="synor_bench") as url:
        settings = Settings(
            data_dir=folder, database_url=url, stream_url=redis_url, stream_name=name
        )
        build(settings).close()  # migrate, create the group
        stream = RedisEventStream(redis_url, name, settings.stream_group)
        stream.publish([json.dumps(e).encode() for e in events])
        env = {
            **os.environ,
            "SYNOR_DATABASE_URL": url,
            "SYNOR_STREAM_URL": redis_url,
            "SYNOR_STREAM_NAME": name,
        }
        script = str(Path(sys.executable).with_name("synor"))
        launched = time.perf_counter()
        processes = [
            subprocess.Popen(  # our own console script
                [script, "worker", "--drain", "--consumer", f"w{i}"],  # its default batch
                env={**env, "COLUMNS": "200"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(workers)
        ]
        for process in processes:
            assert process.stderr is not None
            if "synor worker" not in process.stderr.readline():  # up, and about to read
                raise SystemExit("synor worker did not start")
        up, busy = time.perf_counter(), busy_core_seconds()
        for process in processes:
            process.communicate()
        ended, busy = time.perf_counter(), busy_core_seconds() - busy
        assert stream.pending() == 0
        stream.client.delete(name, f"{name}:dead")
        stream.close()
    return len(events) / (ended - up), len(events) / (ended - launched), busy / len(events)


def kill_figure(
    count: int, accounts: int, redis_url: str, postgres_url: str, folder: Path
) -> tuple[bool, str]:
    """Exactly once under SIGKILL, full size: ``count`` events and a third as many replays
    (producers retrying), shuffled into a stream; ten ``synor worker`` processes in turn, each
    killed with SIGKILL at a random moment once it has started reading, then one that drains
    the rest. Every account's total of every resource, and its count of events, must be the
    exact sums of the events (nothing lost, nothing counted twice); nothing may stay pending or
    be dead-lettered. The suite runs the same thing small (``tests/e2e/test_worker_kill.py``)."""
    from synor_economics.adapters.sql.engine import scratch_postgres
    from synor_economics.adapters.stream.redis_stream import RedisEventStream

    rng = random.Random(20261124)
    events = make_events(count, accounts, seed=17)
    sent = events + rng.sample(events, count // 3)
    rng.shuffle(sent)
    name = f"synor:bench:{uuid.uuid4().hex[:8]}"
    with scratch_postgres(postgres_url, prefix="synor_bench") as url:
        settings = Settings(
            data_dir=folder, database_url=url, stream_url=redis_url, stream_name=name
        )
        system = build(settings)  # migrate, create the group
        stream = RedisEventStream(redis_url, name, settings.stream_group)
        stream.publish([json.dumps(e).encode() for e in sent])
        env = {**os.environ, "SYNOR_DATABASE_URL": url, "SYNOR_STREAM_URL": redis_url,
               "SYNOR_STREAM_NAME": name}  # fmt: skip
        # Entries a killed worker held are taken over by the next once idle for 0.3 s.
        script = str(Path(sys.executable).with_name("synor"))
        worker = [script, "worker", "--no-schedule", "--claim-idle", "0.3"]
        landed = 0
        for _ in range(10):
            before, deadline = _acknowledged(stream, name), time.monotonic() + 60
            process = subprocess.Popen(worker, env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)  # fmt: skip
            while before == _acknowledged(stream, name) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.02)  # counting now: killed at a random moment from here
            time.sleep(rng.uniform(0.05, 1.0))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            landed += _acknowledged(stream, name) < len(sent)
        subprocess.run([*worker, "--drain"], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)  # fmt: skip
        wrong = _wrong_totals(system, events)
        pending, dead = stream.pending(), len(stream.dead_letters(count=10))
        stream.client.delete(name, f"{name}:dead")
        stream.close()
        system.close()
    exact = not wrong and pending == 0 and dead == 0
    return exact, (
        f"{count:,} events + {count // 3:,} replays, 10 SIGKILLs ({landed} mid-stream), "
        f"{accounts:,} accounts: "
        + ("every total exact" if exact else f"WRONG: {wrong[:3]}, pending {pending}, dead {dead}")
    )


def _acknowledged(stream: Any, name: str) -> int:
    """Entries of the stream counted and acknowledged so far: read by the group, less those
    still pending."""
    (group,) = stream.client.xinfo_groups(name)
    return int(group["entries-read"] or 0) - int(group["pending"])


def _wrong_totals(system: Any, events: list[dict[str, Any]]) -> list[str]:
    """The (account, resource) pairs whose counted quantity or events differ from the sums."""
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    months = set()
    for e in events:
        quantity, n = expected.get((e["account"], e["resource"]), (0, 0))
        expected[(e["account"], e["resource"])] = (quantity + int(e["quantity"]), n + 1)
        months.add(e["ts"][:7])
    counted: dict[tuple[str, str], tuple[int, int]] = {}
    for account in {account for account, _ in expected}:
        for month in months:
            for row in system.usage.period_usage(account, month).resources:
                quantity, n = counted.get((account, row.resource.id), (0, 0))
                counted[(account, row.resource.id)] = (quantity + int(row.raw), n + row.events)
    return [f"{pair}: {counted.get(pair)} != {sums}" for pair, sums in expected.items()
            if counted.get(pair) != sums]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--http-events", type=int, default=100_000)
    parser.add_argument("--stream-events", type=int, default=100_000)
    parser.add_argument(
        "--memory-events", type=int, default=0, help="also measure memory at this size (10M)"
    )
    parser.add_argument(
        "--kill-events", type=int, default=0, help="also prove exactly-once under SIGKILL (1M)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    events = make_events(args.events, args.accounts)
    with tempfile.TemporaryDirectory(prefix="synor-ingest-") as folder:
        path = Path(folder) / "events.ndjson"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        rate, counts = backfill(path, Path(folder) / "file", args.batch)
        print(f"file backfill   {rate:>10,.0f} events/s   {counts}")
        rate, counts = backfill(path, Path(folder) / "file", args.batch)
        print(f"replay          {rate:>10,.0f} events/s   {counts}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory     {peak:>10,.0f} MiB (this process, {args.events:,} events)")
        if args.http_events:
            http_events = make_events(args.http_events, args.accounts, seed=9)
            for connections in (1, 4):
                folder_of = Path(folder) / f"http{connections}"
                rate, latencies = http_figures(http_events, folder_of, connections)
                print(f"HTTP, 1k/batch  {rate:>10,.0f} events/s   ({connections} connection"
                      f"{'s' if connections > 1 else ''})")  # fmt: skip
            p50 = latencies[len(latencies) // 2] * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            print(
                f"visible after   p50 {p50:.1f} ms   p99 {p99:.1f} ms  ({len(latencies)} samples)"
            )
        if args.stream_events:
            for kind, spread_s in (("live", LIVE_S), ("history", HISTORY_S)):
                stream_events = make_events(args.stream_events, args.accounts, 13, spread_s)
                for workers in (1, 2):
                    rate, launched, cpu = stream_figure(
                        stream_events, workers, args.redis_url, args.postgres_url, Path(folder)
                    )
                    plural = "s" if workers > 1 else " "
                    cores = os.cpu_count() or 1
                    print(f"stream → PG, {kind:<7}, {workers} worker{plural} {rate:>8,.0f} "
                          f"events/s   ({launched:,.0f}/s counting process start-up; machine "
                          f"CPU {cpu * 1e6:.0f} µs an event, at most {cores / cpu:,.0f}/s on "
                          f"its {cores} cores)")  # fmt: skip
        if args.memory_events:
            memory_figures(args.memory_events, args.accounts, Path(folder))
        if args.kill_events:
            started = time.perf_counter()
            exact, summary = kill_figure(
                args.kill_events, args.accounts, args.redis_url, args.postgres_url, Path(folder)
            )
            print(f"SIGKILL x10     {summary} ({time.perf_counter() - started:,.0f} s)")
            if not exact:
                raise SystemExit(1)


if __name__ == "__main__":
    main()
