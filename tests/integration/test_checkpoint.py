"""SQLite's WAL checkpoints run on a thread of their own (``adapters/sql/checkpoint.py``): after
a write commits through the assembled system, its pages reach the database file itself without
the writer copying them, and a writer copies them itself only past a long log."""

from __future__ import annotations

import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from synor_economics.adapters.sql.checkpoint import AUTOCHECKPOINT_PAGES, checkpointer_for
from synor_economics.adapters.sql.engine import make_engine
from synor_economics.bootstrap import build
from synor_economics.config import Settings
from synor_economics.services.usage_input import Lines
from tests.integration.test_event_segments import lines
from tests.integration.test_usage import event


def in_file_alone(database: Path, scratch: Path) -> int | None:
    """Segments the database file holds without its log (a copy of the file, opened alone);
    None while the file alone is not a database that holds them: the schema still in the log,
    or a copy taken while a checkpoint was writing pages into the file (torn: malformed)."""
    for leftover in (scratch.with_name(scratch.name + end) for end in ("-wal", "-shm")):
        leftover.unlink(missing_ok=True)  # an earlier copy's, if it could not be opened
    shutil.copyfile(database, scratch)
    with closing(sqlite3.connect(scratch)) as copy:  # closed: its locks go with it
        try:
            copy.execute("PRAGMA journal_mode=DELETE")  # no log of its own: the file as it is
            found = copy.execute("SELECT count(*) FROM usage_event_segments").fetchone()
        except sqlite3.DatabaseError:  # no such table, or malformed
            return None
        return int(found[0])


def test_committed_pages_reach_the_database_file_on_the_thread(tmp_path: Path) -> None:
    system = build(Settings(data_dir=tmp_path / "data"))
    try:
        database = tmp_path / "data" / "synor.db"
        assert not in_file_alone(database, tmp_path / "copy.db")  # all in the log so far
        batch: Lines = lines(*(event(f"e{i}", str(i), ts=_recent()) for i in range(50)))
        system.usage.ingest(batch, source="file")
        deadline = time.monotonic() + 10
        while in_file_alone(database, tmp_path / "copy.db") != 1:
            assert time.monotonic() < deadline, "the log was never copied into the file"
            time.sleep(0.05)
    finally:
        system.close()


def test_a_writer_checkpoints_by_itself_only_past_a_long_log(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        (pages,) = driver.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert pages == AUTOCHECKPOINT_PAGES
    assert checkpointer_for(make_engine("sqlite://")) is None  # in memory: no log
    checkpoints = checkpointer_for(engine)
    assert checkpoints is not None
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    busy, logged, copied = checkpoints.checkpoint()
    assert (busy, copied) == (0, logged)
    assert logged > 0
    checkpoints.close()
    engine.dispose()


def _recent() -> str:
    return time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() - 3600))
