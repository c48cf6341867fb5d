"""The price book as versioned data: ``default.toml`` (SPEC §3) and the loader that reads it."""

from synor_economics.catalog.loader import (
    load_catalog,
    load_default_catalog,
    parse_catalog,
    parse_price_row,
)

__all__ = ["load_catalog", "load_default_catalog", "parse_catalog", "parse_price_row"]
