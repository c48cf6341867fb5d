"""Folding the rollup log on a thread and a connection of its own (PostgreSQL).

Why. A fold of the log (``usage_repository._PG_FOLD``: some 65,000 deltas deleted from the
log and added into ``usage_hourly``) took about half a second of PostgreSQL's time. Done inline
it was a quarter of a stream worker's time, spent waiting with nothing else to do. On a
connection of its own it is a PostgreSQL process of its own, on another core, while the writer
goes on appending to the log. PostgreSQL makes this safe: the fold deletes the rows its
snapshot sees and adds exactly those, in one statement, so deltas committed meanwhile stay for
the next fold, and a reader's snapshot sees the log either before the fold or after it, never
half of it.

SQLite folds inline, as before: it has one writer at a time, so a fold on another connection
would only make the writer wait for it.

A fold that fails (the database went away) is logged and left: the deltas stay in the log,
where readers count them, and the next write after the database is back asks for a fold again.
A fold cut off by the process's end is rolled back by PostgreSQL, whole.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)


class Folding(Protocol):
    def fold(self) -> None:
        """Fold the log in a transaction of its own, if it holds enough deltas."""


class BackgroundFold:
    """A thread that folds the rollup log whenever it is asked to (after a write that logged
    deltas). Asks that come while a fold runs are merged into one more fold after it."""

    def __init__(self, folding: Folding) -> None:
        self._folding = folding
        self._asked = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ask(self) -> None:
        """Ask for a fold; the thread starts at the first ask."""
        with self._lock:
            if self._stopping:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="synor-rollup-fold", daemon=True
                )
                self._thread.start()
        self._asked.set()

    def close(self) -> None:
        """Stop asking; a fold that is running finishes first (its deltas are then in
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
                self._folding.fold()
            except Exception:  # the database is away: the deltas wait in the log
                log.exception("folding the usage rollup log failed; it is retried later")
