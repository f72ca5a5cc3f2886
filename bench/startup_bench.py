"""Start-up time of `casdesired --version` and `casdesired --help`, against `python -c pass`.

Usage: .venv/bin/python bench/startup_bench.py [--runs 21]

Each command is run --runs times, interleaved (so a busy moment of the machine touches all of
them alike); the median wall time of each is printed, and the difference from the bare
interpreter's, which is what casdesired itself costs. The target: under 0.3 s for --version and
--help (docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.3


def program() -> list[str]:
    """The installed entry point next to this interpreter, else ``python -m casdesired``."""
    script = Path(sys.executable).parent / "casdesired"
    return [str(script)] if script.exists() else [sys.executable, "-m", "casdesired"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "casdesired --version": [*program(), "--version"],
        "casdesired --help": [*program(), "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["python -c pass"])
    print(f"| command | median s ({args.runs} runs) | minus `python -c pass` s | target |")
    print("|---|---:|---:|---|")
    failed = False
    for name, samples in times.items():
        median = statistics.median(samples)
        target = "" if name.startswith("python") else f"< {TARGET_SECONDS} s"
        if target and median >= TARGET_SECONDS:
            target += " MISSED"
            failed = True
        print(f"| `{name}` | {median:.3f} | {median - base:+.3f} | {target} |")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
