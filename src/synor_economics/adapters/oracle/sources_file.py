"""The oracle's price sources, from a TOML file (``SYNOR_ORACLE_SOURCES``)::

    [[source]]
    name = "uniswap-v2:SYNOR/USDC"
    kind = "uniswap-v2"
    pair = "0x..."            # the pair's address
    token = "0x..."           # SYNOR's address; default: the project's deployed token

    [[source]]
    name = "uniswap-v3:SYNOR/USDC"
    kind = "uniswap-v3"
    pool = "0x..."            # the pool's address (its own observations give the TWAP)
    token = "0x..."           # as above

    [[source]]
    name = "feed:exchange-a"
    kind = "json-feed"
    url = "https://example.org/synor-usd"
    weight = "50000"          # USD: a feed's weight in the median
    price_path = "price"      # dotted path to the price in the JSON answer
    time_path = "timestamp"   # dotted path to its time (seconds or RFC 3339), if it has one
    max_age = 300             # seconds after which a quote is refused

Each entry is checked when the file is read, and a mistake names the entry and the field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from synor_economics.adapters.chain.evm import EvmChain
from synor_economics.adapters.oracle.json_feed import JsonFeedSource
from synor_economics.adapters.oracle.uniswap_v2 import UniswapV2Source
from synor_economics.adapters.oracle.uniswap_v3 import UniswapV3Source
from synor_economics.domain.errors import SynorError
from synor_economics.ports import PriceSource

KINDS = ("uniswap-v2", "uniswap-v3", "json-feed")
_REQUIRED = {"uniswap-v2": ("pair",), "uniswap-v3": ("pool",), "json-feed": ("url", "weight")}


class SourcesFileError(SynorError, ValueError):
    """A sources file that does not describe sources."""


def read_sources_file(path: Path) -> list[dict[str, Any]]:
    """The file's entries, checked for shape (no chain is touched)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SourcesFileError(f"{path}: {error}") from error
    entries = data.get("source")
    if not isinstance(entries, list) or not entries:
        raise SourcesFileError(f"{path}: no [[source]] entries")
    names: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{path}: source[{index}]"
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise SourcesFileError(f"{where}: name is required")
        if name in names:
            raise SourcesFileError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        kind = entry.get("kind")
        if kind not in KINDS:
            raise SourcesFileError(f"{where}: kind must be one of {', '.join(KINDS)}")
        for field in _REQUIRED[kind]:
            if not entry.get(field):
                raise SourcesFileError(f"{where}: {field} is required for {kind}")
        if kind == "json-feed":
            try:
                weight = Fraction(str(entry["weight"]))
            except ValueError:
                weight = Fraction(-1)
            if weight <= 0 or isinstance(entry["weight"], float):
                raise SourcesFileError(f"{where}: weight must be a positive decimal string")
    return entries


def build_sources(
    entries: list[dict[str, Any]],
    chain: Callable[[], EvmChain],
    synor_token: Callable[[], str],
    now: Callable[[], int],
    window: int,
) -> list[PriceSource]:
    """Source objects for the entries; the chain is reached only if a source is on chain.
    ``window`` is the TWAP window a v3 pool is asked to observe."""
    sources: list[PriceSource] = []
    for entry in entries:
        token = entry.get("token")
        if entry["kind"] == "uniswap-v2":
            sources.append(
                UniswapV2Source(chain(), entry["name"], entry["pair"], token or synor_token())
            )
        elif entry["kind"] == "uniswap-v3":
            sources.append(
                UniswapV3Source(
                    chain(), entry["name"], entry["pool"], token or synor_token(), window=window
                )
            )
        else:
            sources.append(
                JsonFeedSource(
                    entry["name"],
                    entry["url"],
                    weight=Fraction(str(entry["weight"])),
                    now=now,
                    price_path=entry.get("price_path", "price"),
                    time_path=entry.get("time_path", "timestamp"),
                    max_age=int(entry.get("max_age", 300)),
                )
            )
    return sources
