"""A problem at a location: what validate, the diff and the DNS checks all report.

One type, :class:`Finding`, whoever found it (:class:`Source`): the rules over the YAML
(``casdesired validate``), the diff of the desired state against the live organisation, or the
DNS checks. The location travels with the data (octoDNS's ``ValidationError(fqdn, reasons,
context)``): where the YAML declares the object, the site it concerns, and for DNS the name it
is about. What a finding *does* to a plan is decided by the plan, from these facts: an error
from the diff withholds its site's changes, or only its object's (:attr:`Finding.scope`,
:meth:`Finding.withholds`); a DNS error blocks apply only when the plan points databases at that
name (``casdesired.plan.thresholds``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from casdesired.visible import clean


@dataclass(frozen=True, order=True)
class Location:
    """A place in a file, 1-based, as editors and compilers print it."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.column}"

    @classmethod
    def parse(cls, text: str) -> Location:
        """The inverse of ``str()``: ``path:line:column``, or a bare path."""
        parts = str(text).rsplit(":", 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            return cls(parts[0], int(parts[1]), int(parts[2]))
        return cls(str(text))


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


class Source(str, Enum):
    """Who found it."""

    DESIRED = "desired"
    """A rule over the YAML alone (``casdesired validate``)."""
    EXCHANGE = "exchange"
    """The diff of the desired state against the live organisation."""
    DNS = "dns"
    """The organisation's DNS resolvers (array names and their VIPs)."""


class Scope(str, Enum):
    """What an error from the diff withholds."""

    SITE = "site"
    """Every change of its site (of the whole organisation, when it names no site)."""
    OBJECT = "object"
    """Only the changes of the object it names (:attr:`Finding.name`): the rest of the site
    plans and applies (an Exchange 2013 server in a 2010 site, a database on one)."""


@dataclass(frozen=True)
class Finding:
    """One problem, where it was found, and what it concerns."""

    severity: Severity
    rule: str
    """A stable id (output formats and tests key on it), e.g. ``server-in-other-site``."""
    message: str
    site: str | None = None
    """The site it concerns; for an error from the diff, the site whose changes it withholds
    (None: the whole organisation)."""
    location: Location | None = None
    """Where in the YAML the object involved is declared, when known."""
    name: str | None = None
    """The object it is about: a DNS name (DNS findings), or the server, database or array an
    object-scoped finding withholds the changes of."""
    source: Source = Source.EXCHANGE
    scope: Scope = Scope.SITE

    @property
    def blocking(self) -> bool:
        """An error that withholds changes (its site's, or its object's). DNS errors never
        withhold: they block apply, and only when the plan needs the name (the plan decides)."""
        return self.severity is Severity.ERROR and self.source is not Source.DNS

    @property
    def object_scoped(self) -> bool:
        return self.scope is Scope.OBJECT and self.name is not None

    @classmethod
    def at(cls, location: Location, severity: Severity, message: str, rule: str = "") -> Finding:
        """A problem in the desired state itself, at ``location`` (what validate reports)."""
        return cls(severity, rule, message, location=location, source=Source.DESIRED)

    @property
    def where(self) -> Location:
        """Its location; a finding of the desired state always has one."""
        return self.location if self.location is not None else Location("")

    def to_dict(self) -> dict[str, object]:
        """As ``casdesired validate --format json`` reports it."""
        where = self.where
        return {
            "path": where.path,
            "line": where.line,
            "column": where.column,
            "severity": self.severity.value,
            "rule": self.rule,
            "message": self.message,
        }

    def __str__(self) -> str:
        """``file:line:column: severity: message``, as a person reads it: control characters
        a name brought into the message or the path are shown escaped (:mod:`casdesired.visible`),
        so no value can colour the terminal or print a line of its own."""
        where = f"{clean(str(self.location))}: " if self.location else ""
        return f"{where}{self.severity.value}: {clean(self.message)}"

    def to_json(self) -> dict[str, Any]:
        """As a plan's ``findings`` entry (``schemas/plan.schema.json``)."""
        data = {
            "severity": self.severity.value,
            "rule": self.rule,
            "message": self.message,
            "site": self.site,
            "blocking": self.blocking,
            "location": str(self.location) if self.location else None,
        }
        if self.object_scoped:
            data["object"] = self.name
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Source = Source.EXCHANGE) -> Finding:
        """From a plan's ``findings`` or ``dns`` entry (what the plan derived is dropped)."""
        location = data.get("location")
        name = data.get("name", data.get("object"))
        return cls(
            severity=Severity(data["severity"]),
            rule=str(data["rule"]),
            message=str(data["message"]),
            site=data.get("site"),
            location=Location.parse(location) if location else None,
            name=str(name) if name is not None else None,
            source=source,
            scope=Scope.OBJECT if "object" in data else Scope.SITE,
        )
