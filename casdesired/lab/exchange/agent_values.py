"""How the agent turns what a cmdlet returned into JSON values, and a date parameter's text into
a date (mirror of agent.ps1's Select-AgentProperties, ConvertTo-AgentValue, Get-GroupKey and
ConvertFrom-AgentDate).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from casdesired.agent.protocol import JsonValue
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import LabValue, Obj, SubObject

NOT_A_UTC_TIME = "casdesired: '{text}' is not a UTC time (yyyy-MM-ddTHH:mm:ssZ) for -{name}."
"""agent.ps1's ConvertFrom-AgentDate text for a date parameter in any other form."""
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def select(
    obj: Obj, names: Iterable[str], expand: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, JsonValue]:
    """``$Object.PSObject.Properties[$name]``: case-insensitive; absent properties left out. An
    element held in a property shows as its ``ToString()`` unless ``expand`` names the property
    (then each element as an object of the sub-properties named)."""
    row: dict[str, JsonValue] = {}
    subs = {k.lower(): v for k, v in (expand or {}).items()}
    for name in names:
        found = _property(obj, name)
        if found is None:
            continue
        value = found[1]
        sub_names = subs.get(name.lower())
        if sub_names is not None:
            items = value if isinstance(value, list) else [value]
            row[name] = [
                select(item, sub_names) if isinstance(item, dict) else {}
                for item in items
                if item is not None
            ]
        elif isinstance(value, list):
            row[name] = [_shown(item) for item in value]
        else:
            row[name] = _shown(value)
    return row


def _shown(value: JsonValue) -> JsonValue:
    """ConvertTo-AgentScalar of an object held in a property: its ToString()."""
    return value.text if isinstance(value, SubObject) else value


def as_date(name: str, value: LabValue) -> datetime:
    """ConvertFrom-AgentDate: a date parameter's ``yyyy-MM-ddTHH:mm:ssZ`` as a UTC datetime,
    read the one way the invariant culture reads it; any other text fails the invocation."""
    text = _ps_text(value) if value is not None else ""
    if isinstance(value, str) and _UTC_TIME.fullmatch(value):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            pass  # 2024-02-30: no such day
    message = NOT_A_UTC_TIME.format(text=text, name=name)
    raise err.ExchangeError(message, target=message, category="RuntimeException")


def _property(obj: Obj, name: str) -> tuple[str, JsonValue] | None:
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
    found = _property(obj, name)
    if found is None or found[1] is None:
        return ""
    return _ps_text(found[1])


def _ps_text(value: Any) -> str:
    """``[string]`` of a converted value, as PowerShell renders it."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return ps_number(value)
    if isinstance(value, list):
        return " ".join(_ps_text(v) for v in value)
    return str(value)


def ps_number(value: float) -> str:
    """A [double] in a PowerShell string: 300, not 300.0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
