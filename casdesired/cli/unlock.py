"""``casdesired unlock LOCK_ID``: break the organisation lock deliberately.

Only the lock named is removed (the id the refusal message printed), so an unlock typed from
an old message cannot break a newer apply's lock. Without LOCK_ID it shows the current lock.
Either way it says what the endpoint knows of the lock: who holds it, since when, and when its
holder last renewed it (a live apply renews at every batch and every minute while one runs).

A killed apply's batch may still be running on the endpoint: Windows does not recall it. Once
its lock is broken, that batch stops before its next write (the agent checks the lock before
every write), so it cannot overwrite what a newer apply does; a write already running finishes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "unlock",
        help="break the organisation lock left by a killed apply (or show it)",
        description=(
            "Remove the organisation-wide apply lock LOCK_ID from the endpoint host. Without "
            "LOCK_ID, show who holds the lock and when its holder last renewed it. A batch of "
            "the apply that held a broken lock (say a killed one's, still running on the "
            "endpoint) stops before its next write."
        ),
    )
    parser.add_argument("lock_id", nargs="?", metavar="LOCK_ID", help="the lock to break")
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("sites/"),
        metavar="DIR",
        help="the organisation directory (default: sites/)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at parser build: `casdesired --help` stays fast (bench/startup_bench.py).
    from casdesired.agent import protocol
    from casdesired.apply import lock as locking
    from casdesired.desired.loader import load_desired
    from casdesired.errors import CasdesiredError, ConfigError, PlanRefused
    from casdesired.plan.build import connect

    if args.lock_id and (os.sep in args.lock_id or Path(args.lock_id).is_dir()):
        raise ConfigError(
            f"{args.lock_id} is a directory, not a lock id: give the organisation directory "
            f"as --config {args.lock_id} (without a LOCK_ID, unlock shows the current lock)"
        )
    desired = load_desired(args.config)
    if desired.has_errors():
        raise CasdesiredError(f"{args.config}: the desired state has errors (casdesired validate)")
    invocation = locking.remove(args.lock_id) if args.lock_id else locking.get()
    with connect(desired.organisation, os.environ) as client:
        # No Exchange needed: the lock is a file on the endpoint host.
        request = protocol.Request(
            invocations=(invocation,), exchange=protocol.ExchangeSession(mode="none")
        )
        response = client.run(request)
    result = response.result(invocation.id)
    if result is None or not result.ok:
        message = result.error.message if result and result.error else "no answer"
        raise PlanRefused(locking.agent_text(message))  # the CLI adds "casdesired: error: "
    if not result.objects:
        print("No lock is held.")
        return 0
    info = locking.LockInfo.from_object(result.objects[0])
    if args.lock_id:
        print(f"Removed {info.describe()}.")
        print(
            "If the apply that held it still has a batch running on the endpoint (a killed "
            "apply's batch runs on there), that batch stops before its next change: the agent "
            "checks the lock before every write. A change already running finishes."
        )
    else:
        print(f"Held: {info.describe()}.")
        print(
            "A live apply renews it at every batch and every minute while one runs. Once you "
            "know its apply is gone, break it with: "
            f"{locking.unlock_command(info.lock_id, args.config)}"
        )
    return 0
