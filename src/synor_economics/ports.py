"""The ports: what the use cases need from the outside world, as ``typing.Protocol`` classes.

Services depend on these, never on an adapter. ``adapters/sql`` and ``adapters/memory`` implement
them; ``bootstrap.py`` picks which. One write transaction (``UnitOfWork.write``) serialises writers
and spans every repository, so a later use case (closing an invoice) can post its ledger
transfers in the same transaction as the invoice itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple, Protocol

from synor_economics.domain.billing import AccountTerms, InvoiceStatus, IssuedInvoice, Notice
from synor_economics.domain.ledger import (
    Account,
    AccountSpec,
    Applied,
    EntryRecord,
    TransferRecord,
)
from synor_economics.domain.meters import Level
from synor_economics.domain.terms import Commitment, CreditGrant, Discount
from synor_economics.domain.usage import (
    ActiveEvent,
    DeadLetter,
    EventColumns,
    Replacement,
    UsageEvent,
)


class Clock(Protocol):
    """Time, injected so tests and simulations can fix it."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class LedgerWrite(Protocol):
    """A batch of ledger writes encoded by a repository, opaque to everyone else."""

    @property
    def transfers(self) -> int:
        """How many transfers it stores."""
        ...


class LedgerRepository(Protocol):
    """Storage of the ledger: accounts with running balances, transfers and their entries.

    Write methods are called inside ``UnitOfWork.write``; the ledger is append-only, and only the
    derived balance columns of accounts are ever rewritten.
    """

    def head(self) -> tuple[int, int]:
        """(last sequence number, last timestamp in µs); (0, 0) for an empty ledger."""
        ...

    def accounts(self, ids: Collection[str]) -> dict[str, Account]:
        """The named accounts that exist, with their current balances (copies the caller owns)."""
        ...

    def add_accounts(self, specs: Sequence[AccountSpec], opened_us: int) -> dict[str, Account]:
        """Open new accounts (ids not taken yet), all at once; each with its storage key."""
        ...

    def transfers(self, ids: Collection[str]) -> dict[str, TransferRecord]:
        """The named transfers that exist, with their entries."""
        ...

    def resolved(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` a later transfer already resolved (post/void) or reversed."""
        ...

    def encode(
        self,
        applied: Sequence[Applied],
        accounts: Mapping[str, Account],
        changed: Sequence[Account],
    ) -> LedgerWrite:
        """A batch's writes in the store's own form: newly applied transfers with their
        entries, in sequence order, and the running balances of the ``changed`` accounts as
        they stand now. ``accounts`` holds (at least) every account the entries name, with its
        storage key.

        Encoding is split from ``write`` so that it can happen on the thread preparing a batch,
        while the batch before it is being written: the writer then holds the interpreter as
        little as possible (see services/posting.py). Needs no transaction of its own."""
        ...

    def write(self, batch: LedgerWrite) -> None:
        """Store an encoded batch (one this kind of repository encoded)."""
        ...

    def all_accounts(self) -> list[Account]: ...

    def net_as_of(self, seq: int) -> dict[str, int]:
        """Posted net (debits − credits) of every account after transfer ``seq``."""
        ...

    def last_seq_at(self, ts_us: int) -> int:
        """The sequence number of the last transfer at or before ``ts_us`` (0 if none)."""
        ...

    def entries_of(
        self, account_id: str, *, limit: int, before: tuple[int, int] | None
    ) -> list[tuple[TransferRecord, EntryRecord]]:
        """An account's entries, newest first, with the transfer each belongs to; only those
        strictly before the ``(seq, leg)`` cursor when one is given."""
        ...

    def history(
        self, *, after_seq: int, limit: int
    ) -> list[tuple[TransferRecord, tuple[EntryRecord, ...]]]:
        """Transfers after ``after_seq`` in sequence order, with their stored entries."""
        ...


class Transaction(Protocol):
    """One database transaction and the repositories that work inside it."""

    @property
    def ledger(self) -> LedgerRepository: ...


class UnitOfWork(Protocol):
    """Opens transactions. ``write`` serialises writers (one at a time, ledger-wide)."""

    def write(self) -> AbstractContextManager[Transaction]: ...

    def read(self) -> AbstractContextManager[Transaction]: ...


class ConcurrentWriteError(Exception):
    """Another writer stored the same thing at the same moment; the transaction was rolled
    back and can simply be tried again (it will then see the other writer's rows)."""


EventKey = tuple[str, str]
"""(account, event id): what usage dedup is keyed on."""

HourKey = tuple[str, str, int]
"""(account, resource, hour start in µs): one hourly rollup."""

GaugeKey = tuple[str, str, str]
"""(account, resource, subject): one gauge's level."""


@dataclass(frozen=True, slots=True)
class HourlyDeltas:
    """Rollup deltas as columns: the (account, resource) pairs, and for each delta the index
    of its pair, its hour's start (µs), its quantity (canonical decimal text) and its number of
    events. A columnar batch's deltas are made in this form where it is screened
    (``usage_columns``), with no Python object per event."""

    pairs: list[tuple[str, str]]
    pair: list[int]
    hour_us: list[int]
    quantity: list[str]
    events: list[int]

    def __len__(self) -> int:
        return len(self.pair)

    @classmethod
    def of(cls, deltas: Mapping[HourKey, tuple[Decimal | str, int]]) -> HourlyDeltas:
        """The same deltas given by key."""
        numbers: dict[tuple[str, str], int] = {}
        pair = [numbers.setdefault(key[:2], len(numbers)) for key in deltas]
        quantities = [q if type(q) is str else format(q, "f") for q, _ in deltas.values()]
        return cls(
            list(numbers),
            pair,
            [key[2] for key in deltas],
            quantities,
            [n for _, n in deltas.values()],
        )


class UsageRepository(Protocol):
    """Storage of usage: events (unique per account and id), hourly rollups, gauge levels and
    dead letters. Writes happen inside ``UsageUnitOfWork.write``, which serialises writers."""

    def fingerprints(self, keys: Collection[EventKey]) -> dict[EventKey, str]:
        """The body fingerprints of the events already stored under these keys."""
        ...

    def add_events(
        self, events: Sequence[UsageEvent], *, received_us: int, source: str, generation: int = 0
    ) -> None:
        """Store new events (keys not yet stored in that generation: 0 for events as they
        arrive, a replacement's number for the events it brings)."""
        ...

    def add_new_events(
        self, events: EventColumns, *, received_us: int, source: str
    ) -> dict[int, str]:
        """Store those of these counter events (keys unique among them) whose keys are not yet
        stored, as events as they arrive (generation 0); for each of the others, by row, the
        fingerprint stored under its key. Dedup and storage of a batch given as columns, in one
        step: the keys are looked up once."""
        ...

    def lock_gauges(self, keys: Collection[GaugeKey]) -> None:
        """Hold these gauge keys until the transaction ends (writers that may run side by side
        must not interleave on one key's neighbours and open segment)."""
        ...

    def gauge_neighbours(self, key: GaugeKey, ts_us: int) -> tuple[Level | None, int | None]:
        """For a gauge key: the level of the last stored event at or before ``ts_us`` (latest
        arrival among equal times), and the time of the first stored event after it."""
        ...

    def add_hourly(self, deltas: Mapping[HourKey, tuple[Decimal | str, int]]) -> None:
        """Add (quantity, events) to these hourly rollups, creating the missing ones, exactly
        and safely against concurrent writers. A quantity is a decimal or its canonical text
        (``format(q, "f")``)."""
        ...

    def add_hourly_columns(self, deltas: HourlyDeltas) -> None:
        """:meth:`add_hourly` for deltas given as columns."""
        ...

    def open_gauges(self, keys: Collection[GaugeKey]) -> dict[GaugeKey, Level]:
        """The open segment (latest level and its start) of these gauge keys."""
        ...

    def save_open_gauges(self, rows: Mapping[GaugeKey, Level]) -> None: ...

    def add_rejections(self, rows: Sequence[DeadLetter]) -> None: ...

    def add_replacement(self, replacement: Replacement) -> int:
        """Record a replacement; its number."""
        ...

    def update_replacement(self, replacement: Replacement) -> None: ...

    def replacements(self, account: str | None) -> list[Replacement]:
        """Replacements, newest first (of one account, if given)."""
        ...

    def supersede(self, account: str, start_us: int, end_us: int, by: int) -> int:
        """Take the account's counted events in the window out of the count; how many."""
        ...

    def withdraw(self, replacement: int) -> None:
        """Take a replacement's events out of the count and restore those it superseded."""
        ...

    def active_events(
        self, account: str, resources: Collection[str], start_us: int, end_us: int | None
    ) -> list[ActiveEvent]:
        """Counted events of these resources from ``start_us`` (to ``end_us``), in time and
        arrival order."""
        ...

    def clear_rollups(
        self, account: str, resources: Collection[str], start_us: int, end_us: int | None
    ) -> None:
        """Delete these resources' hourly rollups in the range (and, when it is open-ended,
        their open gauge segments) before they are rebuilt."""
        ...

    def period_totals(
        self, account: str, start_us: int, end_us: int
    ) -> dict[str, tuple[Decimal, int]]:
        """Σ of an account's hourly rollups in ``[start_us, end_us)`` per resource: the raw
        quantity and the number of events counted."""
        ...

    def account_open_gauges(self, account: str) -> dict[GaugeKey, Level]: ...

    def period_totals_of(
        self, accounts: Collection[str], start_us: int, end_us: int
    ) -> dict[str, dict[str, Decimal]]:
        """``period_totals`` (quantities only) for many accounts in one read."""
        ...

    def open_gauges_of(self, accounts: Collection[str]) -> dict[GaugeKey, Level]:
        """``account_open_gauges`` for many accounts in one read."""
        ...

    def dead_letters(self, *, limit: int, before: int | None) -> list[DeadLetter]:
        """Dead letters, newest first; only those with ``seq < before`` when given."""
        ...


class UsageTransaction(Protocol):
    @property
    def usage(self) -> UsageRepository: ...


class UsageUnitOfWork(Protocol):
    """Transactions over usage storage (the SQL unit of work provides both ledger and usage)."""

    def write(self, *, exclusive: bool = False) -> AbstractContextManager[UsageTransaction]:
        """A write transaction. Usage writers may share the store; ``exclusive`` shuts out
        every other writer (the last try of a batch that keeps racing others)."""
        ...

    def read(self) -> AbstractContextManager[UsageTransaction]: ...


class GrantRecord(NamedTuple):
    """A stored credit grant: the grant (``remaining`` as of now) and its bookkeeping."""

    account: str
    grant: CreditGrant
    created_us: int
    broken_us: int | None
    """When its unused rest was written off as breakage (None: not yet)."""


class PaymentRecord(NamedTuple):
    """A recorded payment or deposit, applied once per reference."""

    reference: str
    account: str
    invoice: str | None
    amount: int
    to_invoice: int
    to_prepaid: int
    received_us: int


class BillingRepository(Protocol):
    """Account terms, grants, uptime, invoices and payments (one transaction's view)."""

    def account_terms(self, accounts: Collection[str]) -> dict[str, AccountTerms]: ...

    def save_account_terms(self, terms: AccountTerms, now_us: int) -> None: ...

    def anchor_days(self) -> dict[str, int]:
        """Accounts billed on another day of the month than the 1st, with their day."""
        ...

    def discounts(self, accounts: Collection[str]) -> dict[str, list[Discount]]: ...

    def add_discount(self, account: str, discount: Discount) -> None: ...

    def commitments(self, accounts: Collection[str]) -> dict[str, list[Commitment]]: ...

    def committed_accounts(self) -> set[str]: ...

    def add_commitment(self, account: str, commitment: Commitment) -> None: ...

    def grants(self, accounts: Collection[str]) -> dict[str, list[GrantRecord]]:
        """Each account's grants, oldest first."""
        ...

    def add_grant(self, account: str, grant: CreditGrant, created_us: int) -> None: ...

    def use_grants(self, uses: Sequence[tuple[str, str, int]]) -> None: ...

    def mark_broken(self, account: str, grant_id: str, at_us: int) -> None: ...

    def expiring(self, before_us: int) -> list[GrantRecord]: ...

    def add_downtime(
        self,
        reference: str,
        *,
        service: str,
        account: str | None,
        period_start_us: int,
        minutes: Decimal,
        now_us: int,
    ) -> bool: ...

    def downtime(self, period_start_us: int) -> dict[tuple[str | None, str], Decimal]: ...

    def usage_accounts(self, start_us: int, end_us: int) -> set[str]: ...

    def take_numbers(self, series: str, count: int) -> int: ...

    def invoiced_accounts(self, accounts: Collection[str], period_start_us: int) -> set[str]: ...

    def invoices_since(self, accounts: Collection[str], start_us: int) -> list[IssuedInvoice]:
        """The accounts' invoices (not void, not credit notes) for periods from ``start_us``."""
        ...

    def add_invoices(self, issued: Sequence[IssuedInvoice]) -> None: ...

    def invoice(self, number: str) -> IssuedInvoice | None: ...

    def invoices(
        self,
        *,
        account: str | None = None,
        period_start_us: int | None = None,
        limit: int = 100,
        before: str | None = None,
        corrects: str | None = None,
    ) -> list[IssuedInvoice]: ...

    def set_payment_state(
        self, number: str, *, paid: int, credited: int, status: InvoiceStatus
    ) -> None: ...

    def unpaid_before(self, due_us: int) -> list[IssuedInvoice]: ...

    def notices(
        self, *, account: str | None = None, invoices_of: Collection[str] = ()
    ) -> list[Notice]: ...

    def add_notices(self, notices: Sequence[Notice]) -> None: ...

    def payment(self, reference: str) -> PaymentRecord | None: ...

    def add_payment(self, payment: PaymentRecord) -> None: ...


class BillingTransaction(Protocol):
    """A transaction spanning billing, the ledger and usage: an invoice, its transfers and the
    usage it bills commit or roll back together."""

    @property
    def billing(self) -> BillingRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def usage(self) -> UsageRepository: ...


class BillingUnitOfWork(Protocol):
    def write(self) -> AbstractContextManager[BillingTransaction]: ...

    def read(self) -> AbstractContextManager[BillingTransaction]: ...


class StreamEntry(NamedTuple):
    """One entry of the usage stream: its id, its payload (one event's JSON text, undecoded)
    and how many times it has been delivered to a consumer (1 on first delivery)."""

    entry_id: str
    payload: bytes
    deliveries: int


class EventStream(Protocol):
    """A durable stream of usage events read by a consumer group (Redis Streams at scale, an
    in-process stream embedded). Entries stay pending until acknowledged; an entry a consumer
    took and never acknowledged can be claimed by another after it sat idle long enough."""

    @property
    def name(self) -> str: ...

    def publish(self, payloads: Sequence[bytes]) -> list[str]:
        """Append entries; their ids, in order."""
        ...

    def read(self, consumer: str, *, count: int, block_ms: int) -> list[StreamEntry]:
        """New entries for this consumer (waiting up to ``block_ms`` for some)."""
        ...

    def claim_idle(self, consumer: str, *, idle_ms: int, count: int) -> list[StreamEntry]:
        """Take over entries other consumers left pending for at least ``idle_ms``."""
        ...

    def ack(self, entry_ids: Sequence[str]) -> None: ...

    def dead_letter(self, entry: StreamEntry, reason: str) -> None:
        """Move an entry that keeps failing to the dead-letter stream (and acknowledge it)."""
        ...

    def pending(self) -> int:
        """Entries delivered and not yet acknowledged, group-wide."""
        ...

    def dead_letters(self, *, count: int) -> list[tuple[str, bytes, str]]:
        """(entry id, payload, reason) of the newest entries of the dead-letter stream."""
        ...


class PriceReading(NamedTuple):
    """One reading of a SYNOR/USD price source at one moment (SPEC §8).

    A v2-style pair gives its cumulative-price accumulator: the TWAP between two readings is
    ``((c1 - c0) mod 2**256) * unit / (t1 - t0)``, never a spot price. A v3-style pool keeps its
    own observations and gives its TWAP over the window directly (``twap``, ``history``). An
    off-chain feed gives a spot quote, which the oracle averages over the quotes it stored.
    """

    source: str
    timestamp: int
    """Seconds (the chain's block time, or the feed's own time)."""
    cumulative: int | None
    """The raw accumulator (wraps mod 2**256); None for a feed."""
    unit: Fraction
    """USD per SYNOR for one raw accumulator unit per second."""
    spot: Fraction | None
    """A feed's quote in USD per SYNOR; None for an accumulator."""
    liquidity: Fraction
    """The source's depth in USD: its weight in the median, and what the floor is checked on."""
    twap: Fraction | None = None
    """A TWAP the source computed from its own on-chain history (a Uniswap-v3-style pool's
    ``observe``), in USD per SYNOR; None for the others."""
    history: int = 0
    """Seconds of history behind ``twap``."""


class PriceSource(Protocol):
    """Somewhere a SYNOR/USD price can be read."""

    @property
    def name(self) -> str: ...

    def read(self) -> PriceReading:
        """A reading now; raises ``SynorError`` when the source cannot be read."""
        ...


class Deployment(NamedTuple):
    """Where the project's contracts are on a chain, and the block their deployment began at
    (where reading the chain for payments starts)."""

    addresses: dict[str, str]
    first_block: int


class OracleRound(NamedTuple):
    """One round of the oracle: the aggregate price (None without a quorum), its interval."""

    round: int
    at: int
    """Seconds."""
    price: Fraction | None
    low: Fraction | None
    high: Fraction | None
    quorum_met: bool
    detail: str
    """JSON: each source's quote, or why it was left out."""
    submitted: str | None
    """JSON: the on-chain submissions (transactions, the contract's round), if any."""


class OracleRepository(Protocol):
    """Storage of the oracle's readings and rounds, and of contract deployments."""

    def add_readings(self, readings: Sequence[PriceReading]) -> None:
        """Store readings; one per source and second (a repeat of that key is ignored)."""
        ...

    def reading_at_or_before(self, source: str, at: int) -> PriceReading | None: ...

    def oldest_reading(self, source: str) -> PriceReading | None: ...

    def spots(self, source: str, start: int, end: int) -> list[tuple[int, Fraction]]:
        """A feed's quotes in [start, end], with the last one before ``start`` if any."""
        ...

    def prune_readings(self, before: int) -> int:
        """Forget readings older than ``before`` (seconds); how many."""
        ...

    def next_round(self) -> int:
        """The number the next round takes (1 for the first)."""
        ...

    def add_round(self, row: OracleRound) -> None: ...

    def set_submitted(self, round_number: int, submitted: str) -> None: ...

    def last_round(self, *, good: bool = False) -> OracleRound | None:
        """The latest round, or the latest with a quorum."""
        ...

    def rounds(self, start: int, end: int) -> list[OracleRound]:
        """Rounds with ``start <= at <= end``, oldest first."""
        ...

    def good_points(self, start: int, end: int) -> list[tuple[int, Fraction]]:
        """(at, price) of rounds with a quorum in [start, end], with the last one before."""
        ...

    def deployment(self, chain_id: int, genesis: str) -> Deployment | None:
        """The project's contracts on that chain, if recorded."""
        ...

    def add_deployment(
        self, chain_id: int, genesis: str, deployment: Deployment, now_us: int
    ) -> None: ...


class OracleTransaction(Protocol):
    @property
    def oracle(self) -> OracleRepository: ...


class OracleUnitOfWork(Protocol):
    def write(self) -> AbstractContextManager[OracleTransaction]: ...

    def read(self) -> AbstractContextManager[OracleTransaction]: ...


class ChainPayment(NamedTuple):
    """A payment seen on chain: a SYNOR transfer to a watched address, or an invoice payment."""

    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    kind: str
    """``transfer`` (to a deposit address or the treasury) or ``invoice`` (InvoicePayments)."""
    payer: str
    receiver: str
    amount: int
    reference: str | None
    """The invoice number an ``invoice`` payment names."""

    @property
    def key(self) -> str:
        """``chain_id:tx_hash:log_index``: the payment's identity, credited once."""
        return f"{self.chain_id}:{self.tx_hash}:{self.log_index}"


class PaymentRow(NamedTuple):
    """A chain payment as the watcher keeps it."""

    payment: ChainPayment
    status: str
    """``pending``, ``credited``, ``unmatched`` (nowhere to credit it) or ``orphaned``."""
    note: str | None
    seen_us: int
    credited_us: int | None


class PaymentChain(Protocol):
    """The chain as the payment watcher reads it."""

    @property
    def chain_id(self) -> int: ...

    def head(self) -> int: ...

    @property
    def first_block(self) -> int:
        """Where payments can begin: the block the contracts were deployed from."""
        ...

    def block_hash(self, number: int) -> str | None:
        """The canonical hash at that height now (None past the head)."""
        ...

    def payments(self, first: int, last: int, receivers: Collection[str]) -> list[ChainPayment]:
        """Payments in blocks ``first..last``: token transfers to ``receivers`` (or to the
        treasury) and invoice payments, from the configured contracts only."""
        ...


class PaymentWatchRepository(Protocol):
    """The watcher's records: payments seen, its cursor, deposit addresses."""

    def cursor(self, chain_id: int) -> tuple[int, str] | None: ...

    def set_cursor(self, chain_id: int, block_number: int, block_hash: str) -> None: ...

    def seen(
        self, keys: Collection[tuple[int, str, int]]
    ) -> dict[tuple[int, str, int], PaymentRow]:
        """The recorded payments among ``keys`` ((chain_id, tx_hash, log_index))."""
        ...

    def add(self, rows: Sequence[PaymentRow]) -> None:
        """Record payments not seen before."""
        ...

    def replace(self, rows: Sequence[PaymentRow]) -> None:
        """Rewrite recorded payments (one a reorg moved, or brought back), by their key."""
        ...

    def pending(self, chain_id: int) -> list[PaymentRow]: ...

    def set_statuses(
        self, changes: Sequence[tuple[tuple[int, str, int], str, str | None, int | None]]
    ) -> None:
        """(key, status, note, credited at µs) for each payment to change."""
        ...

    def listing(self, *, limit: int, status: str | None = None) -> list[PaymentRow]:
        """The latest payments, newest first."""
        ...

    def deposit_addresses(self) -> dict[str, str]:
        """Deposit address (lower case) → account."""
        ...

    def add_deposit_address(self, address: str, account: str) -> None: ...


class PaymentWatchTransaction(Protocol):
    @property
    def chain(self) -> PaymentWatchRepository: ...


class PaymentWatchUnitOfWork(Protocol):
    def write(self) -> AbstractContextManager[PaymentWatchTransaction]: ...

    def read(self) -> AbstractContextManager[PaymentWatchTransaction]: ...
