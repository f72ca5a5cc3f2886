"""What ``casdesired doctor`` reports: checks, each PASS, WARN, FAIL or SKIPPED, with evidence.

A :class:`Check` is plain data, as a plan is: the renderers (:mod:`casdesired.doctor.render`)
only show it. Its ``evidence`` is what was seen (values read on the host, answers of the
service), its ``remedy`` what to change when it is a WARN or a FAIL (a setting, a command to
run, where), and ``doc`` the section of docs/first-contact.md that explains it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

DOC = "docs/first-contact.md"


class Status(str, Enum):
    PASS = "PASS"  # noqa: S105 - a check status, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    SKIPPED = "SKIPPED"


FAMILIES: tuple[tuple[str, str], ...] = (
    ("connection", "Connection"),
    ("host", "Host"),
    ("winrm", "WinRM quotas"),
    ("exchange", "Exchange"),
    ("nlb", "Windows NLB"),
    ("lock", "The organisation lock"),
    ("dns", "DNS"),
    ("ports", "Static RPC ports"),
    ("clock", "Clock"),
)
"""The check families, in the order they are shown, with their headings."""


@dataclass(frozen=True)
class Check:
    """One check and what it found."""

    id: str
    """Stable, ``family.name`` (output formats and tests key on it), e.g. ``winrm.memory``."""
    title: str
    """What it checks, in a few words."""
    status: Status
    evidence: tuple[str, ...] = ()
    """What was seen, one fact per entry; for SKIPPED, why it was not checked."""
    remedy: str | None = None
    """For WARN and FAIL: what to change, where (settings, commands to run)."""
    subject: str | None = None
    """What it is about when a check repeats: a site, a resolver."""
    doc: str | None = None
    """Where it is explained: ``docs/first-contact.md#anchor``."""

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "family": self.family,
            "title": self.title,
            "subject": self.subject,
            "status": self.status.value,
            "evidence": list(self.evidence),
            "remedy": self.remedy,
            "doc": self.doc,
        }


def check(
    id: str,
    title: str,
    status: Status,
    evidence: Iterable[str] = (),
    remedy: str | None = None,
    *,
    subject: str | None = None,
    anchor: str | None = None,
) -> Check:
    """A :class:`Check`; ``anchor`` names its section of docs/first-contact.md (default: the
    check's own, its id with ``-`` for ``.``). A PASS or SKIPPED carries no remedy."""
    keep_remedy = status in (Status.WARN, Status.FAIL)
    return Check(
        id=id,
        title=title,
        status=status,
        evidence=tuple(e for e in evidence if e),
        remedy=remedy if keep_remedy else None,
        subject=subject,
        doc=f"{DOC}#{anchor or id.replace('.', '-')}",
    )


def skipped(id: str, title: str, why: str, *, subject: str | None = None) -> Check:
    """A check that was not made, and why."""
    return check(id, title, Status.SKIPPED, (why,), subject=subject)


@dataclass(frozen=True)
class Report:
    """Everything one ``casdesired doctor`` run found."""

    organisation: str
    endpoint: str
    checks: tuple[Check, ...]
    executions: int
    """Command executions on the endpoint (the agent runs); doctor makes one."""

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status is status)

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    def families(self) -> list[tuple[str, list[Check]]]:
        """(heading, its checks) in the order of :data:`FAMILIES`, empty families left out."""
        grouped = []
        for family, heading in FAMILIES:
            members = [c for c in self.checks if c.family == family]
            if members:
                grouped.append((heading, members))
        return grouped

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "casdesired-doctor",
            "version": 1,
            "organisation": self.organisation,
            "endpoint": self.endpoint,
            "executions": self.executions,
            "summary": {s.value.lower(): self.count(s) for s in Status},
            "checks": [c.to_json() for c in self.checks],
        }
