"""Who changed a drifted object, when, and how: an audit entry matched to it, or why none can be.

Every drifted object is a change the plan would make (:mod:`casdesired.changes`), or a database
with a blank RpcClientAccessServer. For each kind, :data:`RULES` says which cmdlets can explain
it, which names the object goes by, and how to tell whether an entry's parameters are what
Exchange shows now. The entry chosen is the latest successful run of one of those cmdlets whose
ObjectModified, or the Identity it was given, is one of the object's names, exactly (a name that
merely contains another never matches). Then:

* casdesired's own (:mod:`.own`) and what Exchange shows is what it set: not drift, the live
  value is casdesired's and git has changed since (:attr:`Status.CASDESIRED`);
* someone else's: :attr:`Status.OUTSIDE`, with a note when Exchange shows something else again
  (changed since without an entry), or when it was casdesired's account outside any apply;
* no entry: :attr:`Status.UNKNOWN` with the reason — NLB and DNS are not in Exchange's log,
  logging is off, the configuration does not log the cmdlet, the search could not run (the
  View-Only Audit Logs role), it was cut at its result size, or the entry is older than the
  window or aged out (or the change was made outside the cmdlets, e.g. ADSI Edit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from casdesired import model
from casdesired.changes.types import (
    ArrayCreate,
    ArrayDelete,
    ArrayUpdate,
    AutodiscoverChange,
    BindingChange,
    Change,
)
from casdesired.drift.own import OwnApply, OwnChanges
from casdesired.drift.sources import AuditEntry, AuditRead

ENABLE_HINT = (
    "turn audit logging on: Set-AdminAuditLogConfig -AdminAuditLogEnabled $true (needs the "
    "Audit Logs role; shells already open pick it up within an hour)"
)
ROLE_HINT = (
    "give the account casdesired connects as the View-Only Audit Logs role (e.g. "
    "New-ManagementRoleAssignment -Role 'View-Only Audit Logs' -User ACCOUNT)"
)
NO_OLD_VALUES = (
    "Exchange 2010's admin audit log keeps no old values (LogLevel Verbose came with Exchange "
    "2013): what git says is the desired state, and 'last applied' is what casdesired's own "
    "audit log says it set; neither is read from Exchange's log"
)


class Status(str, Enum):
    OUTSIDE = "outside"
    """Changed by someone else (an audit entry says who)."""
    CASDESIRED = "casdesired"
    """The live value is the one casdesired's own apply set: git changed since (not drift)."""
    UNKNOWN = "unknown"
    """No source says who: the reason says why."""


@dataclass(frozen=True)
class Attribution:
    status: Status
    entry: AuditEntry | None = None
    apply: OwnApply | None = None
    reason: str | None = None
    """Why it is unknown (``reason_code`` is its stable id)."""
    reason_code: str | None = None
    note: str | None = None
    """A caveat about the entry (changed again since; casdesired's account outside an apply)."""

    @property
    def drift(self) -> bool:
        """Someone else's change, or nobody can tell: not casdesired's own."""
        return self.status is not Status.CASDESIRED


Canon = Callable[[str], str]
"""A target's canonical key: an array or server name becomes its FQDN's key."""


@dataclass(frozen=True)
class Rule:
    cmdlets: tuple[str, ...]
    """The cmdlets whose runs can explain the drift."""
    names: Callable[[Change, Canon], frozenset[str]]
    """The keys the object goes by (ObjectModified or Identity must be one of them)."""
    explains: Callable[[AuditEntry, Change, Canon], bool | None]
    """Whether the entry's values are what Exchange shows now (None: cannot tell)."""
    parameters: tuple[str, ...]
    """What such a run is given (for "does the configuration log it")."""


def _keys(*values: str | None) -> frozenset[str]:
    return frozenset(model.key(v) for v in values if v)


def _same(given: str | None, shown: str | None, canon: Canon) -> bool | None:
    if given is None:
        return None
    return canon(given) == canon(shown or "")


def _array_names(change: Change) -> frozenset[str]:
    """An array by its live and its desired FQDN and name (a rename is found by either)."""
    if isinstance(change, ArrayUpdate):
        return _keys(change.live_fqdn, change.before_name, change.fqdn, change.name)
    return _keys(change.identity, getattr(change, "name", None))


def _binding_explains(entry: AuditEntry, change: Change, canon: Canon) -> bool | None:
    assert isinstance(change, BindingChange)
    return _same(entry.parameter("RpcClientAccessServer"), change.before_target, canon)


def _array_update_explains(entry: AuditEntry, change: Change, canon: Canon) -> bool | None:
    assert isinstance(change, ArrayUpdate)
    fqdn, name = entry.parameter("Fqdn"), entry.parameter("Name")
    if fqdn is None and name is None:
        return None
    return (fqdn is None or canon(fqdn) == canon(change.live_fqdn)) and (
        name is None or model.key(name) == model.key(change.before_name)
    )


def _array_delete_explains(entry: AuditEntry, change: Change, canon: Canon) -> bool | None:
    assert isinstance(change, ArrayDelete)
    fqdn = entry.parameter("Fqdn")
    return None if fqdn is None else canon(fqdn) == canon(change.fqdn)


def _autodiscover_explains(entry: AuditEntry, change: Change, canon: Canon) -> bool | None:
    assert isinstance(change, AutodiscoverChange)
    verdicts = []
    uri = entry.parameter("AutoDiscoverServiceInternalUri")
    if uri is not None and change.internal_uri is not None:
        verdicts.append(uri.strip().lower() == (change.before_internal_uri or "").strip().lower())
    scope = entry.parameter("AutoDiscoverSiteScope")
    if scope is not None and change.site_scope is not None:
        given = {model.key(s) for s in scope.split(",") if s.strip()}
        verdicts.append(given == {model.key(s) for s in change.before_site_scope or ()})
    return all(verdicts) if verdicts else None


RULES: dict[str, Rule] = {
    BindingChange.kind: Rule(
        ("Set-MailboxDatabase",),
        lambda c, canon: _keys(c.identity),
        _binding_explains,
        ("Identity", "RpcClientAccessServer"),
    ),
    ArrayUpdate.kind: Rule(
        ("Set-ClientAccessArray", "New-ClientAccessArray"),
        lambda c, canon: _array_names(c),
        _array_update_explains,
        ("Identity", "Fqdn", "Name"),
    ),
    ArrayCreate.kind: Rule(
        ("Remove-ClientAccessArray",),
        lambda c, canon: _array_names(c),
        lambda entry, change, canon: True,  # a removal is why it is missing
        ("Identity",),
    ),
    ArrayDelete.kind: Rule(
        ("New-ClientAccessArray", "Set-ClientAccessArray"),
        lambda c, canon: _array_names(c),
        _array_delete_explains,
        ("Fqdn", "Name", "Site"),
    ),
    AutodiscoverChange.kind: Rule(
        ("Set-ClientAccessServer",),
        lambda c, canon: _keys(c.identity, canon(c.identity)),
        _autodiscover_explains,
        ("Identity", "AutoDiscoverServiceInternalUri", "AutoDiscoverSiteScope"),
    ),
}

NOT_IN_EXCHANGE = {
    "nlb": "NLB membership is Windows NLB, not Exchange: Exchange's admin audit log does not "
    "record it (look in the nodes' System event logs)",
    "dns": "DNS records are not Exchange's: its admin audit log does not record them (look in "
    "the DNS server's audit or debug log)",
}


@dataclass(frozen=True)
class Attributor:
    """Attribution over one audit read, casdesired's own applies and the live names."""

    audit: AuditRead
    own: OwnChanges
    canon: Canon
    now: datetime

    def change(self, change: Change) -> Attribution:
        """Who made Exchange show what ``change`` would undo."""
        if change.kind.startswith("nlb_"):
            return self._unknown("nlb", NOT_IN_EXCHANGE["nlb"])
        if change.kind.startswith("dns_"):
            return self._unknown("dns", NOT_IN_EXCHANGE["dns"])
        if isinstance(change, BindingChange) and not change.before_target.strip():
            return self.orphan(change.database, change.target)
        rule = RULES.get(change.kind)
        if rule is None:
            return self._unknown("no-source", f"no audit source for a {change.kind} change")
        disabled = self._disabled()
        if disabled is not None:
            return disabled
        names = rule.names(change, self.canon)
        found = self._latest(rule.cmdlets, names)
        if found is None:
            return self._missing(rule.cmdlets, rule.parameters)
        return self._judge(found, rule.explains(found, change, self.canon))

    def orphan(self, database: str, bound_to: str | None = None) -> Attribution:
        """A blank RpcClientAccessServer: who removed the array the database pointed at — the
        one Set-MailboxDatabase last set, else the one git binds it to (``bound_to``), else
        any removal of the window (said so when there are several)."""
        disabled = self._disabled()
        if disabled is not None:
            return disabled
        setter = self._latest(("Set-MailboxDatabase",), _keys(database))
        pointed = setter.parameter("RpcClientAccessServer") if setter is not None else None
        how = f"set with Set-MailboxDatabase by {setter.caller}" if setter is not None else ""
        if not pointed and bound_to:
            pointed, how = bound_to, "where git binds it"
        removals = self._matching(("Remove-ClientAccessArray",), None)
        note = None
        if pointed:
            target = _keys(pointed, self.canon(pointed), pointed.split(".", 1)[0])
            removals = [e for e in removals if e.touches(target)]
            note = f"it pointed at {pointed} ({how})"
        elif len(removals) > 1:
            note = (
                f"one of {len(removals)} array removals in the window: no entry says which "
                "array the database pointed at"
            )
        if not removals:
            return self._missing(("Remove-ClientAccessArray",), ("Identity",))
        judged = self._judge(max(removals, key=_when), True)
        return Attribution(judged.status, judged.entry, judged.apply, judged.reason,
                           judged.reason_code, _join(note, judged.note))

    # ------------------------------------------------------------------ helpers
    def _matching(
        self, cmdlets: tuple[str, ...], names: frozenset[str] | None
    ) -> list[AuditEntry]:
        wanted = {c.lower() for c in cmdlets}
        return [
            e for e in self.audit.entries
            if e.cmdlet.lower() in wanted and not e.changed_nothing
            and (names is None or e.touches(names))
        ]

    def _latest(self, cmdlets: tuple[str, ...], names: frozenset[str]) -> AuditEntry | None:
        found = self._matching(cmdlets, names)
        return max(found, key=_when) if found else None

    def _judge(self, entry: AuditEntry, explains: bool | None) -> Attribution:
        own = self.own.apply_of(entry)
        if own is not None:
            if explains is False:
                return self._unknown(
                    "changed-after-apply",
                    f"casdesired's apply (plan {own.plan_id}) set it last, with another value, "
                    "and no audit entry shows who changed it since (outside the Exchange "
                    "cmdlets, or with audit logging off at the time)",
                    entry=entry,
                )
            return Attribution(Status.CASDESIRED, entry=entry, apply=own)
        notes = []
        if self.own.by_account(entry):
            notes.append(
                "made with casdesired's account, but outside every apply casdesired recorded "
                "(someone used the service account, or the apply's records are gone)"
            )
        if explains is False:
            notes.append(
                "what Exchange shows now is not what this run set: it changed again since, "
                "without an audit entry"
            )
        return Attribution(Status.OUTSIDE, entry=entry, note=_join(*notes))

    def _disabled(self) -> Attribution | None:
        config = self.audit.config
        if config is not None and not config.enabled:
            return self._unknown("logging-disabled", "audit logging is disabled")
        return None

    def _missing(self, cmdlets: tuple[str, ...], parameters: tuple[str, ...]) -> Attribution:
        audit = self.audit
        failed = audit.search_error
        if failed is not None:
            if failed.not_recognized:
                return self._unknown(
                    "no-search",
                    "the account casdesired connects as cannot search the audit log "
                    "(Search-AdminAuditLog is not available to it: it needs the View-Only Audit "
                    "Logs role, and Exchange 2010 SP1 or later)",
                )
            return self._unknown("search-failed",
                                 f"the audit log search failed: {failed.message}")
        config = audit.config
        if config is not None and not any(config.logs(c, parameters) for c in cmdlets):
            return self._unknown(
                "not-logged",
                f"the audit log configuration does not log {' or '.join(cmdlets)} "
                "(AdminAuditLogCmdlets, ...ExcludedCmdlets, ...Parameters)",
            )
        if audit.truncated:
            return self._unknown(
                "truncated",
                f"the search returned its limit of {audit.result_size:,} entries (the newest) "
                "and none is about it: older entries of the window were not read (a later "
                "--since, or a larger --audit-results)",
            )
        since = _utc(audit.since)
        age = config.age_limit if config is not None else None
        if age is not None and audit.since < self.now - age:
            return self._unknown(
                "aged-out",
                f"no audit entry for it: entries older than the log's age limit "
                f"({_days(age)}) have aged out, or it was changed outside the Exchange cmdlets "
                "(e.g. ADSI Edit)",
            )
        return self._unknown(
            "no-entry",
            f"no audit entry for it since {since}: it changed before (a --since further back, "
            "within the log's age limit, may find it), or outside the Exchange cmdlets (e.g. "
            "ADSI Edit)",
        )

    @staticmethod
    def _unknown(code: str, reason: str, *, entry: AuditEntry | None = None) -> Attribution:
        return Attribution(Status.UNKNOWN, entry=entry, reason=reason, reason_code=code)


def _when(entry: AuditEntry) -> datetime:
    assert entry.run_date is not None  # entries without a date are never kept
    return entry.run_date


def _join(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return "; ".join(kept) if kept else None


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _days(span: timedelta) -> str:
    return f"{span.days} days" if span.seconds == 0 else str(span)


def canonical(estate: model.Estate) -> Canon:
    """A target's key as Exchange resolves it: array and server names become their FQDN's."""
    names: dict[str, str] = {}
    for array in estate.arrays.values():
        names[model.key(array.name)] = array.key
    for server in estate.servers.values():
        names[server.key] = model.key(server.fqdn)
    return lambda value: names.get(model.key(value), model.key(value))


def describe_reasons(codes: Mapping[str, int]) -> list[str]:
    """Hints for the report, from the reasons given."""
    hints = []
    if codes.get("logging-disabled"):
        hints.append(ENABLE_HINT)
    if codes.get("no-search"):
        hints.append(ROLE_HINT)
    return hints
