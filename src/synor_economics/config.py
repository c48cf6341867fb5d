"""Settings, from the environment (prefix ``SYNOR_``) or a ``.env`` file. Read only by bootstrap.

Defaults give the embedded product: a SQLite file in the data directory, the packaged price book,
the API on 127.0.0.1, an in-process usage stream. At scale, ``SYNOR_DATABASE_URL`` points at
PostgreSQL and ``SYNOR_STREAM_URL`` at Redis.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/synor`` or ``~/.local/share/synor``: where the embedded database lives."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "synor"


class Settings(BaseSettings):
    """Every setting of the product. ``synor config`` prints the effective values."""

    model_config = SettingsConfigDict(env_prefix="SYNOR_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir, description="Folder for the embedded database and files"
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means a SQLite file in data_dir"
    )
    host: str = Field(default="127.0.0.1", description="Address `synor serve` listens on")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `synor serve` listens on")
    catalog_path: Path | None = Field(
        default=None, description="A price book TOML file replacing the packaged one"
    )
    auto_migrate: bool = Field(
        default=True, description="Upgrade the schema when the product starts"
    )
    log_level: str = Field(default="info", description="debug, info, warning or error")
    stream_url: str = Field(
        default="", description="Redis URL of the usage stream; empty means in-process"
    )
    stream_name: str = Field(default="synor:usage", description="The usage stream's key")
    stream_group: str = Field(
        default="synor-ingest", description="Consumer group the workers share"
    )
    synor_usd: Decimal | None = Field(
        default=None,
        gt=0,
        description="A fixed SYNOR/USD rate (USD per SYNOR) for invoices instead of the oracle's; "
        "empty: the oracle's when it has sources, else USD prices cannot be billed",
    )
    chain_rpc: str = Field(
        default="", description="JSON-RPC URL of an EVM node; empty means an in-process EVM"
    )
    chain_deployer_key: str = Field(
        default="",
        pattern=r"^(0x[0-9a-fA-F]{64})?$",
        description="Private key that deploys the contracts where none are recorded "
        "(the in-process chain uses its first funded account)",
    )
    treasury_address: str = Field(
        default="",
        pattern=r"^(0x[0-9a-fA-F]{40})?$",
        description="Where invoice payments go (the in-process chain: its tenth funded account)",
    )
    payment_confirmations: int = Field(
        default=12, ge=1, description="Blocks on top of a payment before it is credited"
    )
    oracle_sources: Path | None = Field(
        default=None, description="A TOML file listing the SYNOR/USD price sources"
    )
    oracle_reporter_keys: str = Field(
        default="",
        pattern=r"^(0x[0-9a-fA-F]{64}(\s*,\s*0x[0-9a-fA-F]{64})*)?$",
        description="Comma-separated private keys the oracle submits prices with "
        "(the in-process chain: its funded accounts 2-4)",
    )
    oracle_window: int = Field(default=1800, ge=1, description="Seconds each TWAP covers")
    oracle_max_age: int = Field(
        default=3600, ge=1, description="Seconds after which a price is never billed with"
    )
    oracle_quorum: int = Field(default=3, ge=1, description="Sources a price needs")
    oracle_max_deviation: Decimal = Field(
        default=Decimal("0.05"),
        gt=0,
        description="Relative distance from the median beyond which a source is an outlier",
    )
    oracle_liquidity_floor: Decimal = Field(
        default=Decimal(10_000), ge=0, description="USD of liquidity a source needs to count"
    )
    grace_minutes: int = Field(
        default=60, ge=0, description="Minutes after a period ends before it can be closed"
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be debug, info, warning or error")
        return value.lower()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir.expanduser() / 'synor.db').as_posix()}"
