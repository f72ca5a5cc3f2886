"""Making a plan end to end: connect, read the live organisation once, diff, build the Plan.

The path of the desired state, each module once: :func:`make_plan` reads the live organisation
(``casdesired.live``), :func:`plan_from_live` diffs it with the Exchange changes and the extra
sources (DNS: ``casdesired.dns.source``) in one change set, withheld once
(``casdesired.changes``), and :func:`assemble` builds the immutable :class:`Plan` with what
needs ``--force`` computed from the whole set (``casdesired.plan.thresholds``).

Used by ``casdesired plan``, by apply (a plan made under the lock) and for rollback plans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from casdesired import model
from casdesired.changes.changeset import ChangeSet
from casdesired.changes.diff import diff
from casdesired.desired.config import DesiredState, Organisation, Policy
from casdesired.dns.source import DnsSource
from casdesired.live.mailboxes import Counter, count_mailboxes
from casdesired.live.reader import read_live
from casdesired.live.state import LiveState
from casdesired.plan.depends import live_objects
from casdesired.plan.plan import Plan
from casdesired.plan.thresholds import needs_force
from casdesired.transport.winrm import AgentClient, target_from_config

Progress = Callable[[str], None]


@contextmanager
def connect(organisation: Organisation, environ: Mapping[str, str]) -> Iterator[AgentClient]:
    """An agent client for the organisation: the embedded lab for ``endpoint: lab``, else WinRM.

    Credentials come from the environment variables the organisation file names, never from
    the YAML; the lab generates its own.
    """
    connection = organisation.connection
    if connection.endpoint == "lab":
        from casdesired.lab.embedded import embedded_lab

        with embedded_lab(organisation, connection.lab_state) as target:
            yield AgentClient(target)
    else:
        yield AgentClient(target_from_config(connection, environ))


def nlb_hosts(desired: DesiredState, sites: Iterable[str] | None = None) -> list[str]:
    """Cluster hosts of the declared NLB arrays (in scope) — the NLB clusters to read."""
    wanted = {model.key(s) for s in sites} if sites is not None else None
    hosts: dict[str, str] = {}
    for site in desired.sites:
        if wanted is not None and site.key not in wanted:
            continue
        array = site.array
        lb = array.load_balancer if array is not None else None
        if (
            array is not None
            and array.ensure is model.Ensure.PRESENT
            and lb is not None
            and lb.kind is model.LoadBalancerKind.NLB
            and lb.cluster_host
        ):
            hosts.setdefault(model.key(lb.cluster_host), lb.cluster_host)
    return list(hosts.values())


@dataclass
class PlanRun:
    """A plan with the live state it was computed from."""

    plan: Plan
    live: LiveState


def make_plan(
    desired: DesiredState,
    client: AgentClient,
    *,
    sites: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> PlanRun:
    """Read the live organisation (one command execution), diff it, count the mailboxes of the
    databases it rebinds (one more, only if it rebinds any), and build the plan."""
    scope = list(sites) if sites is not None else None
    live = read_live(client, nlb_hosts=nlb_hosts(desired, scope), progress=progress)
    plan = plan_from_live(
        desired,
        live,
        sites=scope,
        progress=progress,
        count=lambda databases: count_mailboxes(client, databases, progress),
    )
    return PlanRun(plan=plan, live=live)


def plan_from_live(
    desired: DesiredState,
    live: LiveState,
    *,
    sites: Iterable[str] | None = None,
    progress: Progress | None = None,
    count: Counter | None = None,
) -> Plan:
    """The plan for ``desired`` against a live state already read (plan and apply share it).

    ``count`` counts the mailboxes of the databases the plan moves (None: leave them 0)."""
    scope = list(sites) if sites is not None else None
    if progress:
        progress("comparing with the desired state")
    dns = DnsSource(desired, scope, progress=progress)
    changeset = diff(desired, live, sites=scope, sources=(dns,))
    moved = changeset.databases_moved()
    if count is not None and moved:
        changeset = changeset.with_mailbox_counts(count(moved))
    return assemble(
        changeset,
        organisation=desired.organisation.name,
        endpoint=desired.organisation.connection.endpoint,
        live=live,
        desired_digest=desired.digest(),
        policy=desired.organisation.policy,
        root=str(desired.organisation.path),
        desired_files=desired.file_digests(),
        dns_checked=dns.checked_sites,
    )


def assemble(
    changeset: ChangeSet,
    *,
    organisation: str,
    endpoint: str,
    live: LiveState,
    desired_digest: str,
    policy: Policy,
    root: str | None = None,
    desired_files: Mapping[str, str] | None = None,
    dns_checked: tuple[str, ...] | None = None,
) -> Plan:
    """The one way a :class:`Plan` is built: from a settled change set and the live state it
    depends on, with what apply will refuse without ``--force`` computed from the whole set."""
    return Plan(
        organisation=organisation,
        endpoint=endpoint,
        live_fingerprint=live.fingerprint(),
        desired_digest=desired_digest,
        changes=changeset.changes,
        findings=changeset.findings,
        withheld=changeset.withheld,
        unmanaged=changeset.unmanaged,
        sites=changeset.sites,
        depends_on=live_objects(live, changeset.sites),
        needs_force=tuple(
            needs_force(
                changeset.changes, len(live.estate.databases), policy, changeset.findings
            )
        ),
        root=root,
        desired_files=dict(desired_files) if desired_files is not None else None,
        dns_checked=dns_checked,
    )
