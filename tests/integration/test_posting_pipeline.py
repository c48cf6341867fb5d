"""The posting pipeline (services/posting.py) under concurrency, on every store: a batch prepared
on top of one still being stored is right if that one commits, and prepared again if it fails
or another writer overtakes it; nothing is lost or counted twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.domain.errors import LedgerError
from synor_economics.domain.ledger import Applied, Duplicate, Outcome, Rejected, Transfer
from synor_economics.services.ledger import LedgerService
from tests.integration.test_ledger_contract import ACCOUNTS, SYNOR, balance, spend

PREPAID = "customer:acct_1:prepaid"


class GatedUnitOfWork:
    """A unit of work whose write transactions wait at a gate, and can be made to fail once:
    it holds a batch "in flight" while the test prepares the next one on top of it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        self.fail_next = False
        self.fail_next_read = False

    @contextmanager
    def write(self) -> Iterator[Any]:
        self.waiting.set()
        self.gate.wait(timeout=30)
        with self.inner.write() as tx:
            if self.fail_next:
                self.fail_next = False
                raise OSError("disk full")
            yield tx

    def read(self) -> Any:
        if self.fail_next_read:
            self.fail_next_read = False
            raise OSError("connection reset")
        return self.inner.read()


@pytest.fixture
def gated(
    store: tuple[str, object], clock: FixedClock
) -> Iterator[tuple[LedgerService, GatedUnitOfWork]]:
    _, uow = store
    gate = GatedUnitOfWork(uow)
    service = LedgerService(gate, clock)
    service.open_accounts(ACCOUNTS)
    yield service, gate
    gate.gate.set()
    service.close()


def deposit_of(transfer_id: str, amount: int) -> Transfer:
    return Transfer.between(transfer_id, debit="chain:clearing", credit=PREPAID, amount=amount)


def in_thread(call: Callable[[], list[Outcome]]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["outcomes"] = call()
        except BaseException as error:
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def hold_first_batch(
    service: LedgerService, gate: GatedUnitOfWork, first: list[Transfer]
) -> tuple[threading.Thread, dict[str, Any]]:
    """Post ``first`` and keep it in flight: prepared, its write waiting at the gate."""
    gate.gate.clear()
    gate.waiting.clear()
    thread = in_thread(lambda: service.post_batch(first))
    until(gate.waiting.is_set)
    return thread


def test_a_batch_prepared_on_an_in_flight_one_sees_its_balances(gated: Any) -> None:
    service, gate = gated
    (first, first_result) = hold_first_batch(service, gate, [deposit_of("dep", 100)])
    second, second_result = in_thread(lambda: service.post_batch([spend("buy", 60)]))
    until(lambda: service.in_flight == 2)
    gate.gate.set()
    first.join()
    second.join()
    assert isinstance(first_result["outcomes"][0], Applied)
    assert isinstance(second_result["outcomes"][0], Applied)  # spent what "dep" brought
    assert balance(service, PREPAID) == 40
    assert service.check().ok


def test_batches_on_top_of_a_failed_one_are_prepared_again(gated: Any) -> None:
    service, gate = gated
    gate.fail_next = True
    first, first_result = hold_first_batch(service, gate, [deposit_of("dep", 100)])
    second, second_result = in_thread(lambda: service.post_batch([spend("buy", 60)]))
    until(lambda: service.in_flight == 2)
    gate.gate.set()
    first.join()
    second.join()
    assert isinstance(first_result["error"], OSError)
    (outcome,) = second_result["outcomes"]
    assert isinstance(outcome, Rejected)  # the deposit it relied on never happened
    assert outcome.error.code == "floor_exceeded"
    assert balance(service, PREPAID) == 0
    # The failed deposit can simply be sent again, and then the spend goes through.
    assert isinstance(service.post_batch([deposit_of("dep", 100)])[0], Applied)
    assert isinstance(service.post_batch([spend("buy", 60)])[0], Applied)
    assert balance(service, PREPAID) == 40
    assert service.check().ok


def test_a_retry_racing_its_in_flight_original_is_a_duplicate(gated: Any) -> None:
    service, gate = gated
    first, first_result = hold_first_batch(service, gate, [deposit_of("dep", 100)])
    second, second_result = in_thread(
        lambda: service.post_batch([deposit_of("dep", 100), deposit_of("dep-2", 1)])
    )
    until(lambda: service.in_flight == 2)
    gate.gate.set()
    first.join()
    second.join()
    assert isinstance(first_result["outcomes"][0], Applied)
    assert [type(o) for o in second_result["outcomes"]] == [Duplicate, Applied]
    assert balance(service, PREPAID) == 101
    assert service.check().ok


def test_another_writer_overtaking_a_prepared_batch_makes_it_prepare_again(
    gated: Any, clock: FixedClock
) -> None:
    service, gate = gated
    other = LedgerService(gate.inner, clock)
    other.post(deposit_of("dep", 10 * SYNOR))
    first, first_result = hold_first_batch(service, gate, [spend("buy", 8 * SYNOR)])
    other.post(spend("other-buy", 5 * SYNOR))  # lands first: 5 left, not 10
    gate.gate.set()
    first.join()
    (outcome,) = first_result["outcomes"]
    assert isinstance(outcome, Rejected)
    assert outcome.error.code == "floor_exceeded"
    assert balance(service, PREPAID) == 5 * SYNOR
    with pytest.raises(LedgerError):
        service.post(spend("too-much", 5 * SYNOR + 1))
    service.post(spend("exact", 5 * SYNOR))
    assert balance(other, PREPAID) == 0
    assert service.check().ok
    other.close()


def test_many_threads_posting_at_once_lose_nothing(
    store: tuple[str, object], clock: FixedClock
) -> None:
    _, uow = store
    service = LedgerService(uow, clock)  # type: ignore[arg-type]
    service.open_accounts(ACCOUNTS)
    service.post(deposit_of("fund", 10**6))
    batches = [
        [spend(f"t{t}-b{b}-{i}", 1 + i) for i in range(20)] for t in range(4) for b in range(5)
    ]
    results: list[list[Outcome]] = []
    threads = [
        threading.Thread(target=lambda b=b: results.append(service.post_batch(b))) for b in batches
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(o, Applied) for r in results for o in r)
    spent = sum(1 + i for _ in batches for i in range(20))
    assert balance(service, PREPAID) == 10**6 - spent
    assert balance(service, "revenue:compute") == spent
    # Sent again, all at once, every one is a duplicate and nothing moves.
    again = [service.post_batch(b) for b in batches]
    assert all(isinstance(o, Duplicate) for r in again for o in r)
    assert balance(service, PREPAID) == 10**6 - spent
    assert service.check().ok
    service.close()


def test_a_batch_that_cannot_be_prepared_leaves_nothing_behind(gated: Any) -> None:
    service, gate = gated
    service.post_batch([deposit_of("dep", 100)])
    gate.fail_next_read = True
    with pytest.raises(OSError, match="connection reset"):
        service.post_batch([spend("buy", 60)])
    assert balance(service, PREPAID) == 100
    assert isinstance(service.post_batch([spend("buy", 60)])[0], Applied)
    assert isinstance(service.post_batch([spend("more", 41)])[0], Rejected)
    assert balance(service, PREPAID) == 40
    assert service.check().ok
