"""Fuzz `casdesired validate` and `plan` with mutated copies of the example organisation.

Usage: .venv/bin/python bench/fuzz_desired.py [--cases 5000] [--seconds 0] [--seed 1]
                                              [--crashes DIR]

The same mutations and the same property as tests/desired/test_fuzz_cli.py (see
tests/desired/fuzzing.py), only many more cases and a seed of your choosing: every mutated
directory goes through `validate` (text, then JSON with --strict) and, when it is valid and
stays on the embedded lab, through `plan` against that lab. A crash is an exception escaping the
CLI, a traceback on stderr or an exit code other than 0 and 1; each one is saved under --crashes
(the files and the traceback) so it can be replayed by hand. Prints one line at the end:

    cases: 5000, validate exit 0/1: 812/4188, plans: 640, crashes: 0, seconds: 210.4, seed: 1

and exits 1 when there was a crash. --seconds stops early after that long (0: no limit).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from desired.fuzzing import Files, organisations, run_case, write  # noqa: E402


class _TimeUp(Exception):
    """Raised inside the property once --seconds have passed: ends the run early."""


def fuzz(cases: int, seconds: float, seed_value: int, crashes: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    started = time.monotonic()

    @seed(seed_value)
    @settings(
        max_examples=cases,
        phases=[Phase.generate],  # no shrinking: every crash is saved as found
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(organisations())
    def case(files: Files) -> None:
        if seconds and time.monotonic() - started > seconds:
            raise _TimeUp
        outcome = run_case(files)
        counts["cases"] += 1
        counts[f"validate-{outcome.codes.get('validate')}"] += 1
        counts["plans"] += outcome.planned
        if outcome.crash is not None:
            counts["crashes"] += 1
            where = write(crashes / f"crash-{counts['crashes']:03d}", files)
            (where / "CRASH.txt").write_text(outcome.crash, "utf-8")
            print(f"crash saved in {where}:\n{outcome.crash}", file=sys.stderr)

    with contextlib.suppress(_TimeUp):
        case()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000, help="mutated directories to try")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis seed (default 1)")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"),
                        help="where each crash's files are saved (default ./fuzz-crashes)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as state:
        os.environ["XDG_STATE_HOME"] = state  # the embedded lab's state, thrown away after
        counts = fuzz(args.cases, args.seconds, args.seed, args.crashes)
    print(
        f"cases: {counts['cases']}, validate exit 0/1: {counts['validate-0']}/"
        f"{counts['validate-1']}, plans: {counts['plans']}, crashes: {counts['crashes']}, "
        f"seconds: {time.monotonic() - started:.1f}, seed: {args.seed}"
    )
    return 1 if counts["crashes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
