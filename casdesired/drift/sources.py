"""What ``casdesired drift`` reads beside the live organisation, in the SAME command execution.

Three invocations follow the read (:func:`audit_invocations`), each with ``on_error``
"continue" so that a missing permission costs an attribution, never the read:

* ``Get-AdminAuditLogConfig``: whether logging is on, what it logs, its age limit;
* ``Search-AdminAuditLog -Cmdlets <the five casdesired manages> -StartDate <since> -IsSuccess
  $true -ResultSize N``: the window's changes to what casdesired manages. The drifted objects are
  only known after the diff, so the search cannot name them (``-ObjectIds``) without a second
  round trip: it asks for every managed cmdlet of the window and entries are matched to drifted
  objects here, by ObjectModified. It returns at most N entries, the newest first; when it
  returns N, older entries of the window were not read (:attr:`AuditRead.truncated`). Paging
  with ``-StartIndex`` would cost one more command execution per page: casdesired does not page,
  it says so (docs/drift.md);
* ``Get-CasdesiredPlanRecord -Since``: the plans casdesired applied on the endpoint, with the
  lock each ran under and when it ended (its own changes, :mod:`casdesired.drift.own`).

Dates travel as dates (the invocation's ``dates``), never as text the server's regional format
would read. Exchange 2010's entries hold no old values (``LogLevel Verbose`` came with 2013).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from casdesired import model
from casdesired.agent import protocol

MANAGED_CMDLETS = (
    "Set-MailboxDatabase",
    "New-ClientAccessArray",
    "Set-ClientAccessArray",
    "Remove-ClientAccessArray",
    "Set-ClientAccessServer",
)
"""The Exchange cmdlets casdesired's changes use: the only ones whose entries can explain drift
of what it manages."""
DEFAULT_RESULT_SIZE = 5000
"""Entries the search returns at most (Exchange's own default is 1,000)."""
MAX_RESULT_SIZE = 50_000
"""The agent holds every entry until it answers: 50,000 is about 25 MB more in its shell (whose
quota is 150 MB on Windows Server 2008 R2; docs/lab.md, the memory model)."""
DEFAULT_WINDOW = timedelta(days=90)
"""The window without a successful apply to start from: the log's default age limit."""
RECORDS_LOOKBACK = timedelta(days=1)
"""Plan records are asked for from this long before the window: an apply that started before
it may have written inside it."""

CONFIG = "drift:audit-config"
SEARCH = "drift:audit-search"
RECORDS = "drift:plan-records"
ENTRY_PROPERTIES = (
    "Caller", "CmdletName", "CmdletParameters", "ObjectModified", "RunDate", "Succeeded", "Error"
)
CONFIG_PROPERTIES = (
    "AdminAuditLogEnabled", "AdminAuditLogCmdlets", "AdminAuditLogParameters",
    "AdminAuditLogExcludedCmdlets", "AdminAuditLogAgeLimit",
)
RECORD_PROPERTIES = ("PlanId", "Owner", "LockId", "Applied", "Ended")

_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?$"
)
_SPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$")


def audit_invocations(since: datetime, result_size: int) -> tuple[protocol.Invocation, ...]:
    """The invocations that follow the read in drift's one request."""
    return (
        protocol.Invocation(CONFIG, "Get-AdminAuditLogConfig", properties=CONFIG_PROPERTIES,
                            on_error="continue"),
        protocol.Invocation(
            SEARCH,
            "Search-AdminAuditLog",
            {
                "Cmdlets": list(MANAGED_CMDLETS),
                "StartDate": protocol.utc_text(since),
                "IsSuccess": True,
                "ResultSize": result_size,
            },
            ENTRY_PROPERTIES,
            dates=("StartDate",),
            expand={"CmdletParameters": ("Name", "Value")},
            on_error="continue",
        ),
        protocol.Invocation(
            RECORDS,
            "Get-CasdesiredPlanRecord",
            # The text the agent's own records use (Get-UtcText), which it reads back exactly.
            {"Since": o_text(since - RECORDS_LOOKBACK)},
            RECORD_PROPERTIES,
            on_error="continue",
        ),
    )


def o_text(moment: datetime) -> str:
    """``[DateTime]::ToString('o')`` of a UTC instant: ``2024-05-01T08:00:00.0000000Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_time(text: str) -> datetime | None:
    """A date the agent sent (``ToString('o')``: up to 7 fractional digits, ``Z``, an offset, or
    none, which the log's UTC RunDate means); None when it is no such text."""
    match = _DATE.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          micro)
    except ValueError:
        return None
    if zone in (None, "Z"):
        return moment.replace(tzinfo=timezone.utc)
    sign = 1 if zone[0] == "+" else -1
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * sign
    return (moment - offset).replace(tzinfo=timezone.utc)


def parse_span(text: str) -> timedelta | None:
    """An EnhancedTimeSpan as Exchange prints it (``90.00:00:00``); None for anything else."""
    match = _SPAN.match(text.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@dataclass(frozen=True)
class AuditEntry:
    """One admin audit log entry: who ran which cmdlet, with what, on what, when."""

    caller: str
    cmdlet: str
    parameters: tuple[tuple[str, str], ...]
    """(Name, Value as text), in the order the cmdlet was given them."""
    object_modified: str
    run_date: datetime | None
    """UTC; None when the agent sent a text that is no date (the entry is then not used)."""
    succeeded: bool = True
    error: str | None = None

    def parameter(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for n, v in self.parameters if n.lower() == wanted), None)

    @property
    def changed_nothing(self) -> bool:
        """A failed or ``-WhatIf`` run: it cannot explain what Exchange shows."""
        return not self.succeeded or (self.parameter("WhatIf") or "").lower() == "true"

    def touches(self, identities: frozenset[str]) -> bool:
        """Whether it is about one of ``identities`` (keys): its ObjectModified, or the Identity
        it was given, equals one of them exactly (never a part or a prefix of one)."""
        named = (self.object_modified, self.parameter("Identity") or "")
        return any(value and model.key(value) in identities for value in named)

    def to_json(self) -> dict[str, Any]:
        return {
            "caller": self.caller,
            "cmdlet": self.cmdlet,
            "parameters": [{"name": n, "value": v} for n, v in self.parameters],
            "object_modified": self.object_modified,
            "run_date": _iso(self.run_date),
        }


@dataclass(frozen=True)
class AuditConfig:
    """Get-AdminAuditLogConfig's answer."""

    enabled: bool
    cmdlets: tuple[str, ...] = ("*",)
    parameters: tuple[str, ...] = ("*",)
    excluded: tuple[str, ...] = ()
    age_limit: timedelta | None = None

    def logs(self, cmdlet: str, parameters: Sequence[str]) -> bool:
        """Whether a run of ``cmdlet`` with ``parameters`` is logged (on the cmdlet list, not
        excluded, one parameter on the parameter list)."""
        return (
            self.enabled
            and _listed(cmdlet, self.cmdlets)
            and not _listed(cmdlet, self.excluded)
            and any(_listed(p, self.parameters) for p in parameters)
        )


def _listed(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), p.strip().lower()) for p in patterns)


@dataclass(frozen=True)
class PlanRecord:
    """A plan applied on the endpoint (Register-CasdesiredPlan's record)."""

    plan_id: str
    owner: str
    lock_id: str | None
    applied: datetime
    ended: datetime | None


@dataclass(frozen=True)
class Unavailable:
    """Why a source could not be read: the agent's error."""

    message: str
    category: str = ""

    @property
    def not_recognized(self) -> bool:
        return self.category == "CommandNotFoundException"


@dataclass(frozen=True)
class AuditRead:
    """What the audit part of drift's request found."""

    since: datetime
    result_size: int
    config: AuditConfig | None = None
    config_error: Unavailable | None = None
    entries: tuple[AuditEntry, ...] = ()
    returned: int = 0
    """How many entries the search returned (the unreadable included)."""
    unreadable: int = 0
    """Entries whose RunDate or shape could not be read (not used)."""
    search_error: Unavailable | None = None
    records: tuple[PlanRecord, ...] = ()
    records_error: Unavailable | None = None

    @property
    def truncated(self) -> bool:
        """The search returned its limit: older entries of the window were not read."""
        return self.search_error is None and self.returned >= self.result_size


def read_audit(
    response: protocol.Response, since: datetime, result_size: int
) -> AuditRead:
    """The audit part of drift's response (a missing or failed part says why)."""
    config, config_error = _config(response.result(CONFIG))
    entries: list[AuditEntry] = []
    unreadable = returned = 0
    search = response.result(SEARCH)
    search_error = _why(search)
    if search is not None and search.ok:
        returned = len(search.objects)
        for obj in search.objects:
            entry = _entry(obj)
            if entry is None or entry.run_date is None:
                unreadable += 1
            else:
                entries.append(entry)
    records: list[PlanRecord] = []
    found = response.result(RECORDS)
    records_error = _why(found)
    if found is not None and found.ok:
        for obj in found.objects:
            record = _record(obj)
            if record is not None:
                records.append(record)
    return AuditRead(
        since=since,
        result_size=result_size,
        config=config,
        config_error=config_error,
        entries=tuple(entries),
        returned=returned,
        unreadable=unreadable,
        search_error=search_error,
        records=tuple(records),
        records_error=records_error,
    )


def _why(result: protocol.Result | None) -> Unavailable | None:
    if result is None:
        return Unavailable("the agent did not run it (it stopped before)")
    if result.ok:
        return None
    error = result.error
    return Unavailable(error.message if error else "no error message",
                       error.category if error else "")


def _config(result: protocol.Result | None) -> tuple[AuditConfig | None, Unavailable | None]:
    failed = _why(result)
    if failed is not None or result is None:
        return None, failed
    if not result.objects or not isinstance(result.objects[0], Mapping):
        return None, Unavailable("Get-AdminAuditLogConfig returned nothing")
    obj = result.objects[0]
    enabled = obj.get("AdminAuditLogEnabled")
    if not isinstance(enabled, bool):
        return None, Unavailable(f"AdminAuditLogEnabled is not a boolean: {enabled!r}"[:200])
    span = obj.get("AdminAuditLogAgeLimit")
    return AuditConfig(
        enabled=enabled,
        cmdlets=_texts(obj.get("AdminAuditLogCmdlets"), ("*",)),
        parameters=_texts(obj.get("AdminAuditLogParameters"), ("*",)),
        excluded=_texts(obj.get("AdminAuditLogExcludedCmdlets"), ()),
        age_limit=parse_span(span) if isinstance(span, str) else None,
    ), None


def _texts(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if v is not None)
    return default


def _entry(obj: Any) -> AuditEntry | None:
    if not isinstance(obj, Mapping):
        return None
    caller, cmdlet = obj.get("Caller"), obj.get("CmdletName")
    if not isinstance(caller, str) or not isinstance(cmdlet, str):
        return None
    parameters: list[tuple[str, str]] = []
    for item in obj.get("CmdletParameters") or ():
        if isinstance(item, Mapping) and isinstance(item.get("Name"), str):
            parameters.append((item["Name"], _value_text(item.get("Value"))))
    run_date = obj.get("RunDate")
    succeeded = obj.get("Succeeded")
    error = obj.get("Error")
    return AuditEntry(
        caller=caller,
        cmdlet=cmdlet,
        parameters=tuple(parameters),
        object_modified=str(obj.get("ObjectModified") or ""),
        run_date=parse_time(run_date) if isinstance(run_date, str) else None,
        succeeded=succeeded is True or str(succeeded).lower() == "true",
        error=str(error) if error not in (None, "") else None,
    )


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value)
    return str(value)


def _record(obj: Any) -> PlanRecord | None:
    if not isinstance(obj, Mapping):
        return None
    applied = parse_time(str(obj.get("Applied") or ""))
    plan_id = obj.get("PlanId")
    if applied is None or not isinstance(plan_id, str):
        return None
    ended = obj.get("Ended")
    lock_id = obj.get("LockId")
    return PlanRecord(
        plan_id=plan_id,
        owner=str(obj.get("Owner") or ""),
        lock_id=lock_id if isinstance(lock_id, str) and lock_id else None,
        applied=applied,
        ended=parse_time(ended) if isinstance(ended, str) else None,
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
