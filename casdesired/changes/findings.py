"""Findings (problems found while diffing) and unmanaged objects, as plain data.

A finding with severity ``error`` *blocks*: the changes of the site it names are withheld from
the plan (or every change, when it names no site). A warning only informs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from casdesired.diagnostics import Diagnostic, Location, Severity


@dataclass(frozen=True)
class Finding:
    """A problem in the live organisation, or between it and the desired state."""

    severity: Severity
    rule: str
    message: str
    site: str | None = None
    """The site whose changes it blocks (errors) or concerns; None: the whole organisation."""
    location: Location | None = None
    """Where in the YAML the object involved is declared, when known."""

    @property
    def blocking(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity.value}: {self.message}"

    @classmethod
    def from_diagnostic(cls, diagnostic: Diagnostic, site: str | None) -> Finding:
        return cls(
            severity=diagnostic.severity,
            rule=diagnostic.rule or "binding",
            message=diagnostic.message,
            site=site,
            location=diagnostic.location,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "rule": self.rule,
            "message": self.message,
            "site": self.site,
            "blocking": self.blocking,
            "location": str(self.location) if self.location else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        location = data.get("location")
        return cls(
            severity=Severity(data["severity"]),
            rule=str(data["rule"]),
            message=str(data["message"]),
            site=data.get("site"),
            location=_parse_location(location) if location else None,
        )


def _parse_location(text: str) -> Location:
    parts = str(text).rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return Location(parts[0], int(parts[1]), int(parts[2]))
    return Location(str(text))


@dataclass(frozen=True)
class Unmanaged:
    """A live object the YAML does not mention: listed, never touched."""

    kind: str
    """``array``, ``server``, ``database`` or ``nlb_node``."""
    identity: str
    site: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "identity": self.identity,
            "site": self.site,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Unmanaged:
        return cls(
            kind=str(data["kind"]),
            identity=str(data["identity"]),
            site=data.get("site"),
            detail=str(data.get("detail") or ""),
        )
