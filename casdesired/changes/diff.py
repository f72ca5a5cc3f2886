"""Desired versus live: the typed changes that would make the organisation match, and findings.

Rules (issue 4 §4–§5):

* Only declared objects are managed. Live objects the YAML does not mention are listed as
  unmanaged and never touched, unless the site prunes (``site.prune`` AND
  ``policy.allow_prune``): then the site's undeclared array and NLB nodes become deletes.
* Arrays are matched per site (one array per AD site): a declared FQDN that differs from the
  site's live array is an FQDN *update*, never a delete-and-recreate.
* A CAS declared in one site but living in another, a declared server missing live, and any
  Exchange 2013+ server are blocking findings: the site's changes are withheld.
* NLB: declared members missing live are added; a node that is a declared server of the site
  but not in ``members`` is drained and removed (other undeclared nodes only with prune); the
  plan never leaves a cluster without a node that is converged now and stays.
* An array delete while databases would still point to it is a blocking finding — checked
  after withholding, so a rebinding withheld with its site does not count as moving away.

:func:`diff` is the entry point (DesiredState + LiveState); :func:`diff_input` does the work on
plain model objects so it can be tested, and benchmarked, on hand-built estates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from casdesired import model
from casdesired.changes.changeset import (
    ChangeSet,
    ExtraSource,
    blocked_sites,
    going_ahead,
    order_changes,
)
from casdesired.changes.compare import compare
from casdesired.changes.types import (
    ArrayCreate,
    ArrayDelete,
    ArrayUpdate,
    AutodiscoverChange,
    BindingChange,
    Change,
    NlbNodeAdd,
    NlbNodeRemove,
)
from casdesired.changes.unmanaged import Unmanaged
from casdesired.diagnostics import Diagnostic
from casdesired.errors import ConfigError
from casdesired.findings import Finding, Location, Severity, Source

if TYPE_CHECKING:
    from casdesired.desired.config import DesiredState


class LiveView(Protocol):
    """What the diff reads of ``casdesired.live.reader.LiveState``."""

    @property
    def estate(self) -> model.Estate: ...

    @property
    def nlb(self) -> Mapping[str, model.LoadBalancer]: ...

    @property
    def exchange_roles(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class DiffInput:
    """Everything the diff looks at, as plain model objects."""

    sites: Sequence[model.Site]
    """Declared sites (already limited to the run's scope)."""
    bindings: Mapping[str, model.DatabaseBinding]
    """Desired bindings by database key (from resolve_bindings)."""
    live: model.Estate
    nlb: Mapping[str, model.LoadBalancer] = field(default_factory=dict)
    """Live NLB clusters by model.key(cluster host)."""
    binding_diagnostics: Sequence[Diagnostic] = ()
    allow_prune: bool = False
    all_sites: Sequence[model.Site] = ()
    """Every declared site (for resolving binding targets outside the scope); default: sites."""
    scoped: bool = False
    exchange_roles: Mapping[str, str] = field(default_factory=dict)
    """``ServerRole`` of every Exchange server by server key (CAS or not), when read."""
    sources: Sequence[ExtraSource] = ()
    """Extra sources of changes and findings (DNS), consulted before withholding."""


def diff(
    desired: DesiredState,
    live: LiveView,
    *,
    sites: Iterable[str] | None = None,
    sources: Sequence[ExtraSource] = (),
) -> ChangeSet:
    """Compare the desired state with the live organisation (optionally only some sites).

    ``sources`` add their changes and findings (DNS records and checks) to the Exchange ones
    before anything is withheld, so withholding and every later safety check see one list.
    """
    from casdesired.desired.bindings import resolve_bindings

    declared = {s.key: s for s in desired.sites}
    scope: list[model.Site] = list(desired.sites)
    scope_names: tuple[str, ...] | None = None
    if sites is not None:
        scope_names = tuple(sites)
        unknown = [n for n in scope_names if model.key(n) not in declared]
        if unknown:
            known = ", ".join(s.name for s in desired.sites) or "none"
            raise ConfigError(f"unknown site {unknown[0]!r} (declared sites: {known})")
        wanted = {model.key(n) for n in scope_names}
        scope = [s for s in desired.sites if s.key in wanted]
    live_names = [db.database for db in live.estate.databases.values()]
    bindings, diagnostics = resolve_bindings(desired, live_names)
    return diff_input(
        DiffInput(
            sites=scope,
            bindings=bindings,
            live=live.estate,
            nlb=live.nlb,
            binding_diagnostics=diagnostics,
            allow_prune=desired.organisation.policy.allow_prune,
            all_sites=desired.sites,
            scoped=sites is not None,
            exchange_roles=live.exchange_roles,
            sources=sources,
        ),
        sites=tuple(s.name for s in scope) if scope_names is not None else None,
    )


class _Differ:
    """One diff run; holds the indexes the rules share."""

    def __init__(self, inp: DiffInput) -> None:
        self.inp = inp
        self.live = inp.live
        self.all_sites = list(inp.all_sites or inp.sites)
        self.scope = {s.key for s in inp.sites}
        self.changes: list[Change] = []
        self.findings: list[Finding] = []
        self.unmanaged: list[Unmanaged] = []
        # Desired servers org-wide (a binding may name a server of another site).
        self.desired_servers = {srv.key: srv for s in self.all_sites for srv in s.servers}
        # Identity aliases -> canonical object id, so "HQ-CAS01" equals "hq-cas01.contoso.local"
        # and a database pointing at an array's old FQDN equals its new one.
        self.aliases: dict[str, str] = {}
        self.canonical_site: dict[str, str] = {}
        self._index_aliases()

    # --- identities -------------------------------------------------------------------------

    def _alias(self, identity: str | None, canonical: str, site: str) -> None:
        if identity:
            self.aliases.setdefault(model.key(identity), canonical)
            self.canonical_site.setdefault(canonical, site)

    def _index_aliases(self) -> None:
        for site in self.all_sites:
            array = site.array
            if array is not None:
                canonical = f"array:{site.key}"
                self._alias(array.fqdn, canonical, site.name)
                if " " not in array.name:
                    self._alias(array.name, canonical, site.name)
                live_array = self.live.array_in_site(site.name)
                if live_array is not None and model.key(live_array.fqdn) not in self.aliases:
                    # The site's live array is the same object under its old FQDN.
                    self._alias(live_array.fqdn, canonical, site.name)
            for srv in site.servers:
                self._alias(srv.name, f"server:{srv.key}", site.name)
                self._alias(srv.fqdn, f"server:{srv.key}", site.name)
        for arr in self.live.arrays.values():
            self._alias(arr.fqdn, f"array:{model.key(arr.site)}", arr.site)
            if " " not in arr.name:
                self._alias(arr.name, f"array:{model.key(arr.site)}", arr.site)
        for srv in self.live.servers.values():
            self._alias(srv.name, f"server:{srv.key}", srv.site)
            self._alias(srv.fqdn, f"server:{srv.key}", srv.site)

    def canonical(self, identity: str) -> str:
        k = model.key(identity)
        return self.aliases.get(k, f"other:{k}")

    def target_value(self, identity: str) -> str:
        """What to send as -RpcClientAccessServer: the array FQDN, or the server's FQDN."""
        canonical = self.canonical(identity)
        if canonical.startswith("array:"):
            site_key = canonical.split(":", 1)[1]
            site = next((s for s in self.all_sites if s.key == site_key), None)
            if site is not None and site.array is not None:
                return site.array.fqdn
        if canonical.startswith("server:"):
            k = canonical.split(":", 1)[1]
            srv = self.desired_servers.get(k) or self.live.servers.get(k)
            if srv is not None:
                return srv.fqdn
        return identity

    def finding(
        self,
        severity: Severity,
        rule: str,
        message: str,
        site: str | None,
        location: Location | None = None,
    ) -> None:
        self.findings.append(Finding(severity, rule, message, site, location))

    # --- the rules ----------------------------------------------------------------------------

    def run(self, sites: tuple[str, ...] | None = None) -> ChangeSet:
        for site in self.inp.sites:
            self.servers(site)
            self.array(site)
            self.nlb(site)
            if site.prune and not self.inp.allow_prune:
                self.finding(
                    Severity.WARNING,
                    "prune-not-allowed",
                    f"site {site.name} asks to prune, but the organisation's policy has "
                    "allow_prune: false; nothing is deleted",
                    site.name,
                    site.source,
                )
        self.bindings()
        self.settle_array_updates()
        self.unmanaged_databases()
        proposed = tuple(self.changes)
        for source in self.inp.sources:
            found = source(proposed)
            self.changes.extend(found.changes)
            self.findings.extend(found.findings)
        going, withheld = self.withhold_blocked()
        return ChangeSet(
            changes=tuple(going),
            findings=tuple(self.findings),
            withheld=tuple(withheld),
            unmanaged=tuple(self.unmanaged),
            sites=sites,
        )

    def prunes(self, site: model.Site) -> bool:
        return site.prune and self.inp.allow_prune

    def servers(self, site: model.Site) -> None:
        desired = {srv.key: _server_record(srv) for srv in site.servers}
        live_here = {
            k: srv for k, srv in self.live.servers.items() if model.key(srv.site) == site.key
        }
        live_records = {
            srv.key: _server_record(srv, like=self.desired_servers.get(srv.key))
            for srv in (self.live.servers.get(k) for k in desired)
            if srv is not None
        }
        comparison = compare(desired, live_records)
        for srv in site.servers:
            twin = self.live.servers.get(srv.key)  # the declared server as read
            if twin is None:
                roles = self.inp.exchange_roles.get(srv.key)
                if roles is not None:
                    message = (
                        f"server {srv.name} is declared as a CAS server in site {site.name}, but "
                        f"it does not have the Client Access role (Get-ExchangeServer shows "
                        f"ServerRole: {roles or 'none'}); install the role or remove it from "
                        "the YAML"
                    )
                else:
                    message = (
                        f"CAS server {srv.name} is declared in site {site.name} but Exchange "
                        "does not know it (Get-ExchangeServer); install it or remove it from the "
                        "YAML"
                    )
                self.finding(Severity.ERROR, "server-missing", message, site.name, srv.source)
                continue
            if model.key(twin.site) != site.key:
                self.finding(
                    Severity.ERROR,
                    "server-in-other-site",
                    f"CAS server {srv.name} is declared in site {site.name} but Active Directory "
                    f"places it in site {twin.site}. No Exchange cmdlet can move a server: in AD "
                    f"Sites and Services, associate the subnet of {srv.fqdn}'s IP address with "
                    f"site {site.name} (Sites > Subnets), or declare the server in site "
                    f"{twin.site}. Changes to site {site.name} are withheld until then.",
                    site.name,
                    srv.source,
                )
                continue
            fields_ = comparison.changed.get(srv.key, frozenset())
            if fields_:
                self.changes.append(
                    AutodiscoverChange(
                        site=site.name,
                        server=twin.name,
                        before_internal_uri=twin.autodiscover_internal_uri,
                        internal_uri=(
                            srv.autodiscover_internal_uri if "internal_uri" in fields_ else None
                        ),
                        before_site_scope=twin.autodiscover_site_scope,
                        site_scope=srv.autodiscover_site_scope if "site_scope" in fields_ else None,
                    )
                )
        for k, present in live_here.items():  # every server read in this site
            major = model.exchange_major(present.version)
            if major is not None and major >= 15:
                self.finding(
                    Severity.ERROR,
                    "exchange-2013",
                    f"server {present.name} in site {site.name} runs Exchange 2013 or later "
                    f"({present.version}): casdesired manages Exchange 2010 only; changes to site "
                    f"{site.name} are withheld",
                    site.name,
                )
            if k not in self.desired_servers:  # declared in another site: a finding there
                self.unmanaged.append(
                    Unmanaged("server", present.name, site.name, "CAS server not declared")
                )

    def array(self, site: model.Site) -> None:
        wanted = site.array
        live_in_site = self.live.array_in_site(site.name)
        if wanted is None:
            if live_in_site is not None:
                if self.prunes(site):
                    self.changes.append(
                        ArrayDelete(site=site.name, fqdn=live_in_site.fqdn, name=live_in_site.name)
                    )
                else:
                    self.unmanaged.append(
                        Unmanaged("array", live_in_site.fqdn, site.name, "array not declared")
                    )
            return
        by_fqdn = self.live.arrays.get(wanted.key)
        if by_fqdn is not None and model.key(by_fqdn.site) != site.key:
            self.finding(
                Severity.ERROR,
                "array-in-other-site",
                f"CAS array {wanted.fqdn} is declared in site {site.name} but exists in site "
                f"{by_fqdn.site}; move its declaration or remove the live array first",
                site.name,
                wanted.source,
            )
            return
        if wanted.ensure is model.Ensure.ABSENT:
            if by_fqdn is not None:
                self.changes.append(
                    ArrayDelete(site=site.name, fqdn=by_fqdn.fqdn, name=by_fqdn.name)
                )
            elif live_in_site is not None:
                self.finding(
                    Severity.WARNING,
                    "array-absent-other-fqdn",
                    f"site {site.name} declares array {wanted.fqdn} absent, but the site's live "
                    f"array is {live_in_site.fqdn}: nothing is deleted. To remove it, declare "
                    f"fqdn {live_in_site.fqdn} with ensure: absent",
                    site.name,
                    wanted.source,
                )
            return
        current = by_fqdn or live_in_site
        if current is None:
            self.changes.append(ArrayCreate(site=site.name, fqdn=wanted.fqdn, name=wanted.name))
            return
        fields_ = compare(
            {"a": {"fqdn": model.key(wanted.fqdn), "name": wanted.name}},
            {"a": {"fqdn": model.key(current.fqdn), "name": current.name}},
        ).changed.get("a", frozenset())
        if not fields_:
            return
        bound = [
            db
            for db in self.live.databases.values()
            if self.canonical(db.rpc_client_access_server) == f"array:{site.key}"
        ]
        self.changes.append(
            ArrayUpdate(
                site=site.name,
                live_fqdn=current.fqdn,
                before_name=current.name,
                fqdn=wanted.fqdn if "fqdn" in fields_ else current.fqdn,
                name=wanted.name if "name" in fields_ else current.name,
                bound_databases=tuple(db.database for db in bound),
                bound_mailboxes=sum(db.mailbox_count or 0 for db in bound),
            )
        )

    def nlb(self, site: model.Site) -> None:
        array = site.array
        if array is None or array.ensure is model.Ensure.ABSENT:
            return
        lb = array.load_balancer
        if lb is None or lb.kind is not model.LoadBalancerKind.NLB or not lb.cluster_host:
            return
        cluster = self.inp.nlb.get(model.key(lb.cluster_host))
        if cluster is None:
            self.finding(
                Severity.ERROR,
                "nlb-cluster-missing",
                f"no Windows NLB cluster answers on {lb.cluster_host} (array {array.fqdn}); "
                "casdesired manages NLB membership but does not create clusters: create it "
                "with New-NlbCluster first",
                site.name,
                lb.source or array.source,
            )
            return
        self.nlb_facts(site, array, lb, cluster)
        comparison = compare({n.key: {} for n in lb.nodes}, {n.key: {} for n in cluster.nodes})
        for k in comparison.only_desired:
            node = next(n for n in lb.nodes if n.key == k)
            srv = self.desired_servers.get(k) or self.live.servers.get(k)
            # Two interfaces, two roles: -InterfaceName is the cluster's interface on the host
            # the cmdlet targets (declared, else as read); -NewNodeInterface is the joining
            # server's own adapter (declared per node, else the cluster's interface name, which
            # the hosts of one cluster usually share).
            cluster_interface = lb.interface or cluster.interface or ""
            node_interface = node.interface or cluster_interface
            self.changes.append(
                NlbNodeAdd(
                    site=site.name,
                    cluster_host=lb.cluster_host,
                    interface=cluster_interface,
                    server=node.server,
                    server_fqdn=srv.fqdn if srv else node.server,
                    node_interface=node_interface,
                )
            )
        # The declared members list is authoritative for the site's declared servers: one that
        # is a node but no longer a member is taken out. Other nodes are not ours unless pruned.
        declared_here = {srv.key for srv in site.servers}
        removed: set[str] = set()
        for k in comparison.only_live:
            node = next(n for n in cluster.nodes if n.key == k)
            if k in declared_here or self.prunes(site):
                srv = self.live.servers.get(k) or self.desired_servers.get(k)
                self.changes.append(
                    NlbNodeRemove(
                        site=site.name,
                        cluster_host=lb.cluster_host,
                        server=node.server,
                        server_fqdn=srv.fqdn if srv else node.server,
                    )
                )
                removed.add(k)
            else:
                self.unmanaged.append(
                    Unmanaged(
                        "nlb_node",
                        node.server,
                        site.name,
                        f"node of the NLB cluster on {lb.cluster_host}, not a declared member",
                    )
                )
        staying = [n for n in cluster.nodes if n.key not in removed and n.converged]
        if removed and not staying:
            self.finding(
                Severity.ERROR,
                "nlb-no-converged-node",
                f"the plan would leave the NLB cluster on {lb.cluster_host} (array {array.fqdn}) "
                "without a node that is converged now; bring a declared member to Converged "
                "(Start-NlbClusterNode) before removing the others",
                site.name,
                lb.source or array.source,
            )

    def nlb_facts(
        self,
        site: model.Site,
        array: model.CasArray,
        lb: model.LoadBalancer,
        cluster: model.LoadBalancer,
    ) -> None:
        """The declared cluster's facts against the live one; casdesired changes neither.

        A VIP or interface that differs means the YAML describes another cluster than the one
        answering (or the cluster was reconfigured): membership changes made on that basis could
        be wrong, so the site is blocked. A declared member that is a node but not converged only
        warns: it is in the cluster, it just takes no traffic now.
        """
        where = lb.source or array.source
        if lb.vip and cluster.vip and model.key(lb.vip) != model.key(cluster.vip):
            self.finding(
                Severity.ERROR,
                "nlb-vip-mismatch",
                f"the NLB cluster on {lb.cluster_host} has VIP {cluster.vip}, but array "
                f"{array.fqdn} declares {lb.vip}; casdesired does not change cluster VIPs: "
                "correct the YAML, or the cluster (Add-NlbClusterVip / Set-NlbClusterVip), first",
                site.name,
                where,
            )
        if (
            lb.interface
            and cluster.interface
            and lb.interface.casefold() != cluster.interface.casefold()
        ):
            self.finding(
                Severity.ERROR,
                "nlb-interface-mismatch",
                f"the NLB cluster on {lb.cluster_host} runs on interface {cluster.interface}, "
                f"but array {array.fqdn} declares interface {lb.interface}; nodes would be "
                "added on the wrong interface: correct the YAML first",
                site.name,
                where,
            )
        declared = {n.key for n in lb.nodes}
        for node in cluster.nodes:
            if node.key in declared and not node.converged:
                self.finding(
                    Severity.WARNING,
                    "nlb-member-not-converged",
                    f"{node.server}, a declared member of the NLB cluster on {lb.cluster_host}, "
                    f"is {node.state or 'in an unknown state'}, not Converged: it takes no "
                    "traffic (Start-NlbClusterNode, or Resume-NlbClusterNode if suspended)",
                    site.name,
                    where,
                )

    def bindings(self) -> None:
        site_of_file = {s.source.path: s.name for s in self.all_sites if s.source is not None}
        for diagnostic in self.inp.binding_diagnostics:
            site = site_of_file.get(diagnostic.location.path)
            if site is None or model.key(site) in self.scope or not self.inp.scoped:
                self.findings.append(
                    Finding(
                        diagnostic.severity,
                        diagnostic.rule or "binding",
                        diagnostic.message,
                        site,
                        diagnostic.location,
                        source=Source.DESIRED,
                    )
                )
        desired: dict[str, dict[str, Any]] = {}
        targets: dict[str, tuple[str, str]] = {}
        for k, binding in self.inp.bindings.items():
            canonical = self.canonical(binding.rpc_client_access_server)
            site = self.canonical_site.get(canonical)
            if site is None or model.key(site) not in self.scope:
                continue
            if k not in self.live.databases:
                continue  # resolve_bindings already reported it
            desired[k] = {"target": canonical}
            targets[k] = (site, binding.rpc_client_access_server)
        live = {
            k: {"target": self.canonical(self.live.databases[k].rpc_client_access_server)}
            for k in desired
        }
        for k in compare(desired, live).changed:
            db = self.live.databases[k]
            site, target = targets[k]
            self.changes.append(
                BindingChange(
                    site=site,
                    database=db.database,
                    before_target=db.rpc_client_access_server,
                    target=self.target_value(target),
                    mailbox_count=db.mailbox_count or 0,
                )
            )

    def settle_array_updates(self) -> None:
        """An array's FQDN change affects the databases that stay on it, not those rebound away
        in the same plan (their users are counted once, under their rebinding)."""
        rebound = {model.key(c.database) for c in self.changes if isinstance(c, BindingChange)}
        for i, change in enumerate(self.changes):
            if not isinstance(change, ArrayUpdate):
                continue
            staying = [
                self.live.databases[model.key(name)]
                for name in change.bound_databases
                if model.key(name) not in rebound
            ]
            self.changes[i] = replace(
                change,
                bound_databases=tuple(db.database for db in staying),
                bound_mailboxes=sum(db.mailbox_count or 0 for db in staying),
            )

    def unmanaged_databases(self) -> None:
        for k, db in self.live.databases.items():
            if k in self.inp.bindings:
                continue
            site = self.canonical_site.get(self.canonical(db.rpc_client_access_server))
            if self.inp.scoped and (site is None or model.key(site) not in self.scope):
                continue
            self.unmanaged.append(
                Unmanaged(
                    "database",
                    db.database,
                    site,
                    f"not bound by any site; RpcClientAccessServer {db.rpc_client_access_server}",
                )
            )

    def array_deletes_unbound(self, going: list[Change]) -> bool:
        """Block the site of an array delete that databases would still point to afterwards.

        ``going`` are the changes not withheld: a rebinding withheld with its site (or left out
        of a ``--site`` run) does not move its database away. True when a finding was added.
        """
        rebound = {model.key(c.database): c.target for c in going if isinstance(c, BindingChange)}
        added = False
        for change in going:
            if not isinstance(change, ArrayDelete):
                continue
            gone = self.canonical(change.fqdn)
            still = [
                db.database
                for k, db in self.live.databases.items()
                if self.canonical(rebound.get(k, db.rpc_client_access_server)) == gone
            ]
            if not still:
                continue
            more = f" and {len(still) - 5} more" if len(still) > 5 else ""
            shown = ", ".join(still[:5]) + more
            self.finding(
                Severity.ERROR,
                "array-delete-in-use",
                f"CAS array {change.fqdn} would be deleted while {len(still)} database(s) "
                f"still use it ({shown}); {self._why_still_bound(still)}",
                change.site,
            )
            added = True
        return added

    def _why_still_bound(self, databases: list[str]) -> str:
        """What keeps the databases on a deleted array: the advice the finding ends with."""
        blocked = blocked_sites(self.findings)
        elsewhere: dict[str, str] = {}  # site key -> site name that rebinds some of them
        for name in databases:
            binding = self.inp.bindings.get(model.key(name))
            if binding is None:
                continue
            site = self.canonical_site.get(self.canonical(binding.rpc_client_access_server))
            if site is not None:
                elsewhere.setdefault(model.key(site), site)
        out_of_run = [n for k, n in elsewhere.items() if k not in self.scope]
        held = [n for k, n in elsewhere.items() if k in self.scope and k in blocked]
        if out_of_run:
            sites = ", ".join(out_of_run)
            flags = " ".join(f"--site {n}" for n in out_of_run)
            return (
                f"site(s) {sites} rebind them, but this run leaves them out: run with {flags} "
                "as well, so the rebindings go first"
            )
        if held:
            return (
                f"site(s) {', '.join(held)} rebind them, but their changes are withheld by "
                "blocking findings; fix those first"
            )
        return "bind them elsewhere in the YAML first"

    def withhold_blocked(self) -> tuple[list[Change], list[Change]]:
        """The changes that go ahead and those withheld, each in the order they run.

        Withholding a site's rebindings can leave another site's array delete in use; blocking
        that site withholds more, so re-check array deletes until nothing new is blocked (each
        round blocks at least one more site).
        """
        while True:
            going = going_ahead(self.changes, self.findings)
            if not self.array_deletes_unbound(going):
                break
        kept = {id(c) for c in going}
        ordered = order_changes(self.changes)
        return [c for c in ordered if id(c) in kept], [c for c in ordered if id(c) not in kept]


def _server_record(srv: model.CasServer, like: model.CasServer | None = None) -> dict[str, Any]:
    """The managed Autodiscover settings of a server, normalised for comparison.

    Only settings the desired side manages (not None) take part: ``like`` is the desired twin
    whose choice decides which live settings to compare.
    """
    ref = like or srv
    record: dict[str, Any] = {}
    if ref.autodiscover_internal_uri is not None:
        record["internal_uri"] = (srv.autodiscover_internal_uri or "").lower()
    if ref.autodiscover_site_scope is not None:
        record["site_scope"] = sorted(model.key(s) for s in srv.autodiscover_site_scope or ())
    return record


def diff_input(inp: DiffInput, *, sites: tuple[str, ...] | None = None) -> ChangeSet:
    """The diff on plain model objects (what :func:`diff` calls)."""
    return _Differ(inp).run(sites)
