"""What every change is: its action, its identity, before and after, its invocations, JSON.

Each change knows its identity, the site it belongs to, its before and after values, a one-line
description for people, and the agent invocations that carry it out (``invocations()``). Values
always travel as invocation *parameters* — data the agent splats — never as script text, so a
database called ``x"; Remove-Item C:\\ -Recurse; "`` is just a name.

Changes serialise to JSON (``to_json``) and back (``change_from_json``) so a saved plan can be
applied exactly as reviewed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from enum import Enum
from typing import Any, ClassVar

from casdesired.agent.protocol import Invocation, JsonValue
from casdesired.errors import CasdesiredError


class Action(str, Enum):
    """What a change does to its object; also its symbol in text output."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-"}[self.value]


class BadChange(CasdesiredError):
    """A serialised change is malformed (a damaged or hand-edited plan file)."""


@dataclass(frozen=True)
class Change:
    """Base class: what every change has. Subclasses set ``kind``, ``action`` and ``order``."""

    kind: ClassVar[str] = ""
    action: ClassVar[Action] = Action.UPDATE
    order: ClassVar[int] = 0
    """Position of this change's group in a plan (see casdesired.changes.diff.order_changes)."""
    needs_exchange: ClassVar[bool] = True
    """Whether the agent must load the Exchange cmdlets to run it."""

    site: str

    @property
    def identity(self) -> str:
        raise NotImplementedError

    def before(self) -> dict[str, JsonValue] | None:
        """The live values this change replaces (None for a create)."""
        raise NotImplementedError

    def after(self) -> dict[str, JsonValue] | None:
        """The values it leaves behind (None for a delete)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for people, e.g. ``create CAS array outlook-branch.contoso.local``."""
        raise NotImplementedError

    def invocations(self) -> list[Invocation]:
        """What the agent runs, in order."""
        raise NotImplementedError

    def steps(self) -> list[tuple[str, float | None]]:
        """Each invocation's step for people (apply's progress), in :meth:`invocations`'s
        order: what it does, and the longest it may wait in seconds (None: no wait). By
        default each step is the change itself, and an ``until`` waits up to its timeout."""
        return [
            (self.describe(), i.until.timeout_seconds if i.until is not None else None)
            for i in self.invocations()
        ]

    @property
    def mailboxes(self) -> int:
        """Mailboxes whose users this change affects directly (0 when none or unknown)."""
        return 0

    @property
    def subjects(self) -> frozenset[str]:
        """Keys of the objects this change acts on: an object-scoped finding about any of
        them withholds it."""
        return frozenset({self.identity.strip().rstrip(".").lower()})

    @property
    def modules(self) -> tuple[str, ...]:
        """PowerShell modules the agent must import first."""
        return ()

    def _id(self, step: str = "") -> str:
        base = f"{self.kind}:{self.identity}"
        return f"{base}:{step}" if step else base

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        """The inverse of :meth:`to_json`; a malformed entry raises :class:`BadChange`."""
        kind = cls.kind
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                if f.default is not MISSING:
                    continue
                raise BadChange(f"change {kind} lacks {f.name!r}")
            value = data[f.name]
            if "tuple[str, ...]" in str(f.type) and value is not None:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise BadChange(f"change {kind}: {f.name!r} must be a list of strings")
                value = tuple(value)
            values[f.name] = value
        try:
            change = cls(**values)
        except TypeError as exc:
            raise BadChange(f"change {kind} is malformed: {exc}") from None
        _check_types(change)
        return change


def change_from_json(data: Mapping[str, Any], types: Mapping[str, type[Change]]) -> Change:
    """Rebuild a change of one of ``types`` (by kind) from its ``to_json()``; a malformed entry
    raises :class:`BadChange`."""
    kind = data.get("kind")
    cls = types.get(str(kind))
    if cls is None:
        raise BadChange(f"unknown change kind {kind!r}")
    return cls.from_json(data)


def _check_types(change: Change) -> None:
    """Field types of a rebuilt change, so a hand-edited value cannot reach a cmdlet as junk."""
    for f in fields(change):
        value = getattr(change, f.name)
        expected = str(f.type)
        ok = True
        if expected == "str":
            ok = isinstance(value, str)
        elif expected == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected == "str | None":
            ok = value is None or isinstance(value, str)
        elif expected == "bool":
            ok = isinstance(value, bool)
        if not ok:
            raise BadChange(f"change {change.kind}: {f.name!r} has the wrong type")
