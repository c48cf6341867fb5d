"""The usage stream and its worker, on the in-process stream and on a real Redis: entries are
acknowledged only once counted, taken over from dead consumers, and dead-lettered only when
they keep failing on their own."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.adapters.stream.memory_stream import MemoryEventStream
from synor_economics.adapters.stream.redis_stream import RedisEventStream
from synor_economics.catalog import load_default_catalog
from synor_economics.ports import EventStream
from synor_economics.services.stream_ingest import OutageError, StreamWorker, WorkerOptions
from synor_economics.services.usage import Screened, UsageService
from tests.conftest import migrated_engine

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
PERIOD = "2026-11"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def stream(request: pytest.FixtureRequest) -> Iterator[EventStream]:
    if request.param == "memory":
        yield MemoryEventStream()
        return
    url = request.getfixturevalue("redis_url")
    name = request.getfixturevalue("stream_name")
    redis_stream = RedisEventStream(url, name, "synor-test")
    yield redis_stream
    redis_stream.close()


@pytest.fixture
def usage(sqlite_url: str) -> Iterator[UsageService]:
    engine = migrated_engine(sqlite_url)
    yield UsageService(SqlUnitOfWork(engine), FixedClock(NOW), load_default_catalog())
    engine.dispose()


def payload(event_id: str, account: str = "acct_1", quantity: int = 10) -> bytes:
    event = {
        "id": event_id,
        "account": account,
        "resource": "compute.cpu",
        "quantity": str(quantity),
        "ts": "2026-11-10T00:00:00Z",
    }
    return json.dumps(event).encode()


def cpu(usage: UsageService, account: str = "acct_1") -> Decimal:
    rows = usage.period_usage(account, PERIOD).resources
    return sum((r.raw for r in rows if r.resource.id == "compute.cpu"), Decimal(0))


def drain(worker: StreamWorker) -> None:
    worker.run(threading.Event(), drain=True)


def test_entries_are_pending_until_acknowledged_and_claimable_once_idle(
    stream: EventStream,
) -> None:
    ids = stream.publish([payload("a"), payload("b")])
    first = stream.read("dead-worker", count=10, block_ms=0)
    assert [e.entry_id for e in first] == ids
    assert [e.deliveries for e in first] == [1, 1]
    assert stream.pending() == 2
    assert stream.read("other", count=10, block_ms=0) == []  # delivered once, not twice
    taken = stream.claim_idle("other", idle_ms=0, count=10)
    assert [(e.entry_id, e.payload, e.deliveries) for e in taken] == [
        (ids[0], payload("a"), 2),
        (ids[1], payload("b"), 2),
    ]
    stream.ack([ids[0]])
    assert stream.pending() == 1
    stream.dead_letter(taken[1], "ValueError: broken")
    assert stream.pending() == 0
    assert stream.dead_letters(count=5) == [(ids[1], payload("b"), "ValueError: broken")]


def test_the_worker_counts_each_event_once_whatever_is_replayed(
    stream: EventStream, usage: UsageService
) -> None:
    rng = random.Random(4)
    payloads = [payload(f"e{i}", account=f"acct_{i % 3}", quantity=i) for i in range(600)]
    replays = rng.sample(payloads, 150)  # producers retrying: the same events again
    bad = [b"not json", payload("neg", quantity=-5)[:-1] + b', "colour": 1}']
    stream.publish(payloads + replays + bad)
    worker = StreamWorker(stream, usage, consumer="w1", options=WorkerOptions(batch=97))
    drain(worker)
    for account in range(3):
        expected = sum(i for i in range(600) if i % 3 == account)
        assert cpu(usage, f"acct_{account}") == expected
    assert worker.stats.outcomes == {"accepted": 600, "duplicate": 150, "rejected": 2}
    assert stream.pending() == 0
    reasons = {(d.field, d.source) for d in usage.dead_letters()}
    assert reasons == {("event", "stream"), ("colour", "stream")}


def test_a_worker_stopped_mid_stream_stores_the_batch_it_read_ahead(
    stream: EventStream, usage: UsageService
) -> None:
    """While a batch is stored the next is read ahead; stopping then must not strand it as
    this consumer's pending entries: it is stored and acknowledged before the worker ends."""
    stream.publish([payload(f"e{i}") for i in range(50)])
    stop = threading.Event()
    worker = StreamWorker(
        stream, usage, consumer="w", options=WorkerOptions(batch=10, claim_every_s=3600)
    )
    stats = worker.run(stop, on_batch=lambda _stats: stop.set())
    assert stats.batches == 2  # the one in hand when stop came, and the one read ahead
    assert stats.entries == 20
    assert stream.pending() == 0
    assert cpu(usage) == 200
    drain(worker)  # the rest, once
    assert cpu(usage) == 500
    assert stream.pending() == 0


def test_a_dead_consumers_entries_are_taken_over(stream: EventStream, usage: UsageService) -> None:
    stream.publish([payload(f"e{i}") for i in range(50)])
    stream.read("died-mid-batch", count=30, block_ms=0)  # taken, never acknowledged
    worker = StreamWorker(
        stream, usage, consumer="survivor", options=WorkerOptions(batch=20, claim_idle_ms=0)
    )
    drain(worker)
    assert cpu(usage) == 500
    assert stream.pending() == 0


class Poisoned:
    """A usage service that fails whenever a batch holds one of some event ids (a bug only
    those events trigger), or always (an outage)."""

    def __init__(self, real: UsageService, *poison: str) -> None:
        self.real = real
        self.poison = set(poison)

    def screen_batch(self, raws: list[Any], source: str) -> Screened:
        return self.real.screen_batch(raws, source)

    def store(self, screened: Screened) -> Any:
        ids = [event.id for _, event, _ in screened.valid]
        if screened.plain is not None:  # the events taken a column at a time
            ids.extend(screened.plain.events.ids)
        bad = [event_id for event_id in ids if event_id in self.poison]
        if bad or not self.poison:
            raise RuntimeError(f"cannot count {bad[0] if bad else 'anything'}")
        return self.real.store(screened)


def test_an_entry_that_keeps_failing_is_isolated_and_dead_lettered(
    stream: EventStream, usage: UsageService
) -> None:
    stream.publish([payload(f"e{i}") for i in range(40)] + [payload("poison")])
    options = WorkerOptions(batch=16, claim_idle_ms=0, max_deliveries=3)
    worker = StreamWorker(stream, Poisoned(usage, "poison"), consumer="w", options=options)  # type: ignore[arg-type]
    for _ in range(5):
        drain(worker)
    assert cpu(usage) == 400  # every other event counted
    assert stream.pending() == 0
    ((_, body, reason),) = stream.dead_letters(count=10)
    assert json.loads(body)["id"] == "poison"
    assert "cannot count poison" in reason
    assert worker.stats.dead_lettered == 1


def test_an_outage_dead_letters_nothing(stream: EventStream, usage: UsageService) -> None:
    stream.publish([payload(f"e{i}") for i in range(30)])
    options = WorkerOptions(batch=30, claim_idle_ms=0, max_deliveries=1)
    down = StreamWorker(stream, Poisoned(usage), consumer="w", options=options)  # type: ignore[arg-type]
    entries = stream.read("w", count=30, block_ms=0)
    with pytest.raises(OutageError):
        down.handle(entries)
    assert stream.dead_letters(count=10) == []
    assert stream.pending() == 30
    up = StreamWorker(stream, usage, consumer="w2", options=options)
    drain(up)  # the store is back: the pending entries are taken over and counted
    assert cpu(usage) == 300
    assert stream.pending() == 0


def test_blocking_read_returns_when_an_entry_arrives(stream: EventStream) -> None:
    later = threading.Timer(0.2, lambda: stream.publish([payload("late")]))
    later.start()
    started = datetime.now(UTC)
    found = stream.read("w", count=10, block_ms=5000)
    later.join()
    assert [json.loads(e.payload)["id"] for e in found] == ["late"]
    assert datetime.now(UTC) - started < timedelta(seconds=4)


def test_neighbouring_poison_entries_do_not_pass_for_an_outage(
    stream: EventStream, usage: UsageService
) -> None:
    stream.publish([payload("bad-1"), payload("bad-2")] + [payload(f"e{i}") for i in range(6)])
    options = WorkerOptions(batch=8, claim_idle_ms=0, max_deliveries=1)
    sick = Poisoned(usage, "bad-1", "bad-2")
    worker = StreamWorker(stream, sick, consumer="w", options=options)  # type: ignore[arg-type]
    worker.handle(stream.read("w", count=8, block_ms=0))
    assert cpu(usage) == 60
    assert sorted(json.loads(body)["id"] for _, body, _ in stream.dead_letters(count=5)) == [
        "bad-1",
        "bad-2",
    ]
    assert stream.pending() == 0


def test_entries_that_are_not_plain_json_lines_are_rejected_or_counted_alone(
    stream: EventStream, usage: UsageService
) -> None:
    """The columnar path reads a batch's entries as lines: an entry that is not JSON, is
    blank, spans lines or holds two objects sends the batch to the reference, which counts the
    good ones and rejects the rest as usage dead letters, without failing the batch."""
    spread = json.dumps(json.loads(payload("spread")), indent=2).encode()
    odd = [b"not json", b"", spread, payload("x") + b"\n" + payload("y"), b"[1, 2]"]
    stream.publish([payload(f"e{i}") for i in range(5)] + odd)
    worker = StreamWorker(stream, usage, consumer="w", options=WorkerOptions(batch=20))
    drain(worker)
    assert cpu(usage) == 60  # e0..e4 and the event spread over lines
    assert worker.stats.outcomes == {"accepted": 6, "rejected": 4}
    assert stream.pending() == 0
    assert len(usage.dead_letters()) == 4


@pytest.mark.redis
@pytest.mark.parametrize("protocol", [2, 3])
def test_entries_from_other_producers_are_read_by_their_event_field(
    redis_url: str, stream_name: str, protocol: int
) -> None:
    """Producers in other languages XADD entries themselves, maybe with fields of their own
    and in any order: the worker reads the ``event`` field of each (an entry without one has
    an empty payload, rejected and kept as a dead letter like any bad event), over either
    reply protocol."""
    stream = RedisEventStream(f"{redis_url}?protocol={protocol}", stream_name, "synor-test")
    assert stream.client.connection_pool.connection_kwargs["protocol"] == protocol
    plain = stream.client.xadd(stream_name, {"event": payload("a")})
    later = stream.client.xadd(stream_name, {"source": "billing-js", "event": payload("b")})
    without = stream.client.xadd(stream_name, {"source": "billing-js"})
    entries = stream.read("w1", count=10, block_ms=0)
    assert [(e.entry_id, e.payload, e.deliveries) for e in entries] == [
        (plain.decode(), payload("a"), 1),
        (later.decode(), payload("b"), 1),
        (without.decode(), b"", 1),
    ]
    stream.close()
