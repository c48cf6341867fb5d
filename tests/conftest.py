"""Shared fixtures: clocks, and the real databases the integration tests run against.

PostgreSQL is found at ``SYNOR_TEST_POSTGRES_URL`` (default: the local server on 127.0.0.1:5432,
user postgres). If it does not answer, the fixture tries to start the machine's cluster. When
neither works the tests skip with the reason, except under ``SYNOR_REQUIRE_SERVICES=1`` (CI), where
a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql.engine import make_engine, scratch_postgres
from synor_economics.adapters.sql.migrate import upgrade

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REQUIRE_SERVICES = os.environ.get("SYNOR_REQUIRE_SERVICES") == "1"


def _postgres_answers(url: str) -> bool:
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def _try_start_postgres() -> None:
    """Start the machine's PostgreSQL cluster the way its service scripts do, if we can."""
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or not clusters.is_dir():
        return
    for version in sorted(p.name for p in clusters.iterdir()):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (SYNOR_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("SYNOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    if not _postgres_answers(url):
        _try_start_postgres()
        for _ in range(20):
            if _postgres_answers(url):
                break
            time.sleep(0.5)
        else:
            unavailable(f"PostgreSQL does not answer at {make_url(url).render_as_string()}")
    return url


DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _try_start_redis() -> None:
    """Start a Redis server the way the machine's own service does, if one is installed."""
    server = shutil.which("redis-server")
    if server is None:
        return
    subprocess.run(
        [
            server,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=False,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis server: ``SYNOR_TEST_REDIS_URL``, or the local one, started if need be."""
    url = os.environ.get("SYNOR_TEST_REDIS_URL", DEFAULT_REDIS)
    if not _redis_answers(url):
        _try_start_redis()
        for _ in range(20):
            if _redis_answers(url):
                break
            time.sleep(0.25)
        else:
            unavailable(f"Redis does not answer at {url}")
    return url


@pytest.fixture
def stream_name(redis_url: str) -> Iterator[str]:
    """A stream key of this test's own, deleted (with its dead letters) afterwards."""
    import uuid

    import redis

    name = f"synor:test:{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(name, f"{name}:dead")
    client.close()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    with scratch_postgres(postgres_admin_url, prefix="synor_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'synor.db'}"


def migrated_engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 1, tzinfo=UTC))


STORES = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[tuple[str, object]]:
    """One unit of work of each kind: the in-memory fake, SQLite, PostgreSQL. The contract tests
    run the same assertions over all three."""
    from synor_economics.adapters.memory.ledger import MemoryUnitOfWork
    from synor_economics.adapters.sql.uow import SqlUnitOfWork

    kind = request.param
    if kind == "memory":
        yield kind, MemoryUnitOfWork()
        return
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "postgres_url")
    engine = migrated_engine(url)
    try:
        yield kind, SqlUnitOfWork(engine)
    finally:
        engine.dispose()
