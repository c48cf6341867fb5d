"""The composition root: settings → adapters → services → faces. Nothing else reads settings or
names an adapter, so swapping SQLite for PostgreSQL (or a fake for a test) happens here alone.

Heavy imports (SQLAlchemy, Alembic) stay inside functions: a CLI command that never touches the
database never pays for them.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from synor_economics.adapters.chain.deployment import ChainPlan
    from synor_economics.adapters.chain.evm import EvmChain
    from synor_economics.adapters.chain.payment_logs import EvmPaymentChain
    from synor_economics.adapters.oracle.publisher import OracleContractPublisher
    from synor_economics.adapters.sql.uow import SqlUnitOfWork
    from synor_economics.adapters.stream.memory_stream import MemoryEventStream
    from synor_economics.adapters.stream.redis_stream import RedisEventStream
    from synor_economics.config import Settings
    from synor_economics.domain.catalog import Catalog
    from synor_economics.ports import Clock, Deployment, PriceSource
    from synor_economics.services.oracle import OracleConfig, OracleService
    from synor_economics.services.system import Setting, System


_SECRETS = frozenset({"chain_deployer_key", "oracle_reporter_keys"})
"""Settings holding private keys: `synor config` says whether they are set, never what."""


def describe_settings(settings: Settings) -> tuple[Setting, ...]:
    """Each setting with its effective value and where it came from."""
    from synor_economics.adapters.sql.engine import describe_url
    from synor_economics.config import Settings
    from synor_economics.services.system import Setting

    rows = []
    for name, field in Settings.model_fields.items():
        env_name = f"SYNOR_{name.upper()}"
        if env_name in os.environ:
            source = "environment"
        elif name in settings.model_fields_set:
            source = ".env file"
        else:
            source = "default"
        value = getattr(settings, name)
        if name == "database_url":
            value = describe_url(settings.effective_database_url)
        elif name in ("stream_url", "chain_rpc") and value:
            value = describe_url(str(value))
        elif name in _SECRETS and value:
            value = "(set, hidden)"
        rows.append(
            Setting(name, "" if value is None else str(value), source, field.description or "")
        )
    return tuple(rows)


def build(settings: Settings | None = None, *, clock: Clock | None = None) -> System:
    """Assemble the product from settings (the environment's, unless given). ``clock`` stands
    in for the system clock where time must be controlled (tests, demonstrations)."""
    from synor_economics.adapters.clock import SystemClock
    from synor_economics.adapters.sql.checkpoint import checkpointer_for
    from synor_economics.adapters.sql.engine import make_engine
    from synor_economics.adapters.sql.schema import SqlSchema
    from synor_economics.adapters.sql.uow import ORACLE_LOCK_KEY, USAGE_LOCK_KEY, SqlUnitOfWork
    from synor_economics.catalog import load_catalog, load_default_catalog
    from synor_economics.config import Settings
    from synor_economics.services.billing import BillingService
    from synor_economics.services.catalog import CatalogService
    from synor_economics.services.ledger import LedgerService
    from synor_economics.services.oracle import OracleService
    from synor_economics.services.payment_watch import PaymentWatcher
    from synor_economics.services.replacement import ReplacementService
    from synor_economics.services.system import System
    from synor_economics.services.usage import UsageService

    settings = settings or Settings()
    engine = make_engine(settings.effective_database_url)
    schema = SqlSchema(engine)
    if settings.auto_migrate:
        schema.upgrade()
    catalog = (
        load_catalog(settings.catalog_path) if settings.catalog_path else load_default_catalog()
    )
    clock = clock or SystemClock()
    checkpoints = checkpointer_for(engine)  # SQLite's log copied back on a thread of its own
    uow = SqlUnitOfWork(engine, checkpoints=checkpoints)
    usage_uow = SqlUnitOfWork(
        engine, lock_key=USAGE_LOCK_KEY, shared=True, fold_apart=True, checkpoints=checkpoints
    )
    replacing_uow = SqlUnitOfWork(engine, lock_key=USAGE_LOCK_KEY, checkpoints=checkpoints)
    ledger = LedgerService(uow, clock)
    chain_uow = SqlUnitOfWork(engine, lock_key=ORACLE_LOCK_KEY, checkpoints=checkpoints)
    runtime = ChainRuntime(settings, chain_uow, clock)
    oracle = OracleService(
        chain_uow,
        clock,
        oracle_config(settings),
        sources=runtime.sources,
        publisher=runtime.publisher,
    )
    rate_source, lock_rate = _rates(settings, oracle)
    billing = BillingService(
        uow,
        clock,
        catalog,
        rate_source=rate_source,
        lock_rate=lock_rate,
        grace=timedelta(minutes=settings.grace_minutes),
    )
    payments = PaymentWatcher(
        chain_uow,
        billing,
        clock,
        runtime.payment_chain,
        confirmations=settings.payment_confirmations,
    )
    stream = _stream(settings)
    usage = UsageService(usage_uow, clock, catalog)

    def close() -> None:
        ledger.close()
        usage.close()
        usage_uow.close()
        stream.close()
        if checkpoints is not None:
            checkpoints.close()
        engine.dispose()

    return System(
        ledger=ledger,
        catalog=CatalogService(catalog),
        usage=usage,
        billing=billing,
        oracle=oracle,
        payments=payments,
        chain=runtime.describe,
        chain_rpc=runtime.answer_json_rpc,
        chain_in_process=not settings.chain_rpc,
        oracle_sources=settings.oracle_sources is not None,
        replacements=ReplacementService(replacing_uow, clock, catalog),
        stream=stream,
        schema=schema,
        settings=describe_settings(settings),
        serve_address=(settings.host, settings.port),
        log_level=settings.log_level,
        close=close,
        tune=tune_for_throughput,
    )


def oracle_config(settings: Settings) -> OracleConfig:
    from synor_economics.domain.price_aggregate import Policy
    from synor_economics.services.oracle import OracleConfig

    return OracleConfig(
        window=settings.oracle_window,
        max_age=settings.oracle_max_age,
        policy=Policy(
            quorum=settings.oracle_quorum,
            min_history=settings.oracle_window,
            liquidity_floor=Fraction(settings.oracle_liquidity_floor),
            max_deviation=Fraction(settings.oracle_max_deviation),
        ),
    )


def _rates(
    settings: Settings, oracle: OracleService
) -> tuple[Callable[[], Fraction | None], Callable[[], Fraction | None]]:
    """The SYNOR/USD rate drafts show and the one a close locks: a fixed ``SYNOR_SYNOR_USD``
    if set; else the oracle's, when it has sources; else none (USD prices cannot be billed)."""
    if settings.synor_usd is not None:
        fixed = Fraction(settings.synor_usd)
        return (lambda: fixed), (lambda: fixed)
    if settings.oracle_sources is not None:
        return oracle.display_rate, oracle.lock_rate
    return (lambda: None), (lambda: None)


class ChainRuntime:
    """The chain, the project's contracts on it and the keys that act there, assembled on
    first use: commands that never touch the chain never start an EVM or dial a node."""

    def __init__(self, settings: Settings, uow: SqlUnitOfWork, clock: Clock) -> None:
        self._settings = settings
        self._uow = uow
        self._clock = clock

    @cached_property
    def chain(self) -> EvmChain:
        from synor_economics.adapters.chain.evm import EvmChain

        if self._settings.chain_rpc:
            return EvmChain.rpc(self._settings.chain_rpc)
        return EvmChain.in_process()

    @property
    def addresses(self) -> dict[str, str]:
        return self.deployment.addresses

    @cached_property
    def deployment(self) -> Deployment:
        """The contracts on this chain: as recorded, or deployed now."""
        from synor_economics.adapters.chain.deployment import ensure_contracts
        from synor_economics.domain.instants import to_us

        chain = self.chain
        genesis = chain.genesis_hash()
        with self._uow.read() as tx:
            recorded = tx.oracle.deployment(chain.chain_id, genesis)

        def record(deployment: Deployment) -> None:
            with self._uow.write() as tx:
                tx.oracle.add_deployment(
                    chain.chain_id, genesis, deployment, to_us(self._clock.now())
                )

        return ensure_contracts(chain, recorded, self._plan, record)

    def _plan(self) -> ChainPlan:
        from synor_economics.adapters.chain.deployment import ChainPlan
        from synor_economics.adapters.chain.evm import ChainError

        settings = self._settings
        funded = self.chain.funded_signers()
        if settings.chain_deployer_key:
            deployer = self.chain.signer(settings.chain_deployer_key)
        elif funded:
            deployer = funded[0]
        else:
            raise ChainError(
                "no contracts are recorded for this chain: set SYNOR_CHAIN_DEPLOYER_KEY to "
                "deploy them"
            )
        reporters = [r.address for r in self.reporters()]
        return ChainPlan(
            deployer=deployer,
            treasury=self._planned_treasury(),
            reporters=reporters,
            quorum=len(reporters),
            deviation_bps=50,
            heartbeat=settings.oracle_max_age // 2 or 1,
            max_age=settings.oracle_max_age,
        )

    def reporters(self) -> list[LocalAccount]:
        keys = [k.strip() for k in self._settings.oracle_reporter_keys.split(",") if k.strip()]
        if keys:
            return [self.chain.signer(key) for key in keys]
        return self.chain.funded_signers()[1:4]

    def treasury(self) -> str:
        """Where invoice payments go: as set, else as the deployed InvoicePayments says."""
        if self._settings.treasury_address:
            return self._settings.treasury_address
        payments = self.chain.contract("InvoicePayments", self.addresses["InvoicePayments"])
        return str(payments.functions.treasury().call())

    def _planned_treasury(self) -> str:
        """The treasury a new deployment pays into."""
        from synor_economics.adapters.chain.evm import ChainError

        if self._settings.treasury_address:
            return self._settings.treasury_address
        funded = self.chain.funded_signers()
        if not funded:
            raise ChainError("set SYNOR_TREASURY_ADDRESS: where invoice payments go")
        return funded[-1].address

    def sources(self) -> list[PriceSource]:
        from synor_economics.adapters.oracle.sources_file import build_sources, read_sources_file
        from synor_economics.domain.errors import SynorError

        path = self._settings.oracle_sources
        if path is None:
            raise SynorError("no price sources are configured: set SYNOR_ORACLE_SOURCES")
        return build_sources(
            read_sources_file(path),
            lambda: self.chain,
            lambda: self.addresses["SynorToken"],
            lambda: int(self._clock.now().timestamp()),
            self._settings.oracle_window,
        )

    def publisher(self) -> OracleContractPublisher:
        from synor_economics.adapters.oracle.publisher import OracleContractPublisher

        return OracleContractPublisher(self.chain, self.addresses["PriceOracle"], self.reporters())

    def payment_chain(self) -> EvmPaymentChain:
        from synor_economics.adapters.chain.payment_logs import EvmPaymentChain

        deployment = self.deployment
        return EvmPaymentChain(
            self.chain,
            deployment.addresses["SynorToken"],
            deployment.addresses["InvoicePayments"],
            self.treasury(),
            first_block=deployment.first_block,
        )

    def answer_json_rpc(self, body: bytes) -> bytes:
        """JSON-RPC against the in-process chain (``synor serve`` offers it at ``/rpc``)."""
        from synor_economics.adapters.chain.evm import ChainError, answer_json_rpc

        if self._settings.chain_rpc:
            raise ChainError("the chain is a node (SYNOR_CHAIN_RPC): send requests to it")
        self.deployment  # noqa: B018 - the contracts are there before anyone asks
        return answer_json_rpc(self.chain, body)

    def describe(self) -> dict[str, object]:
        """Which chain, and where the contracts are (deploying them if needed)."""
        contracts = self.addresses
        return {
            "chain_id": self.chain.chain_id,
            "node": "in-process EVM" if not self._settings.chain_rpc else "JSON-RPC",
            "head": self.chain.head(),
            "contracts": contracts,
            "treasury": self.treasury(),
        }


def _stream(settings: Settings) -> RedisEventStream | MemoryEventStream:
    """Redis Streams when ``SYNOR_STREAM_URL`` is set; otherwise the in-process stream."""
    from synor_economics.adapters.stream.memory_stream import MemoryEventStream
    from synor_economics.adapters.stream.redis_stream import RedisEventStream

    if settings.stream_url:
        return RedisEventStream(settings.stream_url, settings.stream_name, settings.stream_group)
    return MemoryEventStream(settings.stream_name)


def tune_for_throughput() -> None:
    """Tune the interpreter for a long-running, busy process.

    Posting allocates many short-lived tuples per batch; CPython's default young-generation
    threshold (700) then runs the cycle collector thousands of times a second. Freeze what
    start-up allocated and collect young objects less often.

    The ledger's committer thread hands the GIL back and forth with the thread preparing the
    next batch (``services/posting.py``) every time the database returns; with the default 5 ms
    switch interval it waits up to that long each time. 1 ms measured 5-10% more throughput.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    sys.setswitchinterval(0.001)


class Launcher:
    """What the CLI holds: settings now, the assembled system only when a command needs it."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._given = settings

    @cached_property
    def _settings(self) -> Settings:
        from synor_economics.config import Settings

        return self._given or Settings()

    def settings(self) -> tuple[Setting, ...]:
        return describe_settings(self._settings)

    @cached_property
    def _system(self) -> System:
        return build(self._settings)

    def system(self) -> System:
        return self._system

    def system_on(self, clock: Clock) -> System:
        """A separate assembly of the product on another clock (``synor demo`` walks its own
        clock through a month); the caller closes it."""
        return build(self._settings, clock=clock)

    def catalog(self) -> Catalog:
        """The configured price book alone, for commands that rate without storage (simulate,
        cost estimate): no database is opened."""
        if "_system" in self.__dict__:
            return self._system.catalog.current()
        from synor_economics.catalog import load_catalog, load_default_catalog

        path = self._catalog_path()
        return load_catalog(path) if path else load_default_catalog()

    def fixed_rate(self) -> Fraction | None:
        """``SYNOR_SYNOR_USD`` (USD per SYNOR), read as cheaply as the price book's path."""
        value = self._light_setting("synor_usd")
        return None if value in (None, "") else Fraction(str(value))

    def _light_setting(self, name: str) -> object:
        """A setting read the way ``Settings`` reads it, without pydantic-settings when the
        environment alone decides (see ``_catalog_path``)."""
        if self._given is not None or "_settings" in self.__dict__ or Path(".env").exists():
            return getattr(self._settings, name)
        wanted = f"SYNOR_{name.upper()}"
        found = [value for key, value in os.environ.items() if key.upper() == wanted]
        return found[-1] if found else None

    def _catalog_path(self) -> str | Path | None:
        """``SYNOR_CATALOG_PATH`` read the way ``Settings`` reads it (names match whatever
        their case), without importing pydantic-settings when the environment alone decides:
        that import is most of ``synor cost estimate``'s start-up time. With a ``.env`` file
        (or settings given), ``Settings`` itself is asked."""
        value = self._light_setting("catalog_path")
        return value if isinstance(value, str | Path) and value else None

    def database_location(self) -> str:
        from synor_economics.adapters.sql.engine import describe_url

        return describe_url(self._settings.effective_database_url)

    def close(self) -> None:
        if "_system" in self.__dict__:
            self._system.close()
