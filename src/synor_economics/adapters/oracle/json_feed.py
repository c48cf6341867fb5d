"""An off-chain price feed as a SYNOR/USD source: an HTTP endpoint answering JSON.

The feed is asked for its quote each round; the oracle keeps the quotes and averages them over
time, as it does accumulators. Prices are read as exact decimals (a JSON number such as 0.0123
never passes through a float), from a dotted path in the document (``data.price`` by default
``price``). The feed's weight is configured (a feed has no reserves to measure). The quote's time
is the feed's own (``timestamp``: seconds or RFC 3339) when it gives one; a quote older than
``max_age`` seconds is refused, so a frozen feed drops out of the quorum rather than pinning it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import httpx

from synor_economics.domain.errors import SynorError
from synor_economics.ports import PriceReading

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FeedError(SynorError):
    """A feed that did not answer with a usable quote."""


class JsonFeedSource:
    """One HTTP JSON feed."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        weight: Fraction,
        now: Callable[[], int],
        price_path: str = "price",
        time_path: str = "timestamp",
        max_age: int = 300,
        timeout_s: float = 5.0,
    ) -> None:
        self._name = name
        self._url = url
        self._weight = weight
        self._now = now
        self._price_path = price_path.split(".")
        self._time_path = time_path.split(".")
        self._max_age = max_age
        self._client = httpx.Client(timeout=timeout_s)

    @property
    def name(self) -> str:
        return self._name

    def read(self) -> PriceReading:
        now = self._now()
        try:
            response = self._client.get(self._url)
            response.raise_for_status()
            document = json.loads(response.content, parse_float=Decimal, parse_int=Decimal)
        except (httpx.HTTPError, ValueError) as error:
            raise FeedError(
                f"{self._name}: {self._url} did not answer with JSON: {error}"
            ) from error
        price = _exact(_pick(document, self._price_path), f"{self._name}: price")
        if price <= 0:
            raise FeedError(f"{self._name}: price {price} is not positive")
        stamp = _pick(document, self._time_path, required=False)
        at = now if stamp is None else _seconds(stamp, self._name)
        if now - at > self._max_age:
            raise FeedError(
                f"{self._name}: the quote is {now - at} s old (at most {self._max_age})"
            )
        return PriceReading(
            source=self._name,
            timestamp=min(at, now),
            cumulative=None,
            unit=Fraction(1),
            spot=price,
            liquidity=self._weight,
        )

    def close(self) -> None:
        self._client.close()


def _pick(document: object, path: list[str], *, required: bool = True) -> object:
    node = document
    for key in path:
        if not isinstance(node, dict) or key not in node:
            if required:
                raise FeedError(f"the feed's answer has no {'.'.join(path)}")
            return None
        node = node[key]
    return node


def _exact(value: object, what: str) -> Fraction:
    """A JSON number or a decimal string, exactly."""
    if isinstance(value, Decimal) and value.is_finite():
        return Fraction(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except ArithmeticError:
            parsed = Decimal("NaN")
        if parsed.is_finite():
            return Fraction(parsed)
    raise FeedError(f"{what} is not a decimal number: {value!r}")


def _seconds(value: object, source: str) -> int:
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                return (moment - _EPOCH) // timedelta(seconds=1)
        except ValueError:
            pass
    raise FeedError(f"{source}: timestamp is neither seconds nor RFC 3339: {value!r}")
