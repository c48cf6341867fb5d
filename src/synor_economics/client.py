"""A Python client for producers of usage events: buffer, batch, send, retry.

    from synor_economics.client import UsageClient

    with UsageClient("http://127.0.0.1:8000") as usage:
        usage.record("acct_42", "compute.cpu", "7200", subject="vm-17")
    # leaving the block sends what is buffered

Every event gets its id when it is recorded (a UUID unless the producer gives one), and a retry
re-sends the same ids, so the server's dedup turns a retry of an event that did land into a
"duplicate" instead of a second count. Retries back off exponentially with jitter, on connection
errors, timeouts, 429 and 5xx; a 4xx answer is the caller's mistake and is raised at once.

The client needs only ``httpx`` and the standard library: producers do not install the server.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx

MAX_BATCH = 10_000
"""Events the server takes in one request."""

_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class UsageClientError(Exception):
    """The server refused a request (4xx), or it could not be reached after every retry."""


@dataclass
class SendReport:
    """What became of the events sent so far: counts by status, and every refused one."""

    counts: Counter[str] = field(default_factory=Counter)
    refused: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0

    def add(self, answer: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> None:
        for outcome in answer["events"]:
            self.counts[outcome["status"]] += 1
            if outcome["status"] in ("rejected", "conflict"):
                self.refused.append({**outcome, "event": events[outcome["index"]]})


class UsageClient:
    """Sends usage events to ``POST /v1/events`` in batches of ``batch_size``."""

    def __init__(
        self,
        base_url: str,
        *,
        batch_size: int = 1000,
        retries: int = 6,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self._owns_http = http is None
        self.batch_size = batch_size
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.report = SendReport()
        self._buffer: list[dict[str, Any]] = []

    def record(
        self,
        account: str,
        resource: str,
        quantity: str | int | Decimal,
        *,
        ts: datetime | str | None = None,
        subject: str | None = None,
        operator: str | None = None,
        meta: Mapping[str, Any] | None = None,
        event_id: str | None = None,
    ) -> str:
        """Buffer one event (sending a full batch); return its id."""
        event: dict[str, Any] = {
            "id": event_id or str(uuid.uuid4()),
            "account": account,
            "resource": resource,
            "quantity": _quantity(quantity),
            "ts": _timestamp(ts),
        }
        if subject is not None:
            event["subject"] = subject
        if operator is not None:
            event["operator"] = operator
        if meta is not None:
            event["meta"] = dict(meta)
        self._buffer.append(event)
        if len(self._buffer) >= self.batch_size:
            self.flush()
        return str(event["id"])

    def send(self, events: Iterable[Mapping[str, Any]]) -> SendReport:
        """Send ready-made events (each with its own ``id``) in batches."""
        for event in events:
            if not event.get("id"):
                raise ValueError("every event needs an id, so that a retry cannot count it twice")
            self._buffer.append(dict(event))
            if len(self._buffer) >= self.batch_size:
                self.flush()
        return self.flush()

    def flush(self) -> SendReport:
        """Send everything buffered; the report covers every event sent by this client."""
        while self._buffer:
            batch = self._buffer[: self.batch_size]
            self._post(batch)
            del self._buffer[: len(batch)]
        return self.report

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._owns_http:
                self._http.close()

    def __enter__(self) -> UsageClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        elif self._owns_http:
            self._http.close()

    def _post(self, batch: list[dict[str, Any]]) -> None:
        """POST one batch until it is answered; the same ids every time."""
        for attempt in range(self.retries + 1):
            self.report.attempts += 1
            try:
                response = self._http.post("/v1/events", json=batch)
            except httpx.TransportError as error:
                failure: str = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    self.report.add(response.json(), batch)
                    return
                if response.status_code not in _RETRY_STATUSES:
                    raise UsageClientError(
                        f"server refused the batch ({response.status_code}): {response.text[:500]}"
                    )
                failure = f"HTTP {response.status_code}"
            if attempt < self.retries:
                time.sleep(self._delay(attempt))
        raise UsageClientError(f"batch not delivered after {self.retries + 1} attempts: {failure}")

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter (spreads out many clients retrying at once)."""
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))  # noqa: S311


def _quantity(value: str | int | Decimal) -> str:
    if isinstance(value, bool | float):
        raise TypeError("quantity must be a decimal string, int or Decimal, never a float")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _timestamp(value: datetime | str | None) -> str:
    if isinstance(value, str):
        return value
    moment = value or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("ts must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
