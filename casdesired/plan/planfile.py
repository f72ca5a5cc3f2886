"""The saved plan file: versioned JSON with one member and one list item per line, a checksum
over its content, and changes that must still run exactly what was reviewed.

:func:`read_document` refuses a file that cannot be read, is not JSON, has no checksum or a
wrong one; :func:`change_from` refuses a change whose recorded invocations no longer match
what its data would run (an edited file). The schema is ``schemas/plan.schema.json``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from casdesired import jsontext
from casdesired.atomicfile import write_atomic
from casdesired.changes.types import (
    EXCHANGE_CHANGES,
    Action,
    BadChange,
    Change,
    change_from_json,
)
from casdesired.dns.records import RECORD_CHANGES
from casdesired.errors import CasdesiredError

FORMAT_VERSION = 1

CHANGE_TYPES: dict[str, type[Change]] = {c.kind: c for c in (*EXCHANGE_CHANGES, *RECORD_CHANGES)}
"""Every kind of change a plan carries (and a plan file may hold)."""


class PlanFileError(CasdesiredError):
    """A plan file cannot be used: unreadable, not a plan, another version, or modified."""


def write_document(document: Mapping[str, Any], path: Path) -> None:
    """Write a plan document with its checksum, atomically: a reader never sees half a file."""
    text = dumps({**document, "checksum": checksum(document)})
    write_atomic(Path(path), lambda handle: handle.write(text), what="the plan")


def read_document(path: Path) -> dict[str, Any]:
    """A saved plan's document, checksum verified and removed; any damage or edit gives
    :class:`PlanFileError`, never a traceback."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PlanFileError(f"cannot read plan file {path}: {reason}") from None
    try:
        data = jsontext.loads(text)
        # The canonical JSON of a document nested near the limit recurses as loading did.
        computed = checksum(data) if isinstance(data, dict) else None
    except (jsontext.NestedTooDeeply, RecursionError):
        raise PlanFileError(f"{path} is not a plan file (JSON nested too deeply)") from None
    except ValueError as exc:
        raise PlanFileError(f"{path} is not a plan file (not JSON: {exc})") from None
    if not isinstance(data, dict):
        raise PlanFileError(f"{path} is not a plan file")
    recorded = data.pop("checksum", None)
    if data.get("format_version") == FORMAT_VERSION and recorded is None:
        raise PlanFileError(
            f"{path} has no checksum: only files written by `casdesired plan --out` can be "
            "used as saved plans"
        )
    if data.get("format_version") == FORMAT_VERSION and recorded != computed:
        raise PlanFileError(
            f"{path} was modified after it was saved (checksum mismatch); "
            "make a new plan instead of editing one"
        )
    return data


def validate_document(data: Any) -> None:
    """Raise :class:`PlanFileError` unless ``data`` is a plan document of this version."""
    if not isinstance(data, Mapping) or data.get("format_version") != FORMAT_VERSION:
        version = data.get("format_version") if isinstance(data, Mapping) else None
        raise PlanFileError(
            f"not a casdesired plan of format_version {FORMAT_VERSION} (found {version!r})"
        )
    try:
        errors = sorted(plan_validator().iter_errors(dict(data)), key=lambda e: list(e.path))
    except RecursionError:
        raise PlanFileError("invalid plan: nested too deeply") from None
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise PlanFileError(f"invalid plan at {where}: {first.message}")


def dumps(document: Mapping[str, Any]) -> str:
    """JSON with one top-level member, and one list item, per line.

    Readable and diffable, yet written by the C encoder: ``json.dumps(indent=2)`` falls back to
    the pure-Python encoder, which took 2 s for a 10,000-change plan.
    """

    def compact(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))

    lines = []
    for name, value in document.items():
        if isinstance(value, list) and value:
            items = ",\n".join(f"    {compact(item)}" for item in value)
            lines.append(f"  {compact(name)}: [\n{items}\n  ]")
        else:
            lines.append(f"  {compact(name)}: {compact(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def checksum(document: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a plan document (without its checksum)."""
    canonical = json.dumps(
        {k: v for k, v in document.items() if k != "checksum"},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def change_json(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "action": change.action.value,
        "site": change.site,
        "identity": change.identity,
        "description": change.describe(),
        "mailboxes": change.mailboxes,
        "before": change.before(),
        "after": change.after(),
        "data": change.to_json(),
        "invocations": [i.to_json() for i in change.invocations()],
    }


def change_from(entry: Mapping[str, Any]) -> Change:
    change = change_from_json(entry["data"], CHANGE_TYPES)
    if change.kind != entry["kind"] or change.action is not Action(entry["action"]):
        raise BadChange(f"change {entry.get('identity')!r}: kind does not match its data")
    if [i.to_json() for i in change.invocations()] != entry["invocations"]:
        raise BadChange(
            f"change {change.identity!r}: its invocations do not match its data "
            "(the file was edited)"
        )
    return change


@cache
def plan_schema() -> dict[str, Any]:
    text = (resources.files("casdesired") / "schemas" / "plan.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def plan_validator() -> Draft202012Validator:
    return Draft202012Validator(plan_schema())
