"""Group commit: batches screened side by side (concurrent HTTP requests) stored together.

Why. Every write transaction ends with its log synced to disk (``synchronous=FULL`` on
SQLite, the WAL flush on PostgreSQL) and, on SQLite, with every page it touched written to the
log; and SQLite has one writer at a time anyway. When several requests arrive at once, one
committer thread takes every batch that is waiting (up to ``max_events``), stores them in one
transaction, in the order they arrived, and answers each once that transaction is durable: the
commit is paid once for the group, and while it runs the requests behind it are screened
(validation needs no database) on their own threads.

What does not change: a batch's outcomes are those it would have had stored alone after the
ones before it (dedup sees the earlier batches' rows in the same transaction), and no request
is answered before its events are committed. A group that fails is tried again batch by batch,
so a batch that cannot be stored fails alone and the others are kept.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synor_economics.services.usage import Outcomes, Screened, UsageService

_DEFAULT_MAX_EVENTS = 50_000
"""Most events stored in one group transaction: keeps a transaction (and the wait of the first
request in it) short when many large requests arrive at once."""


@dataclass(frozen=True, slots=True)
class _Waiting:
    screened: Screened
    answer: Future[Outcomes] = field(default_factory=Future)


class GroupCommitter:
    """One thread that stores the batches handed to :meth:`submit`, several at a time."""

    def __init__(self, usage: UsageService, *, max_events: int = _DEFAULT_MAX_EVENTS) -> None:
        self._usage = usage
        self._max_events = max_events
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, screened: Screened) -> Future[Outcomes]:
        """Queue a screened batch; the future holds its outcomes once they are durable."""
        waiting = _Waiting(screened)
        with self._lock:
            if self._closed:
                raise RuntimeError("the usage committer is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="synor-usage-commit", daemon=True
                )
                self._thread.start()
            self._queue.put(waiting)
        return waiting.answer

    def close(self) -> None:
        """Store what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            size = first.screened.size
            while size < self._max_events:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
                size += more.screened.size
            self._commit(group)

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            answers = self._usage.store_group([waiting.screened for waiting in group])
        except Exception as error:
            if len(group) == 1:
                group[0].answer.set_exception(error)
                return
            for waiting in group:  # alone: a batch that cannot be stored fails by itself
                waiting.screened.intake.forget_dedup()
                self._commit([waiting])
            return
        for waiting, outcomes in zip(group, answers, strict=True):
            waiting.answer.set_result(outcomes)
