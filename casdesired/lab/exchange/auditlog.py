"""Exchange 2010 SP1's administrator audit log, as the lab keeps it (field §4).

:class:`AuditLog` is part of the organisation's state (saved in the state file under
``admin_audit_log``): its configuration, what ``Get-/Set-AdminAuditLogConfig`` read and change
(a fresh SP1 organisation: enabled, every cmdlet and parameter, nothing excluded, 90 days), and
its entries, one for each logged cmdlet that ran, successfully or not. The rules, as the field
notes give them:

* Get- and Search- cmdlets are never logged; an Exchange cmdlet is logged only when logging is
  enabled, the cmdlet is on the cmdlet list (wildcards, minus the excluded ones) and one of the
  parameters it was given is on the parameter list;
* a cmdlet that fails before the audit agent runs (its parameters do not bind, the command is
  unknown, its AD bind is a second hop) leaves no entry; one that fails later leaves an entry
  with ``Succeeded`` False and its error;
* an entry holds ``Caller``, ``CmdletName``, ``CmdletParameters`` (each with Name and Value),
  ``ObjectModified``, ``RunDate`` (UTC), ``Succeeded`` and ``Error``. Exchange 2010 keeps no old
  values (``LogLevel Verbose`` came with 2013): ``ModifiedProperties`` stays empty here, the
  stricter reading of an [OPEN] point;
* entries older than the age limit are gone (the log's mailbox ages them out);
* a configuration change applies at once (Exchange: up to an hour for shells already open);
  whether a run is logged is decided by the configuration it started under;
* a ``-WhatIf`` run changes nothing and is not logged ([inferred]).

[OPEN] choices, each the stricter reading: ``Caller`` is written as the account's canonical
name (``contoso.local/Users/alice``), the form 2010's examples show, not the ``CONTOSO\\alice``
the caller logged on with; ``ObjectModified`` is the object's name; results come newest first.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import Obj, SubObject

CONFIG_NAME = "Admin Audit Log Settings"
"""The configuration object's name (what ObjectModified shows for Set-AdminAuditLogConfig)."""
DEFAULT_AGE_LIMIT = "90.00:00:00"
_AGE_LIMIT = re.compile(r"^(?:(\d{1,5})\.)?(\d{1,2}):(\d{2}):(\d{2})$")
NOT_LOGGED_VERBS = ("get-", "search-")


def age_limit_seconds(text: str) -> float:
    """An EnhancedTimeSpan as Exchange writes it (``90.00:00:00``, ``12:00:00``) in seconds;
    ValueError for anything else."""
    match = _AGE_LIMIT.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a time span (d.hh:mm:ss)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r} is not a time span (d.hh:mm:ss)")
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def utc_o(moment: datetime) -> str:
    """``[DateTime].ToString('o')`` of a UTC time: seven fractional digits and Z (what the agent
    sends for a date property)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_utc_o(text: str) -> datetime:
    return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


@dataclass
class AuditConfig:
    """What Get-AdminAuditLogConfig shows and Set-AdminAuditLogConfig changes."""

    enabled: bool = True
    cmdlets: list[str] = field(default_factory=lambda: ["*"])
    parameters: list[str] = field(default_factory=lambda: ["*"])
    excluded_cmdlets: list[str] = field(default_factory=list)
    age_limit: str = DEFAULT_AGE_LIMIT

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "cmdlets": list(self.cmdlets),
            "parameters": list(self.parameters),
            "excluded_cmdlets": list(self.excluded_cmdlets),
            "age_limit": self.age_limit,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditConfig:
        config = cls()
        unknown = set(data) - set(config.to_json())
        if unknown:
            raise ValueError(f"admin_audit_log.config: unknown keys {sorted(unknown)}")
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError("admin_audit_log.config.enabled must be true or false")
        lists = {}
        for name in ("cmdlets", "parameters", "excluded_cmdlets"):
            value = data.get(name, getattr(config, name))
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"admin_audit_log.config.{name} must be a list of strings")
            lists[name] = list(value)
        age_limit = str(data.get("age_limit", DEFAULT_AGE_LIMIT))
        age_limit_seconds(age_limit)
        return cls(enabled=enabled, age_limit=age_limit, **lists)

    def to_object(self) -> Obj:
        """Get-AdminAuditLogConfig's object."""
        return {
            "Name": CONFIG_NAME,
            "Identity": CONFIG_NAME,
            "AdminAuditLogEnabled": self.enabled,
            "AdminAuditLogCmdlets": list(self.cmdlets),
            "AdminAuditLogParameters": list(self.parameters),
            "AdminAuditLogExcludedCmdlets": list(self.excluded_cmdlets),
            "AdminAuditLogAgeLimit": self.age_limit,
            "IsValid": True,
        }


@dataclass
class AuditEntry:
    """One logged cmdlet run."""

    caller: str
    cmdlet: str
    parameters: list[tuple[str, str]]
    """(Name, Value as text), in the order given."""
    object_modified: str
    run_date: datetime
    succeeded: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "caller": self.caller,
            "cmdlet": self.cmdlet,
            "parameters": [[name, value] for name, value in self.parameters],
            "object_modified": self.object_modified,
            "run_date": utc_o(self.run_date),
            "succeeded": self.succeeded,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        return cls(
            caller=str(data["caller"]),
            cmdlet=str(data["cmdlet"]),
            parameters=[(str(n), str(v)) for n, v in data.get("parameters") or ()],
            object_modified=str(data.get("object_modified") or ""),
            run_date=parse_utc_o(str(data["run_date"])),
            succeeded=bool(data["succeeded"]),
            error=None if data.get("error") is None else str(data["error"]),
        )

    def to_object(self) -> Obj:
        """What Search-AdminAuditLog returns for it."""
        return {
            "Caller": self.caller,
            "CmdletName": self.cmdlet,
            # Each prints as its name (2010 shows "{Identity, RpcClientAccessServer}"); the
            # value is a level down.
            "CmdletParameters": [
                SubObject(name, Name=name, Value=value) for name, value in self.parameters
            ],
            "ModifiedProperties": [],
            "ObjectModified": self.object_modified,
            "RunDate": utc_o(self.run_date),
            "Succeeded": self.succeeded,
            "Error": self.error,
            "IsValid": True,
        }


def record_run(
    log: AuditLog,
    cmdlet: str,
    args: Mapping[str, Any],
    *,
    caller: str,
    run_date: datetime,
    modified: str,
    error: str | None,
) -> None:
    """Write the entry of one run of ``cmdlet`` with the (bound) parameters ``args`` (the caller
    asked :meth:`AuditLog.logs` first)."""
    log.record(
        AuditEntry(
            caller=caller,
            cmdlet=cmdlet,
            parameters=[(name, parameter_text(value)) for name, value in args.items()],
            object_modified=modified,
            run_date=run_date,
            succeeded=error is None,
            error=error,
        )
    )


def _listed(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), p.strip().lower()) for p in patterns)


def caller_name(user: str, domain: str) -> str:
    """The account ``user`` (``CONTOSO\\alice``) as the log writes it: its canonical name,
    ``contoso.local/Users/alice``. A NetBIOS domain other than the organisation's is taken
    for a child domain of it. A canonical name or UPN stays as given."""
    netbios, sep, name = user.partition("\\")
    if not sep or "/" in user:
        return user
    root = domain.strip().rstrip(".")
    own = root.split(".", 1)[0].lower()
    where = root if netbios.lower() == own else f"{netbios.lower()}.{root}"
    return f"{where}/Users/{name}"


@dataclass
class AuditLog:
    """The organisation's admin audit log: configuration and entries (oldest first)."""

    config: AuditConfig = field(default_factory=AuditConfig)
    entries: list[AuditEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config.to_json(),
            "entries": [e.to_json() for e in self.entries],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AuditLog:
        data = data or {}
        entries = [AuditEntry.from_json(e) for e in data.get("entries") or ()]
        entries.sort(key=lambda e: e.run_date)
        return cls(config=AuditConfig.from_json(data.get("config") or {}), entries=entries)

    def logs(self, cmdlet: str, given: Mapping[str, Any]) -> bool:
        """Whether a run of ``cmdlet`` with the (bound) parameters ``given`` is logged now. A
        -WhatIf run changes nothing and is not logged ([inferred]: the log records changes)."""
        config = self.config
        if not config.enabled or cmdlet.lower().startswith(NOT_LOGGED_VERBS):
            return False
        if given.get("WhatIf") is True:
            return False
        if not _listed(cmdlet, config.cmdlets) or _listed(cmdlet, config.excluded_cmdlets):
            return False
        return any(_listed(name, config.parameters) for name in given)

    def record(self, entry: AuditEntry) -> None:
        """Keep ``entry`` in RunDate order (a backdated run goes where its time puts it)."""
        index = bisect.bisect_right([e.run_date for e in self.entries], entry.run_date)
        self.entries.insert(index, entry)

    def age_out(self, now: datetime) -> bool:
        """Drop the entries older than the age limit; True if any went."""
        cutoff = now - timedelta(seconds=age_limit_seconds(self.config.age_limit))
        keep = 0
        while keep < len(self.entries) and self.entries[keep].run_date < cutoff:
            keep += 1
        if keep:
            del self.entries[:keep]
        return keep > 0

    def search(self, query: SearchQuery) -> list[Obj]:
        """Search-AdminAuditLog: the matching entries, newest first, paged."""
        found = [e for e in reversed(self.entries) if query.matches(e)]
        page = found[query.start_index :]
        return [e.to_object() for e in page[: query.result_size]]


@dataclass
class SearchQuery:
    """Search-AdminAuditLog's filters (2010 SP1): each given one must match."""

    cmdlets: list[str] | None = None
    object_ids: list[str] | None = None
    user_ids: list[str] | None = None
    parameters: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    is_success: bool | None = None
    start_index: int = 0
    result_size: int = 1000
    """1,000 when not given, as Exchange."""

    def matches(self, entry: AuditEntry) -> bool:
        if self.cmdlets is not None and entry.cmdlet.lower() not in {
            c.lower() for c in self.cmdlets
        }:
            return False
        if self.object_ids is not None and entry.object_modified.lower() not in {
            o.lower() for o in self.object_ids
        }:
            return False
        if self.user_ids is not None and not any(_same_user(u, entry.caller)
                                                 for u in self.user_ids):
            return False
        if self.parameters is not None and not {n.lower() for n, _ in entry.parameters} & {
            p.lower() for p in self.parameters
        }:
            return False
        if self.start is not None and entry.run_date < self.start:
            return False
        if self.end is not None and entry.run_date > self.end:
            return False
        return self.is_success is None or entry.succeeded == self.is_success


def _same_user(given: str, caller: str) -> bool:
    """-UserIds: the account by its whole name or its last part (alias)."""
    last = re.split(r"[\\/]", caller)[-1]
    return given.lower() in (caller.lower(), last.lower())


# The regional formats the lab's Exchange server reads a date TEXT in (Behaviour.server_culture).
REGIONAL_FORMATS: dict[str, tuple[str, ...]] = {
    "en-US": ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y"),
    "en-GB": ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y"),
    "de-DE": ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y"),
}


def parse_regional(name: str, text: str, culture: str) -> datetime:
    """A date parameter given as text, read as the server's regional format reads it (its time
    zone taken as UTC). Anything else is refused as its binding would be."""
    for form in REGIONAL_FORMATS[culture]:
        try:
            return datetime.strptime(text.strip(), form).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise err.ParameterBindingError(
        err.CANNOT_CONVERT.format(
            name=name,
            value=text,
            type="Microsoft.Exchange.ExchangeSystem.ExDateTime",
            error="String was not recognized as a valid DateTime.",
        ),
        target=text,
    )


def parameter_text(value: Any) -> str:
    """A parameter value as an audit entry's CmdletParameters show it."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list):
        return ", ".join(parameter_text(v) for v in value)
    return "" if value is None else str(value)
