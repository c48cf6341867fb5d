"""Wall time of ``synor cost estimate`` from process start to exit (goal: ≤ 300 ms).

Runs the installed console script repeatedly with flags for every default service and prints
the minimum, median and 90th percentile. The first run is a warm-up (it fills the OS file cache
and writes bytecode), as a user's second run would find it.

Usage: python bench/estimate_startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("synor")
ARGS = [
    "cost", "estimate", "--storage-gb", "500", "--cpu-core-hours", "720", "--gpu-hours", "10",
    "--queries", "30M", "--bandwidth-gb", "200", "--database-gb", "20", "--rate", "0.25",
]  # fmt: skip


def once() -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNOR_")}
    started = time.perf_counter()
    subprocess.run([str(SCRIPT), *ARGS], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    once()
    times = sorted(once() for _ in range(runs))
    p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
    print(
        f"synor cost estimate, {runs} runs: min {times[0] * 1000:.0f} ms, "
        f"median {statistics.median(times) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms "
        f"(goal: 300 ms)"
    )


if __name__ == "__main__":
    main()
