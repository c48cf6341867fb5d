"""The ``synor`` console script: hands the CLI a launcher from the composition root, and turns
start-up failures (a bad setting, an unreadable price book, an unreachable database or stream)
into one line that names the culprit instead of a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"synor: {message}\n")
    raise SystemExit(code)


def run() -> None:
    from pydantic import ValidationError
    from redis.exceptions import RedisError
    from sqlalchemy.exc import DBAPIError

    from synor_economics.bootstrap import Launcher
    from synor_economics.cli.app import make_app
    from synor_economics.domain.errors import SynorError

    launcher = Launcher()
    try:
        make_app()(obj=launcher)
    except ValidationError as error:
        problems = [
            f"SYNOR_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        ]
        _fail("invalid setting: " + "; ".join(problems), 2)
    except DBAPIError as error:
        first = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        _fail(f"the database is not reachable ({launcher.database_location()}): {first}", 1)
    except RedisError as error:
        _fail(f"the usage stream is not reachable (SYNOR_STREAM_URL): {error}", 1)
    except (SynorError, OSError) as error:
        _fail(str(error), 1)
    finally:
        launcher.close()


if __name__ == "__main__":
    run()
