"""The composition root: settings → adapters → services → faces. Nothing else reads settings or
names an adapter, so swapping SQLite for PostgreSQL (or a fake for a test) happens here alone.

Heavy imports (SQLAlchemy, Alembic) stay inside functions: a CLI command that never touches the
database never pays for them.
"""

from __future__ import annotations

import gc
import os
import sys
from datetime import timedelta
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synor_economics.adapters.stream.memory_stream import MemoryEventStream
    from synor_economics.adapters.stream.redis_stream import RedisEventStream
    from synor_economics.config import Settings
    from synor_economics.domain.catalog import Catalog
    from synor_economics.ports import Clock
    from synor_economics.services.system import Setting, System


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
        elif name == "stream_url" and value:
            value = describe_url(str(value))
        rows.append(
            Setting(name, "" if value is None else str(value), source, field.description or "")
        )
    return tuple(rows)


def build(settings: Settings | None = None, *, clock: Clock | None = None) -> System:
    """Assemble the product from settings (the environment's, unless given). ``clock`` stands
    in for the system clock where time must be controlled (tests, demonstrations)."""
    from synor_economics.adapters.clock import SystemClock
    from synor_economics.adapters.sql.engine import make_engine
    from synor_economics.adapters.sql.schema import SqlSchema
    from synor_economics.adapters.sql.uow import USAGE_LOCK_KEY, SqlUnitOfWork
    from synor_economics.catalog import load_catalog, load_default_catalog
    from synor_economics.config import Settings
    from synor_economics.services.billing import BillingService
    from synor_economics.services.catalog import CatalogService
    from synor_economics.services.ledger import LedgerService
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
    uow = SqlUnitOfWork(engine)
    usage_uow = SqlUnitOfWork(engine, lock_key=USAGE_LOCK_KEY, shared=True)
    replacing_uow = SqlUnitOfWork(engine, lock_key=USAGE_LOCK_KEY)
    ledger = LedgerService(uow, clock)
    fixed_rate = None if settings.synor_usd is None else Fraction(settings.synor_usd)
    billing = BillingService(
        uow,
        clock,
        catalog,
        rate_source=lambda: fixed_rate,
        grace=timedelta(minutes=settings.grace_minutes),
    )
    stream = _stream(settings)

    def close() -> None:
        ledger.close()
        stream.close()
        engine.dispose()

    return System(
        ledger=ledger,
        catalog=CatalogService(catalog),
        usage=UsageService(usage_uow, clock, catalog),
        billing=billing,
        replacements=ReplacementService(replacing_uow, clock, catalog),
        stream=stream,
        schema=schema,
        settings=describe_settings(settings),
        serve_address=(settings.host, settings.port),
        log_level=settings.log_level,
        close=close,
        tune=tune_for_throughput,
    )


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
