"""The plan: plain data that renderers show and apply carries out, saved as versioned JSON.

A plan holds the ordered changes (Exchange's and DNS records'), the findings (blocking ones
withhold their site's changes, which are kept apart in ``withheld``; DNS ones may block apply),
what apply will refuse without ``--force``, the safety notes people must read before applying
(mailboxes behind each rebinding, the Outlook profile trap), the unmanaged objects, and what it
was computed from: the live state's fingerprint and the desired state's digest (and each
desired-state file's), so apply can refuse a stale plan and name what changed. It never holds a
credential. It is built once (:func:`casdesired.plan.build.assemble`) and never changes
afterwards.

``to_json()`` is documented by ``schemas/plan.schema.json`` (``format_version: 1``). A saved file
carries a checksum over its content; :meth:`Plan.load` refuses a file that fails the schema, the
checksum, or whose recorded invocations no longer match what its changes would run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from casdesired import model
from casdesired.atomicfile import write_atomic
from casdesired.changes.types import (
    EXCHANGE_CHANGES,
    OUTLOOK_PROFILE_WARNING,
    Action,
    ArrayUpdate,
    BadChange,
    BindingChange,
    Change,
    change_from_json,
)
from casdesired.changes.unmanaged import Unmanaged
from casdesired.dns.records import RECORD_CHANGES
from casdesired.errors import CasdesiredError
from casdesired.findings import Finding, Source
from casdesired.plan.thresholds import dns_blocking, fixed_names

FORMAT_VERSION = 1

CHANGE_TYPES: dict[str, type[Change]] = {c.kind: c for c in (*EXCHANGE_CHANGES, *RECORD_CHANGES)}
"""Every kind of change a plan carries (and a plan file may hold)."""

ROLLBACK_DIGEST = "rollback of plan {plan_id}"
"""The ``desired_digest`` of a rollback plan: it restores live values, not a desired state."""


class PlanFileError(CasdesiredError):
    """A plan file cannot be used: unreadable, not a plan, another version, or modified."""


@dataclass(frozen=True)
class SafetyNote:
    """Something a reviewer must weigh before applying; shown apart from the changes."""

    change: str
    """The change it is about (``kind:identity``)."""
    site: str
    mailboxes: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "site": self.site,
            "mailboxes": self.mailboxes,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SafetyNote:
        return cls(
            str(data["change"]), str(data["site"]), int(data["mailboxes"]), str(data["message"])
        )


def safety_notes(changes: Iterable[Change]) -> list[SafetyNote]:
    """The notes for a list of changes: every rebinding, and every FQDN change of a used array."""
    notes: list[SafetyNote] = []
    for change in changes:
        if isinstance(change, BindingChange):
            notes.append(
                SafetyNote(
                    change=f"{change.kind}:{change.identity}",
                    site=change.site,
                    mailboxes=change.mailbox_count,
                    message=(
                        f"{change.mailbox_count:,} mailboxes on {change.database} move from "
                        f"{change.before_target or '(none)'} to {change.target}; "
                        f"{OUTLOOK_PROFILE_WARNING}"
                    ),
                )
            )
        elif isinstance(change, ArrayUpdate) and change.fqdn_changes and change.bound_databases:
            notes.append(
                SafetyNote(
                    change=f"{change.kind}:{change.identity}",
                    site=change.site,
                    mailboxes=change.bound_mailboxes,
                    message=(
                        f"the FQDN of array {change.live_fqdn} changes to {change.fqdn} while "
                        f"{len(change.bound_databases):,} database(s) with "
                        f"{change.bound_mailboxes:,} mailboxes use it; {OUTLOOK_PROFILE_WARNING}"
                    ),
                )
            )
    return notes


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Plan:
    """What ``casdesired plan`` computed; renderers only read it, apply carries it out."""

    organisation: str
    endpoint: str
    live_fingerprint: str
    desired_digest: str
    changes: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = ()
    """Every finding: the diff's (errors withhold their site) and DNS's (:attr:`dns`)."""
    withheld: tuple[Change, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    sites: tuple[str, ...] | None = None
    """The sites the run was limited to (``--site``); None: all declared sites."""
    depends_on: dict[str, str] | None = None
    """Per-object fingerprints of the live objects it depends on (casdesired.plan.depends)."""
    needs_force: tuple[str, ...] = ()
    """Why apply will refuse this plan unless ``--force`` (casdesired.plan.thresholds)."""
    desired_files: dict[str, str] | None = None
    """SHA-256 of each desired-state file it was made from (relative path -> hex digest);
    None in rollback plans and in plan files from before it was recorded."""
    dns_checked: tuple[str, ...] | None = None
    """The sites whose names were asked of the organisation's resolvers (``dns.resolvers``):
    every site in scope when resolvers are configured, none when not; None when not recorded
    (plans saved before it, rollback plans). A checked site without DNS findings is fine."""
    root: str | None = field(default=None, compare=False)
    """The organisation directory, so renderers meant to be shared (Markdown) can show YAML
    locations relative to it instead of the runner's absolute paths. Not saved."""
    plan_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=_now)

    # --- derived facts ------------------------------------------------------------------------

    @property
    def safety(self) -> list[SafetyNote]:
        return safety_notes(self.changes)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    @property
    def mailboxes_affected(self) -> int:
        return sum(change.mailboxes for change in self.changes)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def no_changes_message(self) -> str:
        """What to say when the plan has no changes: in sync, or nothing *can* run."""
        if self.withheld or self.blocking_findings:
            return (
                f"No changes can run: {len(self.withheld)} withheld by "
                f"{len(self.blocking_findings)} blocking finding(s) (see below)."
            )
        return "No changes. The live organisation matches the desired state."

    @property
    def blocking_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def diff_findings(self) -> list[Finding]:
        """What the diff found (and the YAML's binding rules): every finding but DNS's."""
        return [f for f in self.findings if f.source is not Source.DNS]

    @property
    def dns(self) -> list[Finding]:
        """DNS findings: shown apart from the changes, never withholding them."""
        return [f for f in self.findings if f.source is Source.DNS]

    def blocks_apply(self, finding: Finding) -> bool:
        """A DNS error about a name this plan points databases at and does not fix itself:
        apply refuses it unless ``--force``."""
        return finding in self.dns_blocking_apply

    def fixed_by_plan(self, finding: Finding) -> bool:
        """A DNS record change of this plan makes the name right (before the bindings run)."""
        return finding.name is not None and model.key(finding.name) in fixed_names(self.changes)

    def dns_label(self, finding: Finding) -> str:
        """``BLOCKS APPLY`` / ``error`` / ``warning`` (plus what fixes it) for renderers."""
        if self.blocks_apply(finding):
            return "BLOCKS APPLY (unless --force)"
        if self.fixed_by_plan(finding):
            return f"{finding.severity.value}, fixed by this plan"
        return finding.severity.value

    @property
    def summary(self) -> str:
        """``Plan: 1 to create, 6 to change, 0 to destroy; 1,234 mailboxes affected``."""
        c = self.counts
        text = (
            f"Plan: {c['create']} to create, {c['update']} to change, {c['delete']} to destroy; "
            f"{self.mailboxes_affected:,} mailboxes affected"
        )
        blocking = len(self.blocking_findings)
        if blocking:
            text += f"; {blocking} blocking finding(s), {len(self.withheld)} change(s) withheld"
        dns_blocking = len(self.dns_blocking_apply)
        if dns_blocking:
            text += f"; {dns_blocking} DNS finding(s) block apply"
        return text

    @property
    def is_rollback(self) -> bool:
        """A rollback plan (casdesired.apply.rollback) is pinned to the live state only."""
        return self.desired_digest.startswith(ROLLBACK_DIGEST.partition("{")[0])

    @property
    def dns_blocking_apply(self) -> list[Finding]:
        """DNS errors about arrays this plan rebinds databases to: apply needs --force."""
        return dns_blocking(self.dns, self.changes)

    def _dns_json(self, finding: Finding) -> dict[str, Any]:
        return {
            "severity": finding.severity.value,
            "rule": finding.rule,
            "name": finding.name,
            "message": finding.message,
            "site": finding.site,
            "location": str(finding.location) if finding.location else None,
            "blocks_apply": self.blocks_apply(finding),
            "fixed_by_plan": self.fixed_by_plan(finding),
        }

    # --- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The versioned document ``schemas/plan.schema.json`` describes."""
        return {
            "format_version": FORMAT_VERSION,
            "plan_id": self.plan_id,
            "created_at": self.created_at,
            "organisation": {"name": self.organisation, "endpoint": self.endpoint},
            "live_fingerprint": self.live_fingerprint,
            "desired_digest": self.desired_digest,
            "sites": list(self.sites) if self.sites is not None else None,
            "summary": self.summary,
            "counts": {**self.counts, "mailboxes_affected": self.mailboxes_affected},
            "changes": [_change_json(c) for c in self.changes],
            "safety": [n.to_json() for n in self.safety],
            "needs_force": list(self.needs_force),
            "findings": [f.to_json() for f in self.diff_findings],
            "withheld": [_change_json(c) for c in self.withheld],
            "unmanaged": [u.to_json() for u in self.unmanaged],
            "dns": [self._dns_json(f) for f in self.dns],
            **({"depends_on": dict(self.depends_on)} if self.depends_on is not None else {}),
            **(
                {"desired_files": dict(self.desired_files)}
                if self.desired_files is not None
                else {}
            ),
            **({"dns_checked": list(self.dns_checked)} if self.dns_checked is not None else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """Rebuild a plan from :meth:`to_json` output; raises :class:`PlanFileError`."""
        if not isinstance(data, Mapping) or data.get("format_version") != FORMAT_VERSION:
            version = data.get("format_version") if isinstance(data, Mapping) else None
            raise PlanFileError(
                f"not a casdesired plan of format_version {FORMAT_VERSION} (found {version!r})"
            )
        errors = sorted(plan_validator().iter_errors(dict(data)), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(top)"
            raise PlanFileError(f"invalid plan at {where}: {first.message}")
        try:
            changes = tuple(_change_from(c) for c in data["changes"])
            withheld = tuple(_change_from(c) for c in data["withheld"])
        except BadChange as exc:
            raise PlanFileError(f"invalid plan: {exc}") from None
        sites = data.get("sites")
        return cls(
            organisation=data["organisation"]["name"],
            endpoint=data["organisation"]["endpoint"],
            live_fingerprint=data["live_fingerprint"],
            desired_digest=data["desired_digest"],
            changes=changes,
            findings=(
                *(Finding.from_json(f) for f in data["findings"]),
                *(Finding.from_json(n, Source.DNS) for n in data.get("dns", [])),
            ),
            withheld=withheld,
            unmanaged=tuple(Unmanaged.from_json(u) for u in data["unmanaged"]),
            needs_force=tuple(str(r) for r in data.get("needs_force", [])),
            sites=tuple(sites) if sites is not None else None,
            depends_on=dict(data["depends_on"]) if "depends_on" in data else None,
            desired_files=dict(data["desired_files"]) if "desired_files" in data else None,
            dns_checked=tuple(data["dns_checked"]) if "dns_checked" in data else None,
            plan_id=data["plan_id"],
            created_at=data["created_at"],
        )

    # --- files --------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the plan (with its checksum) atomically: a reader never sees half a file."""
        document = self.to_json()
        document["checksum"] = checksum(document)
        text = dumps(document)
        write_atomic(Path(path), lambda handle: handle.write(text), what="the plan")

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a saved plan; any damage or edit gives :class:`PlanFileError`, never a traceback."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PlanFileError(f"cannot read plan file {path}: {reason}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PlanFileError(f"{path} is not a plan file (not JSON: {exc})") from None
        if not isinstance(data, dict):
            raise PlanFileError(f"{path} is not a plan file")
        recorded = data.pop("checksum", None)
        if data.get("format_version") == FORMAT_VERSION and recorded is None:
            raise PlanFileError(
                f"{path} has no checksum: only files written by `casdesired plan --out` can be "
                "used as saved plans"
            )
        if data.get("format_version") == FORMAT_VERSION and recorded != checksum(data):
            raise PlanFileError(
                f"{path} was modified after it was saved (checksum mismatch); "
                "make a new plan instead of editing one"
            )
        return cls.from_json(data)


def dumps(document: Mapping[str, Any]) -> str:
    """JSON with one top-level member, and one list item, per line.

    Readable and diffable, yet written by the C encoder: ``json.dumps(indent=2)`` falls back to
    the pure-Python encoder, which took 2 s for a 10,000-change plan.
    """

    def compact(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))

    lines = []
    for name, value in document.items():
        if isinstance(value, list) and value:
            items = ",\n".join(f"    {compact(item)}" for item in value)
            lines.append(f"  {compact(name)}: [\n{items}\n  ]")
        else:
            lines.append(f"  {compact(name)}: {compact(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def checksum(document: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a plan document (without its checksum)."""
    canonical = json.dumps(
        {k: v for k, v in document.items() if k != "checksum"},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "action": change.action.value,
        "site": change.site,
        "identity": change.identity,
        "description": change.describe(),
        "mailboxes": change.mailboxes,
        "before": change.before(),
        "after": change.after(),
        "data": change.to_json(),
        "invocations": [i.to_json() for i in change.invocations()],
    }


def _change_from(entry: Mapping[str, Any]) -> Change:
    change = change_from_json(entry["data"], CHANGE_TYPES)
    if change.kind != entry["kind"] or change.action is not Action(entry["action"]):
        raise BadChange(f"change {entry.get('identity')!r}: kind does not match its data")
    if [i.to_json() for i in change.invocations()] != entry["invocations"]:
        raise BadChange(
            f"change {change.identity!r}: its invocations do not match its data "
            "(the file was edited)"
        )
    return change


@cache
def plan_schema() -> dict[str, Any]:
    text = (resources.files("casdesired") / "schemas" / "plan.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def plan_validator() -> Draft202012Validator:
    return Draft202012Validator(plan_schema())
