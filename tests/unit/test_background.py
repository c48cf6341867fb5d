"""A background task (here a fold): started by the first ask, asks during a run merged into
one more, a failing run logged and the thread kept, nothing run after close."""

from __future__ import annotations

import logging
import threading

import pytest

from synor_economics.adapters.sql.background import BackgroundTask


class Folding:
    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.done = threading.Semaphore(0)
        self.fail_next = False

    def fold(self) -> None:
        self.calls += 1
        self.started.set()
        self.release.wait(10)
        try:
            if self.fail_next:
                self.fail_next = False
                raise ConnectionError("database away")
        finally:
            self.done.release()


def test_asks_during_a_fold_make_one_more_fold() -> None:
    folding = Folding()
    folder = BackgroundTask(folding.fold, name="synor-test-fold", failure="folding failed")
    folder.ask()
    assert folding.started.wait(10)
    for _ in range(5):  # while the first fold runs
        folder.ask()
    folding.release.set()
    assert folding.done.acquire(timeout=10)
    assert folding.done.acquire(timeout=10)
    folder.close()
    assert folding.calls == 2


def test_a_failing_fold_is_logged_and_the_next_ask_folds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    folding = Folding()
    folding.fail_next = True
    folding.release.set()
    folder = BackgroundTask(folding.fold, name="synor-test-fold", failure="folding failed")
    with caplog.at_level(logging.ERROR):
        folder.ask()
        assert folding.done.acquire(timeout=10)
    folder.ask()
    assert folding.done.acquire(timeout=10)
    folder.close()
    assert folding.calls == 2
    assert "folding failed" in caplog.text


def test_nothing_is_folded_after_close() -> None:
    folding = Folding()
    folding.release.set()
    folder = BackgroundTask(folding.fold, name="synor-test-fold", failure="folding failed")
    folder.close()  # never started: nothing to join
    folder.ask()
    assert not folding.done.acquire(timeout=0.2)
    assert folding.calls == 0
    assert not [t for t in threading.enumerate() if t.name == "synor-rollup-fold"]
