"""A DNS finding as a plan carries it: shown apart from the changes, never withholding them.

Unlike a blocking :class:`~casdesired.changes.findings.Finding` (which withholds its site's
changes from the plan), a DNS error only *blocks apply* — and only when the plan rebinds
databases to the array whose name is wrong and no record change in the plan fixes it; then
``casdesired apply`` refuses unless ``--force``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from casdesired.changes.findings import _parse_location
from casdesired.diagnostics import Location, Severity


@dataclass(frozen=True)
class DnsNote:
    """One DNS finding (``casdesired.dns.DnsFinding``) in a plan."""

    severity: Severity
    rule: str
    name: str
    """The DNS name it is about (an array's or a CAS server's FQDN)."""
    message: str
    site: str | None = None
    location: Location | None = None
    blocks_apply: bool = False
    """Databases would be rebound to this array while its name is wrong: apply needs --force."""
    fixed_by_plan: bool = False
    """A DNS record change in this plan makes the name right (applied before the bindings)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "rule": self.rule,
            "name": self.name,
            "message": self.message,
            "site": self.site,
            "location": str(self.location) if self.location else None,
            "blocks_apply": self.blocks_apply,
            "fixed_by_plan": self.fixed_by_plan,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DnsNote:
        location = data.get("location")
        return cls(
            severity=Severity(data["severity"]),
            rule=str(data["rule"]),
            name=str(data["name"]),
            message=str(data["message"]),
            site=data.get("site"),
            location=_parse_location(location) if location else None,
            blocks_apply=bool(data.get("blocks_apply", False)),
            fixed_by_plan=bool(data.get("fixed_by_plan", False)),
        )

    @property
    def label(self) -> str:
        """``BLOCKS APPLY`` / ``error`` / ``warning`` (plus what fixes it) for renderers."""
        if self.blocks_apply:
            return "BLOCKS APPLY (unless --force)"
        if self.fixed_by_plan:
            return f"{self.severity.value}, fixed by this plan"
        return self.severity.value
