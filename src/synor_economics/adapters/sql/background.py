"""Database upkeep on a thread and a connection of its own, asked for after writes commit:
folding PostgreSQL's rollup log, and SQLite's WAL checkpoints (``checkpoint.py``).

**Folding the rollup log (PostgreSQL).** A fold of the log (``usage_repository._PG_FOLD``:
some 65,000 deltas deleted from the log and added into ``usage_hourly``) took about half a
second of PostgreSQL's time. Done inline it was a quarter of a stream worker's time, spent
waiting with nothing else to do. On a connection of its own it is a PostgreSQL process of its
own, on another core, while the writer goes on appending to the log. PostgreSQL makes this
safe: the fold deletes the rows its snapshot sees and adds exactly those, in one statement, so
deltas committed meanwhile stay for the next fold, and a reader's snapshot sees the log either
before the fold or after it, never half of it. SQLite folds inline: it has one writer at a
time, so a fold on another connection would only make the writer wait for it.

A task that fails (the database went away) is logged and left: a fold's deltas stay in the
log, where readers count them, and the next write after the database is back asks again. A
fold cut off by the process's end is rolled back by PostgreSQL, whole.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundTask:
    """A thread that runs ``work`` whenever it is asked to (after a write). Asks that come
    while it runs are merged into one more run after it."""

    def __init__(self, work: Callable[[], object], *, name: str, failure: str) -> None:
        """``name`` names the thread; ``failure`` is logged, with the error, when a run
        fails."""
        self._work = work
        self._name = name
        self._failure = failure
        self._asked = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ask(self) -> None:
        """Ask for a run; the thread starts at the first ask."""
        with self._lock:
            if self._stopping:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._asked.set()

    def close(self) -> None:
        """Stop asking; a run under way finishes first (a fold's deltas are then in
        ``usage_hourly``; any left in the log are still counted by readers)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._asked.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            self._asked.wait()
            self._asked.clear()
            if self._stopping:
                return
            try:
                self._work()
            except Exception:  # the database is away: the next ask tries again
                log.exception(self._failure)
