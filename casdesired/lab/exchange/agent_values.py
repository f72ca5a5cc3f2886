"""How the lab's agent turns cmdlet output into the response's values, as agent.ps1 does:
selected properties (case-insensitive, absent ones left out), ``group_by`` counts, and values
as PowerShell renders them in a string."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from casdesired.agent.protocol import JsonValue
from casdesired.lab.exchange.binding import Obj


def select(obj: Obj, names: Iterable[str]) -> dict[str, JsonValue]:
    """``$Object.PSObject.Properties[$name]``: case-insensitive; absent properties left out."""
    row: dict[str, JsonValue] = {}
    for name in names:
        found = property(obj, name)
        if found is not None:
            row[name] = found[1]
    return row


def property(obj: Obj, name: str) -> tuple[str, JsonValue] | None:
    if name in obj:
        return name, obj[name]
    lowered = name.lower()
    return next(((k, v) for k, v in obj.items() if k.lower() == lowered), None)


def counted(objects: Iterable[Obj], name: str) -> dict[str, int]:
    """Group-Object -NoElement: how many objects per value of one property."""
    count_by = getattr(objects, "count_by", None)
    fast = count_by(name) if callable(count_by) else None
    if fast is not None:
        return dict(fast)
    groups: dict[str, int] = {}
    for obj in objects:
        key = group_key(obj, name)
        groups[key] = groups.get(key, 0) + 1
    return groups


def group_key(obj: Obj, name: str) -> str:
    """Get-GroupKey: the property as text, '' when absent or null."""
    found = property(obj, name)
    if found is None or found[1] is None:
        return ""
    return ps_text(found[1])


def ps_text(value: Any) -> str:
    """``[string]`` of a converted value, as PowerShell renders it."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return ps_number(value)
    if isinstance(value, list):
        return " ".join(ps_text(v) for v in value)
    return str(value)


def ps_number(value: float) -> str:
    """A [double] in a PowerShell string: 300, not 300.0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
