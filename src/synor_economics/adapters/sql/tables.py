"""The SQL schema, as SQLAlchemy Core tables. Alembic migrations create it; tests check that
the migrations and these tables agree.

Amounts are unbounded integers: ``NUMERIC(78, 0)`` on PostgreSQL, and TEXT on SQLite, whose
INTEGER is 64-bit (9.2 SYNOR) and would silently turn larger values into floats. No SQL sums
amounts: balances are kept running, per entry and per account, so reads never aggregate money.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class BigAmount(TypeDecorator[int]):
    """An exact integer of any size (base units): NUMERIC(78,0) on PostgreSQL, TEXT on SQLite."""

    impl = String(80)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0))
        return dialect.type_descriptor(String(80))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("num", Integer, primary_key=True, autoincrement=True),
    Column("id", String(200), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("normal", String(6), nullable=False),
    Column("floor", BigAmount(), nullable=True),
    Column("owner", String(200), nullable=False, default=""),
    Column("opened_us", BigInteger, nullable=False),
    Column("debits_posted", BigAmount(), nullable=False),
    Column("credits_posted", BigAmount(), nullable=False),
    Column("debits_pending", BigAmount(), nullable=False),
    Column("credits_pending", BigAmount(), nullable=False),
)

Seq = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit sequence; on SQLite spelled INTEGER so that the primary key is the rowid itself.

``ts_us`` has no index on purpose: the ledger makes timestamps strictly increase with ``seq``, so
"the last transfer at or before T" is a binary search over the primary key (about 20 point reads
for a million transfers), and every insert saves maintaining one more b-tree."""

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=False),
    Column("id", String(200), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("ref", String(200), nullable=True),
    Column("ts_us", BigInteger, nullable=False),
    Column("code", String(100), nullable=False),
    Column("memo", Text, nullable=False),
    Column("fingerprint", String(32), nullable=False),
    # A transfer is resolved (pending) or reversed at most once; most transfers have no ref.
    Index(
        "ix_ledger_transfers_ref",
        "ref",
        unique=True,
        sqlite_where=text("ref IS NOT NULL"),
        postgresql_where=text("ref IS NOT NULL"),
    ),
)

# Entries carry no foreign keys on purpose: they are written only by the ledger machine, for
# accounts and a transfer it loaded and created in the same serialised transaction, and
# ``synor ledger check`` verifies every reference. On PostgreSQL the two referential triggers per
# row tripled the cost of the bulk insert, the ledger's hot path.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", Seq, primary_key=True),
    Column("leg", SmallInteger, primary_key=True),
    Column("account_num", Integer, nullable=False),
    Column("side", String(6), nullable=False),
    Column("amount", BigAmount(), nullable=False),
    Column("pending", Boolean, nullable=False),
    Column("balance_after", BigAmount(), nullable=False),
    Index("ix_ledger_entries_account_seq", "account_num", "seq"),
    sqlite_with_rowid=False,
)

IMMUTABLE_TABLES = ("ledger_transfers", "ledger_entries")
"""Tables whose rows are never updated or deleted; triggers in the migration enforce it."""


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal of any size (quantities, meter totals): unconstrained NUMERIC on
    PostgreSQL, TEXT on SQLite (whose REAL would round). Written in plain notation, never with
    an exponent, so the text sorts and reads as the number it is."""

    impl = String(80)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value if dialect.name == "postgresql" else format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


# Usage (SPEC §2, §3). Events are kept as received, deduplicated on (account, event_id) in the
# same transaction that counts them: by a unique constraint on PostgreSQL, whose writers run side
# by side; on SQLite, one writer at a time, by the key index (``key_index.py``, the
# ``usage_key_runs`` table), since a B-tree of random ids costs more than the rest of ingestion.
# Rollups are derived: hourly totals per (account, resource), and the open segment of each gauge
# key. ``seq`` is the primary key on SQLite (its row id, which the key index names); PostgreSQL
# drops that index (migration 0013): it never looks an event up by ``seq``, and the unique key is
# the replica identity.
KeyText = String(200).with_variant(String(200, collation="C"), "postgresql")
"""Text of a dedup key (``usage_events``' account and id), compared byte by byte on PostgreSQL
too (collation ``C``, migration 0014), as SQLite always does. Under a linguistic collation each
comparison in the unique key's index goes through the locale: copying an event into a database
whose default is ``en-US`` (ICU) cost PostgreSQL 4.9 µs, against 3.8 µs under ``C`` (4.1-4.2 µs
under ``C.UTF-8``, glibc's). Equality does not change (deterministic collations compare equal
only what is byte-equal); only the order of accounts and ids, nowhere relied upon, does."""

usage_events = Table(
    "usage_events",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("account", KeyText, nullable=False),
    Column("event_id", KeyText, nullable=False),
    Column("resource", String(100), nullable=False),
    Column("quantity", ExactDecimal(), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("subject", String(200), nullable=False),
    Column("operator", String(200), nullable=False),
    Column("meta", Text, nullable=False),
    Column("fingerprint", String(32), nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("source", String(10), nullable=False),
    Column("generation", BigInteger, nullable=False, server_default=text("0")),
    Column("superseded_by", BigInteger, nullable=True),
    UniqueConstraint(
        "account", "event_id", "generation", name="uq_usage_events_account_event_id"
    ).ddl_if(dialect="postgresql"),
    # Gauge lookups only: events with a subject (all gauge events). Counters, nearly all of
    # usage, then maintain one index fewer (see migration 0005).
    Index(
        "ix_usage_events_gauge",
        "account",
        "resource",
        "subject",
        "ts_us",
        sqlite_where=text("subject <> ''"),
        postgresql_where=text("subject <> ''"),
    ),
)

POSTGRESQL_ONLY = frozenset({"uq_usage_events_account_event_id"})
"""Constraints that exist on PostgreSQL only (``ddl_if``), which Alembic's comparison of a
SQLite schema must skip."""

usage_event_segments = Table(
    "usage_event_segments",
    metadata,
    Column("segment", Seq, primary_key=True, autoincrement=True),
    Column("first_seq", BigInteger, nullable=False),
    Column("events", Integer, nullable=False),
    Column("min_ts_us", BigInteger, nullable=False),
    Column("max_ts_us", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("source", String(10), nullable=False),
    Column("columns", LargeBinary, nullable=False),
    Column("moved", LargeBinary, nullable=True),
    UniqueConstraint("first_seq", name="uq_usage_event_segments_first_seq"),
)
"""SQLite: the plain counter events of a batch as one row of columns (``event_segments.py``),
seqs ``first_seq`` on, from the same sequence as ``usage_events``; ``moved`` lists the rows a
replacement took out into ``usage_events``. Empty on PostgreSQL, which stores rows."""

usage_key_runs = Table(
    "usage_key_runs",
    metadata,
    Column("run", Integer, primary_key=True, autoincrement=True),
    Column("token", LargeBinary(16), nullable=False, unique=True),
    Column("entries", BigInteger, nullable=False),
    Column("hashes", LargeBinary, nullable=False),
    Column("checks", LargeBinary, nullable=False),
    Column("seqs", LargeBinary, nullable=False),
)
"""Runs of the SQLite key index: sorted 64-bit sort keys, each one's check and row (``seq``), as
little-endian 8-byte integers (empty on PostgreSQL)."""

# ``generation`` is 0 for events as they arrived, and a replacement's number for the events a
# replacement backfill brought (ids are unique per account and generation, so a corrected copy
# may reuse the original's id). ``superseded_by`` is set while an event is out of the count: the
# replacement that took it out, or minus the replacement whose revert withdrew it.

usage_replacements = Table(
    "usage_replacements",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("reverted_us", BigInteger, nullable=True),
    Column("superseded", Integer, nullable=False),
    Column("added", Integer, nullable=False),
    Column("note", Text, nullable=False),
)
"""Replacement backfills: one account's events in ``[start_us, end_us)`` swapped for a file's."""

usage_series = Table(
    "usage_series",
    metadata,
    Column("series", Integer, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("resource", String(100), nullable=False),
    UniqueConstraint("account", "resource", name="uq_usage_series_account_resource"),
)
"""The (account, resource) pairs that have rollups, each numbered once: the rollups are keyed
by that number and the hour, two integers (migration 0011 says why). Never deleted; no foreign
key points here, as a check of it would cost each rollup row a lookup."""

usage_hourly = Table(
    "usage_hourly",
    metadata,
    Column("series", Integer, primary_key=True, autoincrement=False),
    Column("hour_us", BigInteger, primary_key=True, autoincrement=False),
    Column("quantity", ExactDecimal(), nullable=False),
    Column("events", Integer, nullable=False),
    sqlite_with_rowid=False,
)
"""Counters: Σ quantity of the hour's events. Gauges: ∫ level dt over the hour's closed
segments, in event-unit·seconds (the open segment is in ``usage_gauges``). What is still in
``usage_hourly_log`` adds to it. ``series`` is the (account, resource) pair's number in
``usage_series``."""

usage_hourly_log = Table(
    "usage_hourly_log",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("series", Integer, nullable=False),
    Column("hour_us", BigInteger, nullable=False),
    Column("quantity", ExactDecimal(), nullable=False),
    Column("events", Integer, nullable=False),
)
"""Deltas to ``usage_hourly`` not folded into it yet, in the order they were added: the rollup
of an hour is its row plus its deltas here."""

usage_gauges = Table(
    "usage_gauges",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("resource", String(100), primary_key=True),
    Column("subject", String(200), primary_key=True),
    Column("level", ExactDecimal(), nullable=False),
    Column("since_us", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
"""Each gauge key's latest level and when it was set: the segment not yet closed into hours."""

usage_rejections = Table(
    "usage_rejections",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("received_us", BigInteger, nullable=False),
    Column("source", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("account", String(200), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("field", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("body", Text, nullable=False),
)
"""Dead letters: every rejected or conflicting event, with its reason and the body as received."""

# -- billing ------------------------------------------------------------------------------------

billing_accounts = Table(
    "billing_accounts",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("payment_terms_days", Integer, nullable=False),
    Column("anchor_day", SmallInteger, nullable=False),
    Column("reminder_after_days", Integer, nullable=False),
    Column("suspend_after_days", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)
"""An account's billing settings; an account billed without a row gets the defaults."""

billing_discounts = Table(
    "billing_discounts",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("percent", ExactDecimal(), nullable=True),
    Column("amount", BigAmount(), nullable=True),
    Column("scope_service", String(100), nullable=True),
    Column("scope_resource", String(100), nullable=True),
    Column("priority", Integer, nullable=False),
    Column("start_us", BigInteger, nullable=True),
    Column("end_us", BigInteger, nullable=True),
)

billing_commitments = Table(
    "billing_commitments",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("resource", String(100), nullable=False),
    Column("quantity", ExactDecimal(), nullable=False),
    Column("unit_price", ExactDecimal(), nullable=False),
    Column("currency", String(10), nullable=False),
    Column("term_months", SmallInteger, nullable=False),
    Column("start_us", BigInteger, nullable=False),
)

credit_grants = Table(
    "credit_grants",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("id", String(200), nullable=False),
    Column("amount", BigAmount(), nullable=False),
    Column("used", BigAmount(), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("expires_us", BigInteger, nullable=True),
    Column("scope_service", String(100), nullable=True),
    Column("scope_resource", String(100), nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("broken_us", BigInteger, nullable=True),
    UniqueConstraint("account", "id"),
)
"""Credit grants; ``seq`` orders them by age, ``used`` is what invoices took, ``broken_us`` when
the unused rest was written off."""

uptime_reports = Table(
    "uptime_reports",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("service", String(100), nullable=False),
    Column("account", String(200), nullable=True),
    Column("period_start_us", BigInteger, nullable=False),
    Column("downtime_minutes", ExactDecimal(), nullable=False),
    Column("reference", String(200), nullable=False, unique=True),
    Column("reported_us", BigInteger, nullable=False),
)
"""Downtime per service in a billing period, for one account or (account NULL) for all."""

invoices = Table(
    "invoices",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("account", String(200), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("period_start_us", BigInteger, nullable=False),
    Column("period_end_us", BigInteger, nullable=False),
    Column("status", String(10), nullable=False),
    Column("issued_us", BigInteger, nullable=False),
    Column("due_us", BigInteger, nullable=False),
    Column("catalog_version", String(100), nullable=False),
    Column("catalog_digest", String(64), nullable=False),
    Column("rate", String(100), nullable=True),
    Column("subtotal", BigAmount(), nullable=False),
    Column("credits_applied", BigAmount(), nullable=False),
    Column("prepaid_applied", BigAmount(), nullable=False),
    Column("total_due", BigAmount(), nullable=False),
    Column("paid", BigAmount(), nullable=False),
    Column("credited", BigAmount(), nullable=False),
    Column("corrects", String(32), nullable=True),
    Column("document", Text, nullable=False),
    Index("ix_invoices_account_period", "account", "period_start_us"),
    Index(
        "ix_invoices_one_per_period",
        "account",
        "period_start_us",
        unique=True,
        sqlite_where=text("kind = 'invoice' AND status <> 'void'"),
        postgresql_where=text("kind = 'invoice' AND status <> 'void'"),
    ),
)
"""Finalised invoices and credit notes: figures and document never change; ``paid`` and
``status`` follow payments and voids."""

invoice_counters = Table(
    "invoice_counters",
    metadata,
    Column("series", String(16), primary_key=True),
    Column("last", Integer, nullable=False),
)
"""The last number taken per series (``SYN-2026``): gapless, taken in the invoice's transaction."""

billing_notices = Table(
    "billing_notices",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("invoice", String(32), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("days_overdue", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("invoice", "kind"),
)
"""Dunning notices (reminders, suspension warnings): one of each kind per invoice, kept as the
outbox that notifiers deliver from."""

payments = Table(
    "payments",
    metadata,
    Column("reference", String(200), primary_key=True),
    Column("account", String(200), nullable=False),
    Column("invoice", String(32), nullable=True),
    Column("amount", BigAmount(), nullable=False),
    Column("to_invoice", BigAmount(), nullable=False),
    Column("to_prepaid", BigAmount(), nullable=False),
    Column("received_us", BigInteger, nullable=False),
)
"""Payments and deposits recorded, keyed by their reference (a chain transfer's
``chain_id:tx_hash:log_index``, or an admin's reference): each is applied once."""

chain_deployments = Table(
    "chain_deployments",
    metadata,
    Column("chain_id", BigInteger, primary_key=True),
    Column("genesis", String(66), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("address", String(42), nullable=False),
    Column("first_block", BigInteger, nullable=False),
    Column("deployed_us", BigInteger, nullable=False),
)
"""Where the project's contracts live on each chain (told apart by chain id and genesis hash),
so a restart against the same node finds them instead of deploying again."""

oracle_readings = Table(
    "oracle_readings",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("at", BigInteger, primary_key=True),
    Column("cumulative", BigAmount(), nullable=True),
    Column("unit", Text, nullable=False),
    Column("spot", Text, nullable=True),
    Column("liquidity", Text, nullable=False),
    Column("twap", Text, nullable=True),
    Column("history", Integer, nullable=False, server_default=text("0")),
)
"""Each price source's readings (accumulators, or a feed's quotes), by source and second: what
per-source TWAPs are computed from. Exact rationals are stored as ``n/d`` text."""

oracle_rounds = Table(
    "oracle_rounds",
    metadata,
    Column("round", Integer, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("price", Text, nullable=True),
    Column("low", Text, nullable=True),
    Column("high", Text, nullable=True),
    Column("quorum_met", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Column("submitted", Text, nullable=True),
)
"""Each oracle round: the aggregate (18-decimal text; none without a quorum), its confidence
interval, each source's quote or the reason it was left out (JSON), and the transactions that
submitted it on chain."""

chain_payments = Table(
    "chain_payments",
    metadata,
    Column("chain_id", BigInteger, primary_key=True),
    Column("tx_hash", String(66), primary_key=True),
    Column("log_index", Integer, primary_key=True),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", String(66), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("payer", String(42), nullable=False),
    Column("receiver", String(42), nullable=False),
    Column("amount", BigAmount(), nullable=False),
    Column("reference", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Column("seen_us", BigInteger, nullable=False),
    Column("credited_us", BigInteger, nullable=True),
)
"""Token payments seen on chain, one row per ``(chain_id, tx_hash, log_index)``: ``pending``
until confirmed, then ``credited`` (once: the billing payment reference is this key) or
``orphaned`` when a reorg dropped its block before that."""

chain_cursors = Table(
    "chain_cursors",
    metadata,
    Column("chain_id", BigInteger, primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", String(66), nullable=False),
)
"""How far a watcher has read each chain, with the hash of that block to notice a reorg."""

deposit_addresses = Table(
    "deposit_addresses",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("account", String(200), nullable=False),
)
"""Per-account deposit addresses: a SYNOR transfer to one is that account's prepaid deposit."""
