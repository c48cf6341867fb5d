"""The payment watcher (SPEC §7): SYNOR payments on chain, credited once and only once.

Each poll reads the logs of the blocks since its cursor: SYNOR transfers to the treasury or to
an account's deposit address, and InvoicePayments' ``InvoicePaid``. Every payment is recorded,
keyed by ``(chain_id, tx_hash, log_index)``, as ``pending``. Once its block has the configured
number of confirmations, and its block hash is still the chain's at that height, it is credited
through billing (an invoice payment: what the invoice has due, the rest to prepaid; a deposit:
prepaid) with that key as the billing reference. Billing applies a reference once, so a crash
between crediting and marking the row credited is repaired by the next poll crediting the same
reference again, to no effect.

**Reorgs.** The cursor keeps its block's hash. When that hash is no longer the chain's, the
watcher reads again from ``reorg_depth`` blocks back. A pending payment whose block left the
chain, and that the new branch does not hold, becomes ``orphaned``; if it reappears in a later
block it is pending again with its new block. A payment is only credited from a block the chain
still has at the moment of crediting, so set ``confirmations`` beyond any reorg you expect.

A payment nothing can be credited to (a transfer to the treasury naming no invoice, an unknown
invoice number) is ``unmatched``, with the reason, for an operator to settle: nothing is lost.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from synor_economics.domain.errors import SynorError
from synor_economics.domain.instants import to_us
from synor_economics.ports import (
    ChainPayment,
    Clock,
    PaymentChain,
    PaymentRow,
    PaymentWatchUnitOfWork,
)
from synor_economics.services.billing import BillingService, MoneyIn

log = logging.getLogger(__name__)

PENDING, CREDITED, UNMATCHED, ORPHANED = "pending", "credited", "unmatched", "orphaned"
CREDIT_CHUNK = 500
"""Payments credited per billing transaction."""


@dataclass(frozen=True, slots=True)
class WatchReport:
    """What one poll did."""

    head: int
    scanned: tuple[int, int] | None
    """The blocks read (first, last), if any."""
    seen: int
    credited: int
    unmatched: int
    orphaned: int
    reorg: bool


def _key(payment: ChainPayment) -> tuple[int, str, int]:
    return (payment.chain_id, payment.tx_hash, payment.log_index)


class PaymentWatcher:
    def __init__(
        self,
        uow: PaymentWatchUnitOfWork,
        billing: BillingService,
        clock: Clock,
        chain: Callable[[], PaymentChain],
        *,
        confirmations: int = 12,
        reorg_depth: int = 64,
        batch_blocks: int = 2_000,
    ) -> None:
        if confirmations < 1:
            raise SynorError("a payment needs at least one confirmation")
        self.uow = uow
        self.billing = billing
        self.clock = clock
        self._chain_factory = chain
        self._chain: PaymentChain | None = None
        self.confirmations = confirmations
        self.reorg_depth = reorg_depth
        self.batch_blocks = batch_blocks

    def chain(self) -> PaymentChain:
        if self._chain is None:
            self._chain = self._chain_factory()
        return self._chain

    # -- a poll ------------------------------------------------------------------------------

    def poll(self) -> WatchReport:
        """Read the new blocks, record what they pay, credit what is confirmed."""
        chain = self.chain()
        head = chain.head()
        with self.uow.read() as tx:
            cursor = tx.chain.cursor(chain.chain_id)
            deposits = tx.chain.deposit_addresses()
        reorg = cursor is not None and chain.block_hash(cursor[0]) != cursor[1]
        first = chain.first_block if cursor is None else cursor[0] + 1
        if reorg and cursor is not None:
            first = max(0, cursor[0] - self.reorg_depth)
        seen = 0
        scanned = (first, head) if first <= head else None
        for start in range(first, head + 1, self.batch_blocks):
            last = min(head, start + self.batch_blocks - 1)
            found = chain.payments(start, last, deposits)
            seen += len(found)
            self._record(found, chain.chain_id, last, chain.block_hash(last))
        credited, unmatched, orphaned = self._settle(chain, head, deposits)
        return WatchReport(head, scanned, seen, credited, unmatched, orphaned, reorg)

    def _record(
        self, found: list[ChainPayment], chain_id: int, last: int, last_hash: str | None
    ) -> None:
        """Record a batch of blocks' payments and move the cursor past them, together. New
        payments become pending; one a reorg moved to another block, or brought back, is
        pending again with its block; credited and unmatched ones stay as they are."""
        now_us = _us(self.clock)
        with self.uow.write() as tx:
            known = tx.chain.seen([_key(p) for p in found]) if found else {}
            new, again = [], []
            for payment in found:
                before = known.get(_key(payment))
                if before is None:
                    new.append(PaymentRow(payment, PENDING, None, now_us, None))
                elif before.status == ORPHANED or (
                    before.status == PENDING and before.payment != payment
                ):
                    again.append(PaymentRow(payment, PENDING, None, before.seen_us, None))
            tx.chain.add(new)
            tx.chain.replace(again)
            if last_hash is not None:
                tx.chain.set_cursor(chain_id, last, last_hash)

    def _settle(
        self, chain: PaymentChain, head: int, deposits: dict[str, str]
    ) -> tuple[int, int, int]:
        """Orphan pending payments whose block left the chain; credit the confirmed ones, a
        chunk at a time (one billing transaction each, then one to mark them)."""
        with self.uow.read() as tx:
            pending = tx.chain.pending(chain.chain_id)
        hashes: dict[int, str | None] = {}
        marks: list[tuple[ChainPayment, str, str | None]] = []
        due: list[ChainPayment] = []
        for row in pending:
            payment = row.payment
            number = payment.block_number
            if number not in hashes:
                hashes[number] = chain.block_hash(number)
            if hashes[number] != payment.block_hash:
                marks.append((payment, ORPHANED, "its block left the chain (a reorg)"))
            elif head - number + 1 >= self.confirmations:
                due.append(payment)
        for start in range(0, len(due), CREDIT_CHUNK):
            marks.extend(self._credit(due[start : start + CREDIT_CHUNK], deposits))
        now_us = _us(self.clock)
        with self.uow.write() as tx:
            tx.chain.set_statuses(
                [
                    (_key(payment), status, note, now_us if status == CREDITED else None)
                    for payment, status, note in marks
                ]
            )
        count = Counter(status for _, status, _ in marks)
        return count[CREDITED], count[UNMATCHED], count[ORPHANED]

    def _credit(
        self, payments: list[ChainPayment], deposits: dict[str, str]
    ) -> list[tuple[ChainPayment, str, str | None]]:
        """Credit through billing, each with its key as the reference (applied once)."""
        marks: list[tuple[ChainPayment, str, str | None]] = []
        items: list[tuple[ChainPayment, MoneyIn, str]] = []
        for payment in payments:
            if payment.kind == "invoice" and payment.reference:
                item = MoneyIn(payment.key, payment.amount, number=payment.reference)
                items.append((payment, item, f"invoice {payment.reference}"))
                continue
            account = deposits.get(payment.receiver.lower())
            if account is None:
                note = "a transfer to the treasury that names no invoice or account"
                marks.append((payment, UNMATCHED, note))
            else:
                item = MoneyIn(payment.key, payment.amount, account=account)
                items.append((payment, item, f"prepaid of {account}"))
        outcomes = self.billing.receive_all([item for _, item, _ in items]) if items else []
        for (payment, _, note), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, SynorError):
                marks.append((payment, UNMATCHED, str(outcome)))
            else:
                marks.append((payment, CREDITED, note))
        return marks

    def run(self, stop: threading.Event, interval_s: float = 5.0) -> None:
        """Poll until ``stop`` is set (``synor serve``); a failing poll is logged and tried
        again next time, from the same cursor: nothing is skipped."""
        while not stop.is_set():
            try:
                self.poll()
            except Exception:  # a node down for a while must not end the watcher
                log.exception("payment watcher poll failed")
            stop.wait(interval_s)

    # -- reading -----------------------------------------------------------------------------

    def listing(self, *, limit: int = 50, status: str | None = None) -> list[PaymentRow]:
        with self.uow.read() as tx:
            return tx.chain.listing(limit=limit, status=status)

    def add_deposit_address(self, address: str, account: str) -> None:
        """Transfers to ``address`` are ``account``'s deposits from now on."""
        with self.uow.write() as tx:
            tx.chain.add_deposit_address(address.lower(), account)


def _us(clock: Clock) -> int:
    return to_us(clock.now())
