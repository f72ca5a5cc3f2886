"""The summary ``casdesired import`` ends with: what was read, written and left out, what next.

Per site: servers, the array and its balancer, databases and their mailboxes; then everything
left out, grouped (each is also a comment in its file); the TODOs validate will report; and the
next command to run.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from casdesired.importing.documents import Note, SiteDocument
from casdesired.importing.files import Planned
from casdesired.importing.placement import Unplaced
from casdesired.importing.read import ImportRead
from casdesired.importing.yamltext import scalar

LISTED_PER_KIND = 5
"""Notes of one kind in one site listed one by one; more are counted, with the first few."""


@dataclass(frozen=True)
class ImportResult:
    """Everything the summary reports."""

    organisation: str
    directory: str
    """The directory as the user gave it (for the next command)."""
    read: ImportRead
    documents: Sequence[SiteDocument]
    unplaced: Sequence[Unplaced]
    files: Sequence[tuple[str, Planned]]
    """(path as shown, the file)."""
    scoped: bool
    sites: Sequence[str]
    stale: Sequence[tuple[str, str]] = ()
    """(file shown, site) of existing site files for sites Exchange does not report."""
    written: bool = True
    """False for --dry-run."""


def summary(result: ImportResult) -> str:
    lines: list[str] = []
    read = result.read
    estate = read.live.estate
    executions = f"{read.executions} command execution{'s' if read.executions != 1 else ''}"
    lines.append(
        f"casdesired import: organisation {result.organisation}, read in {executions} "
        "(nothing was changed)"
    )
    verb = "wrote" if result.written else "would write"
    for shown, item in result.files:
        status = {"new": "new", "changed": "replaced", "unchanged": "unchanged"}[item.status]
        lines.append(f"  {verb if status != 'unchanged' else 'kept'} {shown} ({status})")
    lines.append("")
    lines.append(f"Sites: {len(result.documents)}")
    for doc in result.documents:
        lines.append(f"  {scalar(doc.site)}: {_site_line(doc)}")
    servers = sum(len(d.servers) for d in result.documents)
    arrays = sum(1 for d in result.documents if d.array is not None)
    bound = sum(d.array_databases + len(d.server_bindings) for d in result.documents)
    lines.append(
        f"Declared: {servers} CAS server(s), {arrays} array(s), {bound} of the organisation's "
        f"{len(estate.databases)} database(s)."
    )
    lines.append(_nlb_line(read))
    if read.mailboxes is not None:
        total = sum(read.mailboxes.values())
        lines.append(f"Mailboxes: {total:,} in the organisation (every domain of the forest).")
    else:
        lines.append(f"Mailboxes: {read.mailbox_problem or 'not counted'}")
    lines += _left_out(result)
    todos = [d for d in result.documents if d.array is not None and d.array.todo is not None]
    for shown, site in result.stale:
        lines.append(
            f"Note: {shown} declares site {scalar(site)}, which Exchange does not report: left "
            "as it is; the plan reports its servers as missing until it is removed."
        )
    lines.append("")
    lines.append(_next(result, todos))
    return "\n".join(lines) + "\n"


def _nlb_line(read: ImportRead) -> str:
    if not read.nlb_hosts:
        return "Windows NLB: not read (--no-nlb, or no Exchange 2010 CAS in the sites imported)."
    clusters = {c.identity for c in read.clusters.values()}
    text = (
        f"Windows NLB: read on {len(read.nlb_hosts)} CAS server(s), {len(clusters)} "
        "cluster(s) found"
    )
    if read.no_nlb_module:
        hosts = ", ".join(scalar(h) for h in read.no_nlb_module)
        text += f"; no NLB module on {hosts}, taken as in no cluster"
    return text + "."


def _site_line(doc: SiteDocument) -> str:
    parts = [f"{len(doc.servers)} server(s)"]
    if doc.array is None:
        parts.append("no array")
    else:
        lb = doc.array.load_balancer
        if doc.array.todo is not None:
            balancer = "load balancer VIP TODO"
        elif lb.type == "nlb":
            balancer = f"Windows NLB, {len(lb.members)} member(s), VIP {lb.vip}"
        else:
            balancer = f"external balancer, VIP {lb.vip}"
        parts.append(f"array {scalar(doc.array.fqdn)} ({balancer})")
    databases = f"{doc.array_databases + len(doc.server_bindings)} database(s)"
    how = []
    if doc.names:
        how.append(f"{len(doc.names)} by name")
    if doc.patterns:
        matched = doc.array_databases - len(doc.names)
        how.append(f"{matched} by {len(doc.patterns)} pattern(s)")
    if doc.server_bindings:
        how.append(f"{len(doc.server_bindings)} to servers")
    if how:
        databases += f" ({', '.join(how)})"
    parts.append(databases)
    if doc.bound_mailboxes is not None:
        parts.append(f"{doc.bound_mailboxes:,} mailbox(es)")
    return ", ".join(parts)


def _left_out(result: ImportResult) -> list[str]:
    grouped: list[tuple[str, list[Note]]] = []
    for doc in result.documents:
        notes = [n for n in doc.notes if n.kind != "database-bound-to-server"]
        if notes:
            grouped.append((scalar(doc.site), notes))
    elsewhere = [u.note for u in result.unplaced]
    if elsewhere:
        grouped.append(("(no site imported)", elsewhere))
    if not grouped:
        return ["Not declared: nothing."]
    lines = ["Not declared as it is, and why (each is also a comment in its site's file):"]
    for site, notes in grouped:
        kinds: dict[str, list[Note]] = {}
        for note in notes:
            kinds.setdefault(note.kind, []).append(note)
        for kind, same in kinds.items():
            if len(same) <= LISTED_PER_KIND:
                lines += [f"  {site}: {note.text}" for note in same]
                continue
            first = ", ".join(scalar(n.subject) for n in same[:3])
            lines.append(
                f"  {site}: {len(same):,} × {kind} ({first}, …): {same[0].text}"
            )
    return lines


def _next(result: ImportResult, todos: Sequence[SiteDocument]) -> str:
    directory = shlex.quote(result.directory)
    scope = "".join(f" --site {shlex.quote(s)}" for s in result.sites) if result.scoped else ""
    plan = f"casdesired plan {directory}{scope} --detailed-exitcode"
    if not result.written:
        return f"Next: run again without --dry-run to write the files, then {plan}"
    if todos:
        sites = ", ".join(scalar(d.site) for d in todos)
        return (
            f"Next: write the load balancer VIP of {sites} where the TODO says (casdesired "
            f"validate {directory} shows each), then: {plan}"
        )
    return f"Next: casdesired validate {directory} && {plan}"
