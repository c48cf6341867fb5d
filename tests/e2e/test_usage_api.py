"""End-to-end tests of metering over HTTP: POST /v1/events in its three shapes, the usage view,
and dead letters, on the SQLite file the composition root builds."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from synor_economics.api.app import INGEST_THREADS
from synor_economics.services.system import System

NOW = datetime.now(UTC)
PERIOD = NOW.strftime("%Y-%m")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(event_id: str, quantity: object = "3600", **fields: Any) -> dict[str, Any]:
    """A compute event earlier this month (or right now on the month's first hour)."""
    month_start = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    body = {
        "id": event_id,
        "account": "acct_42",
        "resource": "compute.cpu",
        "quantity": quantity,
        "ts": stamp(max(month_start, NOW - timedelta(minutes=10))),
    }
    body.update(fields)
    return body


def cpu_raw(client: TestClient) -> Decimal:
    document = client.get(f"/v1/accounts/acct_42/usage?period={PERIOD}").json()
    rows = [r for r in document["resources"] if r["resource"] == "compute.cpu"]
    return Decimal(rows[0]["raw_quantity"]) if rows else Decimal(0)


def test_one_event_an_array_and_ndjson_all_count_once(client: TestClient) -> None:
    one = client.post("/v1/events", json=event("e1"))
    assert one.status_code == 200
    assert one.json()["accepted"] == 1
    array = client.post("/v1/events", json=[event("e1"), event("e2"), event("e3", "7200")])
    assert [e["status"] for e in array.json()["events"]] == ["duplicate", "accepted", "accepted"]
    lines = "\n".join(json.dumps(e) for e in (event("e3", "7200"), event("e4"))) + "\n"
    ndjson = client.post(
        "/v1/events", content=lines, headers={"content-type": "application/x-ndjson"}
    )
    assert ndjson.json() | {"events": None} == {
        "accepted": 1,
        "duplicate": 1,
        "conflict": 0,
        "rejected": 0,
        "events": None,
    }
    assert cpu_raw(client) == Decimal(3600 * 3 + 7200)


def test_pretty_printed_arrays_and_crlf_ndjson_count_like_compact_bodies(
    client: TestClient,
) -> None:
    pretty = json.dumps([event("p1"), event("p2", "7200")], indent=2)
    answer = client.post("/v1/events", content=pretty, headers={"content-type": "application/json"})
    assert [e["status"] for e in answer.json()["events"]] == ["accepted", "accepted"]
    crlf = "\r\n".join(json.dumps(e) for e in (event("p2", "7200"), event("p3"))) + "\r\n\r\n"
    again = client.post(
        "/v1/events", content=crlf, headers={"content-type": "application/x-ndjson"}
    ).json()
    assert [(e["index"], e["id"], e["status"]) for e in again["events"]] == [
        (0, "p2", "duplicate"),
        (1, "p3", "accepted"),
    ]
    assert cpu_raw(client) == Decimal(3600 + 7200 + 3600)


def test_requests_side_by_side_count_every_event_once(client: TestClient) -> None:
    """Concurrent requests are stored in shared transactions (group commit): each event still
    counts once, whichever request brought it first."""
    batches = [
        [event(f"s{(start + i) % 60}", "1") for i in range(20)] for start in range(0, 120, 5)
    ]

    def post(batch: list[dict[str, Any]]) -> dict[str, int]:
        answer = client.post("/v1/events", json=batch).json()
        return {key: answer[key] for key in ("accepted", "duplicate", "conflict", "rejected")}

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, batches))
    assert sum(a["accepted"] for a in answers) == 60
    assert sum(a["duplicate"] for a in answers) == 20 * len(batches) - 60
    assert not any(a["conflict"] or a["rejected"] for a in answers)
    assert cpu_raw(client) == 60


def test_the_usage_view_shows_raw_and_billable_quantities(client: TestClient) -> None:
    client.post("/v1/events", json=[event("a", "5400"), event("b", "1800")])
    document = client.get(f"/v1/accounts/acct_42/usage?period={PERIOD}").json()
    assert document["account"] == "acct_42"
    assert document["period"] == PERIOD
    (row,) = document["resources"]
    assert row == {
        "resource": "compute.cpu",
        "meter": "counter",
        "raw_quantity": "7200",
        "raw_unit": "core-seconds",
        "quantity": "2",
        "unit": "core-hour",
        "events": 2,
    }


def test_bad_events_are_reported_by_index_and_kept_as_dead_letters(client: TestClient) -> None:
    answer = client.post(
        "/v1/events",
        json=[event("ok"), event("bad-q", quantity=3600), {"id": "x", "account": "acct_42"}],
    ).json()
    assert answer["accepted"] == 1
    assert answer["rejected"] == 2
    bad = answer["events"][1]
    assert (bad["index"], bad["id"], bad["status"], bad["field"]) == (
        1,
        "bad-q",
        "rejected",
        "quantity",
    )
    assert answer["events"][2]["field"] == "resource"
    conflict = client.post("/v1/events", json=event("ok", "1")).json()["events"][0]
    assert conflict["status"] == "conflict"
    page = client.get("/v1/usage/dead-letters?limit=2").json()
    assert [(d["id"], d["status"]) for d in page["dead_letters"]] == [
        ("ok", "conflict"),
        ("x", "rejected"),
    ]
    assert json.loads(page["dead_letters"][0]["body"])["quantity"] == "1"
    rest = client.get(f"/v1/usage/dead-letters?limit=2&before={page['next_before']}").json()
    assert [d["id"] for d in rest["dead_letters"]] == ["bad-q"]
    assert rest["next_before"] is None


def test_malformed_bodies_say_where(client: TestClient) -> None:
    broken = client.post(
        "/v1/events",
        content=b'[{"id": "a",\n "quantity": }]',
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "malformed"
    assert "line 2" in broken.json()["error"]["message"]
    lines = json.dumps(event("fine")) + "\n{nope\n"
    bad_line = client.post(
        "/v1/events", content=lines, headers={"content-type": "application/x-ndjson"}
    )
    assert bad_line.status_code == 400
    assert "line 2" in bad_line.json()["error"]["message"]
    assert cpu_raw(client) == 0  # a malformed request counts nothing


def test_batches_are_capped_and_periods_checked(client: TestClient) -> None:
    too_many = client.post("/v1/events", json=[event(f"e{i}") for i in range(10_001)])
    assert too_many.status_code == 413
    assert "10000" in too_many.json()["error"]["message"]
    wrong = client.get("/v1/accounts/acct_42/usage?period=2026-13")
    assert wrong.status_code == 422
    assert "period" in wrong.json()["error"]["message"]


def test_replace_a_window_over_http_and_revert_it(client: TestClient) -> None:
    hour = datetime.fromisoformat(event("x")["ts"].replace("Z", "+00:00")).replace(
        minute=0, second=0, microsecond=0
    )
    window = {"from": stamp(hour), "to": stamp(hour + timedelta(hours=1))}
    client.post("/v1/events", json=[event("a"), event("b")])
    made = client.post(
        "/v1/accounts/acct_42/usage/replacements",
        json={**window, "note": "re-metered", "events": [event("a", "100"), event("c", 1)]},
    )
    assert made.status_code == 200
    body = made.json()
    assert (body["superseded"], body["added"], body["state"]) == (2, 1, "active")
    assert [e["status"] for e in body["events"]] == ["accepted", "rejected"]
    assert cpu_raw(client) == 100
    listed = client.get("/v1/usage/replacements", params={"account": "acct_42"}).json()
    assert [r["note"] for r in listed["replacements"]] == ["re-metered"]
    reverted = client.post(f"/v1/usage/replacements/{body['replacement']}/revert")
    assert reverted.json()["state"] == "reverted"
    assert cpu_raw(client) == 7200
    again = client.post(f"/v1/usage/replacements/{body['replacement']}/revert")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_reverted")
    missing = client.post("/v1/usage/replacements/999/revert")
    assert missing.status_code == 404
    crooked = client.post(
        "/v1/accounts/acct_42/usage/replacements",
        json={"from": stamp(hour + timedelta(minutes=5)), "to": window["to"], "events": []},
    )
    assert (crooked.status_code, crooked.json()["error"]["code"]) == (422, "invalid_window")


def test_ingest_requests_waiting_on_a_commit_leave_the_other_routes_their_threads(
    client: TestClient, system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ingest request waits for its group commit on a worker thread. With the commits held
    up, more requests than anyio's default thread limit (40) arrive: at most ``INGEST_THREADS``
    of them hold a thread, and the usage view, on the default limit, still answers. Once the
    commits go through, every request is answered."""
    gate, waiting = threading.Event(), threading.Semaphore(0)
    submit = system.usage.submit

    def held_up(screened: Any) -> Any:
        waiting.release()
        assert gate.wait(timeout=30)
        return submit(screened)

    monkeypatch.setattr(system.usage, "submit", held_up)
    with ThreadPoolExecutor(max_workers=46) as pool:
        try:
            posts = [pool.submit(client.post, "/v1/events", json=event(f"w{n}")) for n in range(45)]
            for _ in range(INGEST_THREADS):
                assert waiting.acquire(timeout=10)
            assert not waiting.acquire(timeout=0.5)  # the rest wait for a thread of their own
            view = pool.submit(client.get, f"/v1/accounts/acct_42/usage?period={PERIOD}")
            assert view.result(timeout=10).status_code == 200
        finally:
            gate.set()
        answers = [post.result(timeout=30) for post in posts]
    assert [answer.json()["accepted"] for answer in answers] == [1] * 45
    assert cpu_raw(client) == 3600 * 45
