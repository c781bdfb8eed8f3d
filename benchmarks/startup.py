"""Median wall time of `edgekit --help` (and, beside it, of a bare Python start).

Run: .venv/bin/python benchmarks/startup.py [--runs 30]
Both commands are timed alternately in fresh processes, so machine noise hits
both alike; the figure to quote is the median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    edgekit = shutil.which("edgekit", path=str(Path(sys.executable).parent)) or "edgekit"
    commands = {
        "edgekit --help": [edgekit, "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    for argv in commands.values():  # warm the page cache
        _time(argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            samples[name].append(_time(argv))
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'max s':>7}  runs={args.runs}")
    for name, values in samples.items():
        print(
            f"{name:<16} {statistics.median(values):>9.3f} {min(values):>7.3f} {max(values):>7.3f}"
        )
    median = statistics.median(samples["edgekit --help"])
    print(
        f"edgekit --help median {median:.3f} s: {'within' if median < 0.3 else 'OVER'} the 0.3 s budget"
    )


if __name__ == "__main__":
    main()
