"""The producer client against the real API: batching, stable ids, and retries that never count
an event twice, even when the server stored a batch but the answer was lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from synor_economics.client import UsageClient, UsageClientError
from synor_economics.services.system import System

NOW = datetime.now(UTC)
PERIOD = NOW.strftime("%Y-%m")
WHEN = max(
    NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0), NOW - timedelta(minutes=5)
)


class Flaky(httpx.BaseTransport):
    """Forwards to the app, then loses some answers: the server did the work, the client never
    hears of it (the case a retry must not double)."""

    def __init__(self, inner: httpx.BaseTransport, lose: set[int], fail_before: set[int]) -> None:
        self.inner = inner
        self.lose = lose
        self.fail_before = fail_before
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls in self.fail_before:
            return httpx.Response(503, json={"error": {"code": "busy", "message": "try later"}})
        response = self.inner.handle_request(request)
        if self.calls in self.lose:
            response.read()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def cpu_raw(system: System, account: str) -> Decimal:
    usage = system.usage.period_usage(account, PERIOD)
    return sum((r.raw for r in usage.resources if r.resource.id == "compute.cpu"), Decimal(0))


def flaky_client(client: TestClient, **kwargs: Any) -> tuple[UsageClient, Flaky]:
    transport = Flaky(client._transport, **kwargs)  # the app's in-process transport
    http = httpx.Client(base_url="http://testserver", transport=transport)
    return UsageClient("http://testserver", http=http, batch_size=100, backoff=0.001), transport


def test_lost_answers_and_busy_servers_count_every_event_once(
    client: TestClient, system: System
) -> None:
    usage, transport = flaky_client(client, lose={1, 4}, fail_before={2, 6})
    ids = [usage.record("acct_9", "compute.cpu", 10, ts=WHEN) for _ in range(450)]
    report = usage.flush()
    assert len(set(ids)) == 450
    assert cpu_raw(system, "acct_9") == 4500
    # Batches 1 and 2 were stored but their answers lost: the retries found them counted.
    assert report.counts == {"accepted": 250, "duplicate": 200}
    assert transport.calls == 5 + 4  # five batches, two lost answers, two 503s
    # Sending the same events again (a producer restarting) changes nothing.
    usage.send(
        {
            "id": i,
            "account": "acct_9",
            "resource": "compute.cpu",
            "quantity": "10",
            "ts": WHEN.isoformat(),
        }
        for i in ids
    )
    assert cpu_raw(system, "acct_9") == 4500


def test_refused_events_are_reported_with_the_event(client: TestClient) -> None:
    with UsageClient("http://testserver", http=client) as usage:
        usage.record("acct_1", "compute.cpu", "5", ts=WHEN)
        usage.record("acct_1", "compute.quantum", "5", ts=WHEN, event_id="q-1")
    assert usage.report.counts == {"accepted": 1, "rejected": 1}
    (refused,) = usage.report.refused
    assert (refused["id"], refused["field"], refused["event"]["resource"]) == (
        "q-1",
        "resource",
        "compute.quantum",
    )


def test_floats_and_naive_times_never_leave_the_producer(client: TestClient) -> None:
    usage = UsageClient("http://testserver", http=client)
    with pytest.raises(TypeError):
        usage.record("acct_1", "compute.cpu", 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        usage.record("acct_1", "compute.cpu", "1", ts=datetime(2026, 11, 1))


def test_a_server_that_stays_down_is_an_error_not_a_silent_loss(client: TestClient) -> None:
    usage, _ = flaky_client(client, lose=set(), fail_before=set(range(1, 100)))
    usage.retries = 2
    usage.record("acct_1", "compute.cpu", "1", ts=WHEN)
    with pytest.raises(UsageClientError, match="3 attempts"):
        usage.flush()
    too_big = UsageClient("http://testserver", http=client, batch_size=10_000)
    events = [{"id": f"e{i}", "account": "a", "resource": "compute.cpu"} for i in range(10_000)]
    with pytest.raises(UsageClientError, match="413"):
        too_big._post([*events, {"id": "one-more"}])  # a 4xx is raised at once, not retried
