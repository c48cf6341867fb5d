"""The ``synor`` console script: hands the CLI a launcher from the composition root, and turns
start-up failures (a bad setting, an unreadable price book, an unreachable database or stream)
into one line that names the culprit instead of a traceback."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from synor_economics.bootstrap import Launcher


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"synor: {message}\n")
    raise SystemExit(code)


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """An exception class, if its library was imported at all (a library never imported
    cannot have raised it; importing it just to compare would slow every command's start)."""
    found = sys.modules.get(module)
    return getattr(found, name, None) if found is not None else None


def _explain(error: BaseException, launcher: Launcher) -> NoReturn:
    """Say in one line what failed; re-raise what is not ours to explain."""
    from synor_economics.domain.errors import SynorError

    validation = _loaded("pydantic", "ValidationError")
    database = _loaded("sqlalchemy.exc", "DBAPIError")
    stream = _loaded("redis.exceptions", "RedisError")
    if validation is not None and isinstance(error, validation):
        problems = [
            f"SYNOR_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()  # type: ignore[attr-defined]
        ]
        _fail("invalid setting: " + "; ".join(problems), 2)
    if database is not None and isinstance(error, database):
        orig = error.orig  # type: ignore[attr-defined]
        first = str(orig).strip().splitlines()[0] if orig else str(error)
        _fail(f"the database is not reachable ({launcher.database_location()}): {first}", 1)
    if stream is not None and isinstance(error, stream):
        _fail(f"the usage stream is not reachable (SYNOR_STREAM_URL): {error}", 1)
    if isinstance(error, SynorError | OSError):
        _fail(str(error), 1)
    raise error


def run() -> None:
    from synor_economics.bootstrap import Launcher
    from synor_economics.cli.app import make_app

    launcher = Launcher()
    try:
        make_app(sys.argv[1] if len(sys.argv) > 1 else None)(obj=launcher)
    except Exception as error:  # each kind is explained, or re-raised, by _explain
        _explain(error, launcher)
    finally:
        launcher.close()


if __name__ == "__main__":
    run()
