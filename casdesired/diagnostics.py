"""Validate-time diagnostics of the desired state (being folded into :mod:`casdesired.findings`).

``Location`` and ``Severity`` live in :mod:`casdesired.findings`; they are imported here for the
modules of ``casdesired.desired`` that still build :class:`Diagnostic`.
"""

from __future__ import annotations

from dataclasses import dataclass

from casdesired.findings import Location, Severity

__all__ = ["Diagnostic", "Location", "Severity"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in the desired state (or, for findings, in the live organisation)."""

    location: Location
    severity: Severity
    message: str
    rule: str = ""

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.value}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.location.path,
            "line": self.location.line,
            "column": self.location.column,
            "severity": self.severity.value,
            "rule": self.rule,
            "message": self.message,
        }
