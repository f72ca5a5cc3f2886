"""The audit log: one JSON object per line, appended, never rewritten.

Each apply writes an ``apply-started`` line before its first write and an ``apply-finished``
line at the end: who, when, the plan's id and hash, the lock, and each change with its before,
after and result. A plan id that already has an ``apply-started`` line is refused (the same
record is also kept on the Windows side, with the lock). No credential is ever written here:
entries are built from the plan's changes and names only.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casdesired import jsontext
from casdesired.errors import CasdesiredError

if TYPE_CHECKING:  # the CLI reads DEFAULT_AUDIT_LOG at parser build: no WinRM import for it
    from casdesired.apply.execute import Outcome
    from casdesired.apply.record import ApplyRecord
    from casdesired.plan.plan import Plan

DEFAULT_AUDIT_LOG = Path("casdesired-audit.jsonl")
"""Relative to the current directory (the pipeline's workspace); ``--audit-log`` changes it."""


class AuditLogError(CasdesiredError):
    """The audit log cannot be read or written."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def entries(path: Path) -> Iterator[dict[str, Any]]:
    """The log's entries; lines that are not JSON objects (a torn last line) are skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = jsontext.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    yield entry
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AuditLogError(f"cannot read the audit log {path}: {exc.strerror}") from None


def already_applied(path: Path, plan_id: str) -> dict[str, Any] | None:
    """The ``apply-started`` entry of ``plan_id``, if this log has one."""
    return next(
        (e for e in entries(path) if e.get("event") == "apply-started" and e.get("plan_id") ==
         plan_id),
        None,
    )


def append(path: Path, entry: dict[str, Any]) -> None:
    """Append one line and flush it to disk (an apply killed right after still left it)."""
    line = json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditLogError(f"cannot write the audit log {path}: {exc.strerror}") from None


def change_records(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [
        {
            "kind": o.change.kind,
            "site": o.change.site,
            "identity": o.change.identity,
            "description": o.change.describe(),
            "before": o.change.before(),
            "after": o.change.after(),
            "result": o.status.value,
            "error": o.error,
        }
        for o in outcomes
    ]


def started_entry(
    plan: Plan, *, time: str, who: str, plan_hash: str, lock_id: str
) -> dict[str, Any]:
    """The ``apply-started`` entry, written before the first write."""
    return {
        "event": "apply-started",
        "time": time,
        "who": who,
        "plan_id": plan.plan_id,
        "plan_hash": plan_hash,
        "organisation": plan.organisation,
        "endpoint": plan.endpoint,
        "lock_id": lock_id,
        "changes": len(plan.changes),
    }


def finished_entry(
    record: ApplyRecord, *, started: str, who: str, plan_hash: str, lock_id: str
) -> dict[str, Any]:
    """The ``apply-finished`` entry: what the end report says, with before/after values, and
    the sites whose changes blocking findings withheld (``withheld``)."""
    from casdesired.apply.withheld import withheld_sites

    assert record.plan is not None and record.result is not None
    rollback = record.rollback
    return {
        "event": "apply-finished",
        "time": now(),
        "started": started,
        "who": who,
        "plan_id": record.plan.plan_id,
        "plan_hash": plan_hash,
        "lock_id": lock_id,
        "changes": change_records(record.result.outcomes),
        "stopped": record.result.stopped,
        "verification": record.problems,
        "rollback": str(rollback.path) if rollback is not None and rollback.path else None,
        "rollback_notes": rollback.notes if rollback is not None else [],
        "lock_kept": record.lock_kept,
        "withheld": [site.to_json() for site in withheld_sites(record.plan)],
        "exit_code": record.exit_code,
    }
