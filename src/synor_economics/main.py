"""The ``synor`` console script: hands the CLI a launcher from the composition root."""

from __future__ import annotations


def run() -> None:
    from synor_economics.bootstrap import Launcher
    from synor_economics.cli.app import make_app

    launcher = Launcher()
    try:
        make_app()(obj=launcher)
    finally:
        launcher.close()


if __name__ == "__main__":
    run()
