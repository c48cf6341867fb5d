"""What the faces get from the composition root: the services, and facts about the running
system (settings, schema), without knowing which adapters stand behind them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from synor_economics import __version__
from synor_economics.domain.catalog import Catalog
from synor_economics.ports import Clock, EventStream
from synor_economics.services.billing import BillingService
from synor_economics.services.catalog import CatalogService
from synor_economics.services.ledger import LedgerService
from synor_economics.services.oracle import OracleService
from synor_economics.services.payment_watch import PaymentWatcher
from synor_economics.services.replacement import ReplacementService
from synor_economics.services.usage import UsageService


class Schema(Protocol):
    """The storage schema: where it stands, and how to bring it up to date."""

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        ...

    @property
    def location(self) -> str:
        """Where the data lives, with any password hidden."""
        ...

    def current(self) -> str | None: ...

    def head(self) -> str | None: ...

    def upgrade(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    value: str
    source: str
    description: str


@dataclass
class System:
    """The assembled product, as the faces see it."""

    ledger: LedgerService
    catalog: CatalogService
    usage: UsageService
    replacements: ReplacementService
    billing: BillingService
    oracle: OracleService
    payments: PaymentWatcher
    chain: Callable[[], Mapping[str, object]]
    """Which chain the product is on and where its contracts are (reaching the chain)."""
    chain_rpc: Callable[[bytes], bytes]
    """Answers JSON-RPC requests against the in-process chain (refused for a node)."""
    chain_in_process: bool
    oracle_sources: bool
    """Whether price sources are configured (``synor serve`` then runs rounds)."""
    stream: EventStream
    schema: Schema
    settings: tuple[Setting, ...]
    serve_address: tuple[str, int]
    log_level: str
    close: Callable[[], None]
    tune: Callable[[], None]
    """Tunes the interpreter for a long-running busy process (``synor serve``, workers)."""
    version: str = __version__

    def health(self) -> Mapping[str, object]:
        """A cheap liveness and readiness report: the database answers, the schema is current."""
        current = self.schema.current()
        head = self.schema.head()
        return {
            "status": "ok" if current == head else "degraded",
            "version": self.version,
            "database": {
                "backend": self.schema.backend,
                "schema": current,
                "schema_head": head,
                "schema_current": current == head,
            },
            "catalog": {
                "version": self.catalog.current().version,
                "digest": self.catalog.current().digest,
            },
        }


class Launcher(Protocol):
    """How a face reaches the product: settings at once, the assembled system on demand."""

    def settings(self) -> tuple[Setting, ...]: ...

    def system(self) -> System: ...

    def system_on(self, clock: Clock) -> System:
        """The product assembled on another clock; the caller closes it."""
        ...

    def catalog(self) -> Catalog:
        """The configured price book, without assembling the system (no database)."""
        ...

    def fixed_rate(self) -> Fraction | None:
        """The configured SYNOR/USD rate (``SYNOR_SYNOR_USD``), without assembling the system."""
        ...
