"""Posting batches with one batch's database work overlapped with the next batch's Python work.

Posting is two kinds of work: working out the transfers (the ledger machine, in Python) and
storing them (the database, which runs in C with the GIL released, or in its own server
process). Done one after the other, a two-core machine keeps one core idle most of the time.
The pipeline splits them, as TigerBeetle splits prepare from commit:

1. **prepare** (the caller's thread, one batch at a time): read what the batch needs, run the
   machine on the in-memory state as it will be once every batch before it has committed,
   encode its rows in the store's own form, and hand them to the committer;
2. **commit** (one committer thread, in order): in a write transaction, check that the ledger is
   exactly where the batch was prepared against, store the encoded rows, commit; then answer
   the caller.

The committer runs almost no Python: every row is built and serialised on the preparing side, so
the committer needs the interpreter only to start its few statements, and the two threads stop
taking it from each other (encoding on the commit side left SQLite at about 42k transfers/s on
two cores; on the prepare side it reaches 55–70k).

While the committer stores batch *n*, the next caller prepares batch *n + 1*. A caller still gets
its outcomes only after its batch is durable, and a batch is still one transaction.

What keeps it exact:

* prepare sees batches still in flight through an overlay (their transfers by id, the pending
  transfers they resolved) and through the account cache, which always holds every account an
  in-flight batch touched, at the balance the last in-flight batch leaves it;
* a batch records the ledger head it was prepared against (``base``); the committer refuses it if
  the head is elsewhere (another process wrote in between), and the caller prepares it again;
* batches prepared on top of a batch that then failed are refused too: every failure ends the
  current *epoch*, and a batch of a failed epoch is refused without being tried. The next prepare
  waits for the pipeline to empty, forgets the cache and starts a new epoch from what is stored.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from synor_economics.domain.ledger import (
    Account,
    Applied,
    Command,
    LedgerMachine,
    Outcome,
    TransferRecord,
    WorkingSet,
    accounts_named,
    referenced_id,
)
from synor_economics.ports import Clock, LedgerRepository, LedgerWrite, UnitOfWork
from synor_economics.services.time import to_us

_MAX_RETRIES = 3
"""Times a batch refused as stale is prepared again before the caller falls back to preparing
it inside the write transaction itself (which cannot be stale: it holds the writer lock)."""


class AccountCache:
    """Accounts with their balances as of ledger sequence ``seq``, kept between batches so a
    batch need not reload the accounts earlier batches touched.

    It is used only when the ledger's head is still ``seq``, i.e. nobody else has moved money
    since; otherwise it is ignored. Balances change only through transfers, which always advance
    the head, and account specs never change, so the head is a complete version of what is
    cached.
    """

    LIMIT = 250_000
    """Most accounts kept: beyond it the cache starts over, bounding memory."""

    def __init__(self) -> None:
        self.seq = -1
        self.accounts: dict[str, Account] = {}

    def valid_at(self, head_seq: int) -> dict[str, Account]:
        """The cached accounts if the ledger is still at ``seq``; otherwise every one of them
        may be stale, so the cache is emptied (and refilled by ``absorb``)."""
        if head_seq != self.seq:
            self.accounts = {}
        return self.accounts

    def full_after(self, more: int) -> bool:
        return len(self.accounts) + more > self.LIMIT

    def absorb(self, accounts: dict[str, Account], seq: int) -> None:
        if self.full_after(len(accounts)):
            self.accounts = {}
        self.accounts.update(accounts)
        self.seq = seq


class StaleBatchError(Exception):
    """A prepared batch that no longer fits the stored ledger; it is prepared again."""


@dataclass(slots=True, eq=False)
class _Batch:
    """A prepared batch on its way to the committer."""

    epoch: int
    base: int
    """The ledger head (sequence) it was prepared against."""
    outcomes: list[Outcome]
    write: LedgerWrite
    """What the committer stores, encoded while the batch before it was being written."""
    tip: tuple[int, int]
    """(sequence, timestamp) of the ledger once this batch is stored."""
    known: dict[str, TransferRecord]
    resolved: set[str]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def load_working_set(
    repo: LedgerRepository,
    commands: Sequence[Command],
    cache: AccountCache,
    flying: Sequence[_Batch] = (),
) -> WorkingSet:
    """The slice of the ledger a batch needs, as it will be once every in-flight batch is
    stored: what is stored, overlaid with what is in flight. ``flying`` must be listed before
    the read began, so that a batch committing in between is seen at least once."""
    ids = {c.id for c in commands}
    refs = {r for c in commands if (r := referenced_id(c)) is not None}
    wanted = ids | refs
    known = repo.transfers(wanted)
    for batch in flying:
        known.update({i: r for i, r in batch.known.items() if i in wanted})
    names = {a for c in commands for a in accounts_named(c)}
    names.update(e.account for r in refs if r in known for e in known[r].entries)
    last_seq, last_ts = flying[-1].tip if flying else repo.head()
    cached = cache.valid_at(last_seq)
    accounts = {name: cached[name] for name in names if name in cached}
    if len(accounts) < len(names):
        accounts.update(repo.accounts(names - accounts.keys()))
    resolved = repo.resolved(refs)
    for batch in flying:
        resolved.update(batch.resolved & refs)
    return WorkingSet(accounts, known, resolved, last_seq, last_ts)


def encode(repo: LedgerRepository, applied: Sequence[Applied], working: WorkingSet) -> LedgerWrite:
    """What the machine applied, encoded for storage: the transfers with their entries, and
    the balances of the accounts they touched as the batch leaves them."""
    changed = [working.accounts[name] for name in sorted(working.touched)]
    return repo.encode(applied, working.accounts, changed)


def applied_of(outcomes: Sequence[Outcome]) -> list[Applied]:
    """The outcomes that changed the ledger."""
    return [o for o in outcomes if isinstance(o, Applied)]


def store(repo: LedgerRepository, outcomes: Sequence[Outcome], working: WorkingSet) -> None:
    """Write what the machine applied, in the caller's write transaction."""
    repo.write(encode(repo, applied_of(outcomes), working))


def apply_commands(
    repo: LedgerRepository,
    commands: Sequence[Command],
    now_us: int,
    *,
    loaded: Sequence[Account] = (),
) -> list[Outcome]:
    """Apply commands in order inside the caller's write transaction; one outcome each.

    This is how a use case moves money atomically with its own writes (closing an invoice
    posts its transfers in the invoice's transaction). Each command is all-or-nothing on its
    own: a refused one leaves no trace and does not stop the others. ``loaded`` are accounts
    the caller read (or opened) in this same transaction, as they stand: they are not read
    again.
    """
    if not commands:
        return []
    cache = AccountCache()
    if loaded:
        cache.absorb({account.spec.id: account for account in loaded}, repo.head()[0])
    working = load_working_set(repo, commands, cache)
    outcomes = LedgerMachine(working).apply_all(commands, now_us)
    store(repo, outcomes, working)
    return outcomes


class PostingPipeline:
    """Prepares batches on the callers' threads and commits them in order on its own."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock
        self._preparing = threading.Lock()
        """One batch is prepared at a time; it owns the cache and the epoch."""
        self._guard = threading.Lock()
        """Guards what the committer shares: the in-flight queue and the failed epoch."""
        self._in_flight: deque[_Batch] = deque()
        self._cache = AccountCache()
        self._epoch = 0
        self._failed_epoch = -1
        self._jobs: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._committer: threading.Thread | None = None

    def post(self, commands: Sequence[Command]) -> list[Outcome]:
        """Apply a batch; return once it is durable. Per-command outcomes, one transaction."""
        for _ in range(_MAX_RETRIES):
            with self._preparing:
                batch = self._prepare_safely(commands)
                self._submit(batch)
            batch.done.wait()
            if batch.error is None:
                return batch.outcomes
            if not isinstance(batch.error, StaleBatchError):
                raise batch.error
        return self._post_in_place(commands)

    @property
    def in_flight(self) -> int:
        """Batches prepared and not yet answered."""
        with self._guard:
            return len(self._in_flight)

    def close(self) -> None:
        """Stop the committer once every submitted batch is done."""
        with self._preparing:
            if self._committer is not None:
                self._jobs.put(None)
                self._committer.join()
                self._committer = None

    # -- prepare -----------------------------------------------------------------------------

    def _prepare_safely(self, commands: Sequence[Command]) -> _Batch:
        """Prepare a batch; if that fails halfway, the cache may hold half-moved balances, so
        it is forgotten (once the batches in flight, which do not depend on it, are done)."""
        try:
            return self._prepare(commands)
        except BaseException:
            with self._guard:
                flying = list(self._in_flight)
            self._restart(flying)
            raise

    def _prepare(self, commands: Sequence[Command]) -> _Batch:
        with self._guard:
            failed = self._failed_epoch == self._epoch
            flying = list(self._in_flight)
        if failed:
            self._restart(flying)
            flying = []
        now_us = to_us(self.clock.now())
        with self.uow.read() as tx:
            working = load_working_set(tx.ledger, commands, self._cache, flying)
            base = working.last_seq  # the machine moves it on
            outcomes = LedgerMachine(working).apply_all(commands, now_us)
            applied = applied_of(outcomes)
            write = encode(tx.ledger, applied, working)
        if flying and self._cache.full_after(len(working.accounts)):
            self._wait_for(flying)  # only an empty pipeline may forget in-flight balances
        self._cache.absorb(working.accounts, working.last_seq)
        return _Batch(
            epoch=self._epoch,
            base=base,
            outcomes=outcomes,
            write=write,
            tip=(working.last_seq, working.last_ts_us),
            known={o.record.id: o.record for o in applied},
            resolved={ref for o in applied if (ref := o.record.ref) is not None},
        )

    def _restart(self, flying: list[_Batch]) -> None:
        """After a failure: let the pipeline empty, forget what it assumed, start an epoch."""
        self._wait_for(flying)
        self._cache = AccountCache()
        self._epoch += 1

    @staticmethod
    def _wait_for(batches: list[_Batch]) -> None:
        for batch in batches:
            batch.done.wait()

    def _submit(self, batch: _Batch) -> None:
        with self._guard:
            self._in_flight.append(batch)
        if self._committer is None:
            self._committer = threading.Thread(
                target=self._commit_all, name="synor-ledger-committer", daemon=True
            )
            self._committer.start()
        self._jobs.put(batch)

    def _post_in_place(self, commands: Sequence[Command]) -> list[Outcome]:
        """Prepare and store a batch inside one write transaction (the writer lock held
        throughout), for a batch that kept being overtaken by another process."""
        with self._preparing:
            with self._guard:
                flying = list(self._in_flight)
            self._restart(flying)
            try:
                with self.uow.write() as tx:
                    working = load_working_set(tx.ledger, commands, self._cache)
                    now_us = to_us(self.clock.now())
                    outcomes = LedgerMachine(working).apply_all(commands, now_us)
                    store(tx.ledger, outcomes, working)
            except BaseException:
                self._cache = AccountCache()  # it may hold balances that did not commit
                raise
            self._cache.absorb(working.accounts, working.last_seq)
            return outcomes

    # -- commit ------------------------------------------------------------------------------

    def _commit_all(self) -> None:
        while (batch := self._jobs.get()) is not None:
            try:
                self._commit(batch)
            except BaseException as error:  # handed to the batch's caller
                batch.error = error
                with self._guard:
                    self._failed_epoch = batch.epoch
            finally:
                with self._guard:
                    self._in_flight.popleft()
                batch.done.set()

    def _commit(self, batch: _Batch) -> None:
        with self._guard:
            if self._failed_epoch == batch.epoch:
                raise StaleBatchError("prepared on top of a batch that failed")
        with self.uow.write() as tx:
            repo = tx.ledger
            head = repo.head()[0]
            if head != batch.base:
                raise StaleBatchError(f"prepared at sequence {batch.base}, ledger is at {head}")
            repo.write(batch.write)
