"""Consuming the usage stream: read a batch, count it, then acknowledge it.

Exactly once comes from two rules. An entry is acknowledged only after the transaction that
counted its event has committed, so a worker that dies at any point leaves the entry pending,
and another worker (or itself, restarted) claims it once it has sat idle. And counting is
idempotent on ``(account, id)``, so an entry counted but not acknowledged before a crash comes
back as a duplicate, not a second count.

An entry that keeps failing is isolated from its batch (the batch is split in halves until the
failing entries stand alone) and, once it has been delivered ``max_deliveries`` times, moved to
the dead-letter stream with the error. A failure that no entry escapes (the database is down) is
an outage, not a poison entry: the worker backs off and nothing is dead-lettered.

Invalid events are not failures: they are answered "rejected", recorded as usage dead letters in
the same transaction, and acknowledged like the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from synor_economics.ports import EventStream, StreamEntry
from synor_economics.services.usage import Screened, UsageService
from synor_economics.services.usage_input import InputError, Lines, decode_json

log = logging.getLogger(__name__)

_PROBES_BEFORE_OUTAGE = 8
"""Single entries tried, all failing, before a failed batch is taken for an outage."""


_HEALTHY_WINDOW_S = 60.0
"""A store that counted a batch this recently is taken to be up."""


class OutageError(Exception):
    """Nothing in a batch could be counted: the store is unavailable, not the entries bad."""


@dataclass
class WorkerStats:
    batches: int = 0
    entries: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    outages: int = 0


DEFAULT_BATCH = 10_000
"""Most entries read, counted and acknowledged at a time (one transaction). A read takes what
is there, up to this, so a quiet stream still makes small batches; under load, a batch pays its
transaction's fixed costs (the lock, the commit's flush, the copies' set-up, the
acknowledgement) for more events: one worker into PostgreSQL went from about 75k to 93k events/s
between batches of 2,000 and 10,000, and a batch of 10,000 takes about 0.1 s."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    batch: int = DEFAULT_BATCH
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    """How long an entry sits unacknowledged before another consumer may take it over."""
    claim_every_s: float = 5.0
    max_deliveries: int = 5
    max_backoff_s: float = 5.0


@dataclass(frozen=True, slots=True)
class _Batch:
    """Entries read from the stream, validated already when they were read ahead."""

    entries: list[StreamEntry]
    screened: Screened | None


class StreamWorker:
    """One consumer of the usage stream's group."""

    def __init__(
        self,
        stream: EventStream,
        usage: UsageService,
        *,
        consumer: str,
        options: WorkerOptions | None = None,
    ) -> None:
        self.stream = stream
        self.usage = usage
        self.consumer = consumer
        self.options = options or WorkerOptions()
        self.stats = WorkerStats()
        self._last_ok = float("-inf")

    def run(
        self,
        stop: threading.Event,
        *,
        drain: bool = False,
        on_batch: Callable[[WorkerStats], None] | None = None,
    ) -> WorkerStats:
        """Consume until ``stop`` is set, or with ``drain`` until nothing is left to read or to
        take over (a drain takes idle entries over as it goes, and once more before it ends).

        While a batch is stored, the next is read and validated on a helper thread
        (``_read``); a batch read ahead is still stored before the worker stops."""
        options = self.options
        block_ms = 0 if drain else options.block_ms
        next_claim = 0.0
        backoff = 0.0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synor-read-ahead") as helper:
            ahead: Future[_Batch] | None = None
            while ahead is not None or not stop.is_set():
                claimed = False
                if ahead is not None:  # read while the last batch was being stored
                    batch, ahead = ahead.result(), None
                elif time.monotonic() >= next_claim:
                    taken = self.stream.claim_idle(
                        self.consumer, idle_ms=options.claim_idle_ms, count=options.batch
                    )
                    batch, claimed = _Batch(taken, None), True
                    next_claim = time.monotonic() + options.claim_every_s
                else:
                    batch = _Batch([], None)
                if not batch.entries and not stop.is_set():
                    batch = self._read(block_ms)
                if not batch.entries:
                    if drain and claimed:
                        break  # nothing new, nothing to take over: drained
                    if drain:
                        next_claim = 0.0  # a drain takes idle entries over before it ends
                    continue
                if self._read_ahead(stop, drain=drain, batch=batch, claim_due=next_claim):
                    ahead = helper.submit(self._read, block_ms)
                try:
                    self.handle(batch.entries, batch.screened)
                    backoff = 0.0
                except OutageError as error:
                    self.stats.outages += 1
                    backoff = min(options.max_backoff_s, max(0.1, backoff * 2))
                    log.warning("usage store unavailable (%s); retrying in %.1fs", error, backoff)
                    stop.wait(backoff)
                if on_batch is not None:
                    on_batch(self.stats)
        return self.stats

    def _read_ahead(
        self, stop: threading.Event, *, drain: bool, batch: _Batch, claim_due: float
    ) -> bool:
        """Whether to read the next batch while this one is stored: not when stopping, not
        when a claim of idle entries is due (it comes first), and not when a drain has just
        read the stream's last entries."""
        if stop.is_set() or time.monotonic() >= claim_due:
            return False
        return not (drain and len(batch.entries) < self.options.batch)

    def _read(self, block_ms: int) -> _Batch:
        """The next batch of new entries, decoded and validated (the part of counting that
        needs no database), so that it can be done on a helper thread while the batch before it
        is stored. Entries read ahead are this consumer's until acknowledged, like any other:
        if the worker dies first, they are taken over once idle."""
        entries = self.stream.read(self.consumer, count=self.options.batch, block_ms=block_ms)
        if not entries:
            return _Batch(entries, None)
        return _Batch(entries, self.usage.screen_batch(_texts(entries), "stream"))

    def handle(self, entries: Sequence[StreamEntry], screened: Screened | None = None) -> None:
        """Count a batch and acknowledge it; isolate and, if due, dead-letter failing entries.
        ``screened`` is the batch already validated, if it was read ahead."""
        self.stats.batches += 1
        self.stats.entries += len(entries)
        probes = [0, 0]
        try:
            self._count(entries, screened)
            return
        except Exception as error:  # any failure: find out whose it is
            failing = self._isolate(list(entries), error, probes)
        if failing is None or (probes[1] == 0 and not self._store_recently_ok()):
            raise OutageError(f"no entry of a batch of {len(entries)} could be counted")
        for entry, cause in failing:
            if entry.deliveries >= self.options.max_deliveries:
                self.stream.dead_letter(entry, f"{type(cause).__name__}: {cause}")
                self.stats.dead_lettered += 1
            # otherwise it stays pending and is claimed again once idle

    def _count(self, entries: Sequence[StreamEntry], screened: Screened | None = None) -> None:
        if screened is None:
            screened = self.usage.screen_batch(_texts(entries), "stream")
        for status, count in self.usage.store(screened).counts().items():
            self.stats.outcomes[status.value] += count
        self._last_ok = time.monotonic()
        self.stream.ack([entry.entry_id for entry in entries])

    def _store_recently_ok(self) -> bool:
        """Whether a batch was counted lately: then a lone failing entry is the entry's fault."""
        return time.monotonic() - self._last_ok < _HEALTHY_WINDOW_S

    def _isolate(
        self, entries: list[StreamEntry], error: Exception, probes: list[int]
    ) -> list[tuple[StreamEntry, Exception]] | None:
        """Split a failed batch until the failing entries stand alone; count the rest.

        ``probes`` is (single entries tried, batches that succeeded), over the whole search.
        Returns the failing entries, or None once ``_PROBES_BEFORE_OUTAGE`` single entries
        failed with nothing counted yet (an outage: no point trying the rest one by one).
        Whether a search that counted nothing at all is an outage is the caller's call.
        """
        if len(entries) == 1:
            probes[0] += 1
            return [(entries[0], error)]
        failing: list[tuple[StreamEntry, Exception]] = []
        middle = len(entries) // 2
        for half in (entries[:middle], entries[middle:]):
            if probes[1] == 0 and probes[0] >= _PROBES_BEFORE_OUTAGE:
                return None
            try:
                self._count(half)
                probes[1] += 1
            except Exception as half_error:  # narrowed down below
                found = self._isolate(half, half_error, probes)
                if found is None:
                    return None
                failing.extend(found)
        return failing


def _texts(entries: Sequence[StreamEntry]) -> Lines:
    """A batch's entries as JSON texts: validated a column at a time (``usage_columns``), those
    the columns cannot take decoded one by one."""
    return Lines([entry.payload for entry in entries], decode=_decode)


def _decode(payload: bytes, _number: int = 0) -> object:
    """An entry's event; text that is not JSON is passed on as text, to be rejected (and kept
    as a usage dead letter) with the reason, like any other invalid event."""
    try:
        return decode_json(payload)
    except InputError:
        return payload.decode("utf-8", errors="replace")
