"""From the organisation read to one document per site: servers, the array, its load balancer.

Everything written must plan to "No changes." and validate without an error, so whatever the
YAML cannot declare as it is becomes a :class:`~casdesired.importing.documents.Note` instead:

* an Exchange 2013+ server (never a member of a 2010 array; the plan only notes it);
* a server whose FQDN validate would refuse; an Autodiscover URI that is not http(s), or whose
  host is an array FQDN (``array-fqdn-is-autodiscover``): its Autodiscover is left unmanaged;
* an array Exchange cannot address by name (a space, more than 64 characters), whose FQDN is
  not a DNS name or is a server's, or a second array in a site (casdesired declares one);
* NLB clusters that do not match the array, and cluster nodes that are not the site's CAS.

The load balancer: the Windows NLB cluster of the site's CAS servers whose VIP the array FQDN
resolves to (or the only one, without DNS), with its cluster host, interface and members as
NLB reports them; otherwise ``external`` with the one address DNS gives; otherwise a ``TODO``
VIP with a comment, which validate reports until someone writes the VIP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from casdesired import model
from casdesired.desired.rules import ARRAY_NAME_MAX
from casdesired.desired.syntax import is_fqdn, url_host
from casdesired.importing.documents import (
    ArrayEntry,
    LoadBalancerEntry,
    Note,
    Section,
    ServerEntry,
    SiteDocument,
)
from casdesired.importing.read import Cluster, ImportRead
from casdesired.importing.yamltext import scalar


@dataclass(frozen=True)
class DnsAnswer:
    """What the organisation's resolvers say about a name: its addresses, or why none."""

    addresses: tuple[str, ...] = ()
    problem: str | None = None


Resolve = Callable[[str], DnsAnswer | None]
"""Look an FQDN up; None when there are no resolvers to ask."""


def site_documents(read: ImportRead, sites: Iterable[str], resolve: Resolve) -> list[SiteDocument]:
    """One document per site in ``sites`` (live names), with servers, array and balancer."""
    estate = read.live.estate
    documents = [_servers(estate.sites[model.key(name)]) for name in sites]
    declared = {srv.key: srv for doc in documents for srv in doc.servers}
    for doc in documents:
        _array(doc, estate, read, declared, resolve)
    _autodiscover_not_array(documents)
    return documents


# --- servers ------------------------------------------------------------------------------


def _servers(site: model.Site) -> SiteDocument:
    doc = SiteDocument(site=site.name)
    for server in sorted(site.servers, key=lambda s: (s.key, s.name)):
        name = scalar(server.name)
        major = model.exchange_major(server.version)
        if major is not None and major >= 15:
            doc.notes.append(
                Note(
                    Section.SERVERS,
                    f"{name} runs Exchange 2013 or later ({scalar(server.version or '')}): never "
                    "a member of an Exchange 2010 CAS array, and casdesired manages 2010 only, "
                    "so it is not declared (the plan notes it: exchange-2013-coexistence).",
                    "exchange-2013-server",
                    server.name,
                )
            )
            continue
        if not is_fqdn(server.fqdn.strip()):
            doc.notes.append(
                Note(
                    Section.SERVERS,
                    f"{name} is not declared: its FQDN {scalar(server.fqdn)} is not a DNS name "
                    "validate accepts.",
                    "server-not-declared",
                    server.name,
                )
            )
            continue
        doc.servers.append(_server_entry(doc, server))
    return doc


def _server_entry(doc: SiteDocument, server: model.CasServer) -> ServerEntry:
    uri = server.autodiscover_internal_uri
    if uri is not None and url_host(uri) is None:
        doc.notes.append(
            Note(
                Section.SERVERS,
                f"{scalar(server.name)}: its Autodiscover internal URI {scalar(uri)} is not an "
                "http(s) URL validate accepts, so it is not managed here.",
                "autodiscover-not-managed",
                server.name,
            )
        )
        uri = None
    scope = server.autodiscover_site_scope
    if scope is not None and any(not s.strip() for s in scope):
        doc.notes.append(
            Note(
                Section.SERVERS,
                f"{scalar(server.name)}: its Autodiscover site scope "
                f"{', '.join(scalar(s) for s in scope)} holds a blank entry, which YAML here "
                "cannot declare; the site scope is not managed.",
                "autodiscover-not-managed",
                server.name,
            )
        )
        scope = None
    return ServerEntry(
        name=server.name,
        fqdn=server.fqdn,
        internal_uri=uri,
        site_scope=tuple(scope) if scope is not None else None,
    )


def _autodiscover_not_array(documents: list[SiteDocument]) -> None:
    """An Autodiscover host that is an array FQDN is validate's error: leave it unmanaged."""
    arrays = {model.key(d.array.fqdn): d.array for d in documents if d.array is not None}
    for doc in documents:
        for index, server in enumerate(doc.servers):
            host = url_host(server.internal_uri or "")
            if host is None or model.key(host) not in arrays:
                continue
            doc.notes.append(
                Note(
                    Section.SERVERS,
                    f"{scalar(server.name)}: its Autodiscover internal URI "
                    f"{scalar(server.internal_uri or '')} names the array FQDN "
                    f"{scalar(arrays[model.key(host)].fqdn)}, so Outlook Anywhere clients connect "
                    "slowly (validate: array-fqdn-is-autodiscover); its URI is not managed here "
                    "until it names an Autodiscover host of its own.",
                    "autodiscover-not-managed",
                    server.name,
                )
            )
            doc.servers[index] = ServerEntry(
                server.name, server.fqdn, None, server.site_scope
            )


# --- the array ----------------------------------------------------------------------------


def _array(
    doc: SiteDocument,
    estate: model.Estate,
    read: ImportRead,
    declared: dict[str, ServerEntry],
    resolve: Resolve,
) -> None:
    site = estate.sites[doc.key]
    primary = site.array
    groups = _clusters_of(doc, read)
    for other in sorted(
        (a for a in estate.arrays.values() if model.key(a.site) == doc.key and a is not primary),
        key=lambda a: a.key,
    ):
        doc.notes.append(
            Note(
                Section.ARRAY,
                f"array {scalar(other.name)} ({scalar(other.fqdn)}) is a second array in this "
                "site; casdesired declares one array per site, so it is not declared and the "
                "databases bound to it are left out.",
                "array-not-declared",
                other.fqdn,
            )
        )
    if primary is None:
        for group in groups:
            doc.notes.append(_unmatched(group, "this site has no CAS array"))
        return
    problem = _undeclarable(primary, declared)
    if problem is not None:
        doc.notes.append(
            Note(
                Section.ARRAY,
                f"array {scalar(primary.name)} ({scalar(primary.fqdn)}) is not declared: "
                f"{problem}. The databases bound to it are left out.",
                "array-not-declared",
                primary.fqdn,
            )
        )
        for group in groups:
            doc.notes.append(_unmatched(group, "the site's array is not declared"))
        return
    balancer, todo = _load_balancer(doc, primary, groups, resolve)
    doc.array = ArrayEntry(
        name=primary.name, fqdn=primary.fqdn, load_balancer=balancer, todo=todo
    )


def _undeclarable(array: model.CasArray, declared: dict[str, ServerEntry]) -> str | None:
    """Why validate would refuse to declare this live array as it is, or None."""
    if any(c.isspace() for c in array.name):
        return "its name holds a space, so Exchange cannot address it by name (rename it)"
    if len(array.name) > ARRAY_NAME_MAX:
        return f"its name is longer than {ARRAY_NAME_MAX} characters"
    if not is_fqdn(array.fqdn.strip()):
        return "its FQDN is not a DNS name validate accepts"
    if model.key(array.name) in declared:
        return "its name is a server's name"
    if any(model.key(s.fqdn) == array.key for s in declared.values()):
        return "its FQDN is a server's FQDN, so clients pin to that server"
    return None


def _clusters_of(doc: SiteDocument, read: ImportRead) -> list[list[Cluster]]:
    """The distinct NLB clusters the site's CAS servers are nodes of, each as read on each of
    its hosts, in a stable order."""
    groups: dict[tuple[str, str], list[Cluster]] = {}
    hosts = {model.key(s.fqdn) for s in read.live.estate.sites[doc.key].servers}
    for host, cluster in sorted(read.clusters.items()):
        if host in hosts:
            groups.setdefault(cluster.identity, []).append(cluster)
    return [groups[k] for k in sorted(groups)]


def _load_balancer(
    doc: SiteDocument, array: model.CasArray, groups: list[list[Cluster]], resolve: Resolve
) -> tuple[LoadBalancerEntry, str | None]:
    members_here = {s.key for s in doc.servers}
    candidates = [g for g in groups if any(n.key in members_here for n in g[0].nodes)]
    answer = resolve(array.fqdn)
    addresses = {model.key(a) for a in answer.addresses} if answer is not None else set()
    matching = [g for g in candidates if model.key(g[0].vip) in addresses] if addresses else (
        candidates
    )
    chosen = matching[0] if len(matching) == 1 else None
    for group in groups:
        if group is chosen:
            continue
        if group not in candidates:
            why = "none of its nodes is an Exchange 2010 Client Access server of this site"
        elif group in matching:
            why = "more than one cluster could be the array's, and DNS does not tell which"
        else:
            shown = ", ".join(answer.addresses) if answer is not None else ""
            why = f"the array FQDN resolves to {shown}, not to this cluster's VIP"
        doc.notes.append(_unmatched(group, why))
    if chosen is None:
        return _external(array, answer, many=len(matching) > 1)
    balancer, todo = _nlb(doc, chosen, members_here)
    if todo is not None:
        return LoadBalancerEntry("external", None), todo
    if answer is not None and (answer.problem or addresses != {model.key(balancer.vip or "")}):
        said = answer.problem or f"it resolves to {', '.join(answer.addresses)}"
        doc.notes.append(
            Note(
                Section.ARRAY,
                f"DNS does not resolve {scalar(array.fqdn)} to only the NLB VIP {balancer.vip} "
                f"({said}): the plan reports it (docs/dns.md).",
                "dns-mismatch",
                array.fqdn,
            )
        )
    return balancer, None


def _nlb(
    doc: SiteDocument, group: list[Cluster], members_here: set[str]
) -> tuple[LoadBalancerEntry, str | None]:
    """The array's NLB balancer as the cluster reports it, read on the member that becomes its
    cluster host (the plan reads the cluster there); or why it cannot be declared."""
    servers = {model.key(s.fqdn): s for s in doc.servers}
    usable = [
        (c, node)
        for c in group
        if model.key(c.host) in servers
        and (node := c.own_node()) is not None
        and node.key in members_here
    ]
    first = usable[0][0] if usable else group[0]
    members = tuple(n.server for n in first.nodes if n.key in members_here)
    for node in first.nodes:
        if node.key not in members_here:
            doc.notes.append(
                Note(
                    Section.ARRAY,
                    f"{scalar(node.server)}, a node of NLB cluster {scalar(first.name)}, is not an "
                    "Exchange 2010 Client Access server declared in this site, so it is not a "
                    "member here (the plan lists it as unmanaged).",
                    "nlb-node-not-member",
                    node.server,
                )
            )
    if not usable:
        return LoadBalancerEntry("nlb", None), (
            f"NLB cluster {scalar(first.name)} (VIP {scalar(first.vip)}) answers on none of "
            "its members as one of its own nodes, so its cluster host is unknown: check the "
            "cluster, then declare it (type nlb with cluster_host, interface and members) or "
            "an external balancer. Write its VIP below (validate reports this line until then)."
        )
    host, node = usable[0]
    interface = node.interface or next((n.interface for n in host.nodes if n.interface), None)
    if interface is None:
        return LoadBalancerEntry("nlb", None), (
            f"NLB cluster {scalar(host.name)} (VIP {scalar(host.vip)}) reports no interface "
            "name for its nodes: declare it (type nlb with cluster_host, interface and "
            "members) or an external balancer. Write its VIP below (validate reports this "
            "line until then)."
        )
    return (
        LoadBalancerEntry(
            type="nlb",
            vip=host.vip,
            cluster_host=servers[model.key(host.host)].fqdn,
            interface=interface,
            members=members,
        ),
        None,
    )


def _external(
    array: model.CasArray, answer: DnsAnswer | None, *, many: bool
) -> tuple[LoadBalancerEntry, str | None]:
    """An external balancer at the one address DNS gives, or a TODO saying why not."""
    fqdn = scalar(array.fqdn)
    if answer is not None and len(answer.addresses) == 1 and not many:
        return LoadBalancerEntry("external", answer.addresses[0]), None
    if many:
        why = "more than one Windows NLB cluster of this site could be its balancer"
    elif answer is None:
        why = (
            f"no Windows NLB cluster of this site's CAS servers matches it, and no DNS resolver "
            f"was given (--resolver) to look {fqdn} up"
        )
    elif answer.problem:
        why = f"no Windows NLB cluster matches it, and DNS says: {answer.problem}"
    else:
        why = (
            f"no Windows NLB cluster matches it, and DNS gives {fqdn} several addresses "
            f"({', '.join(answer.addresses)})"
        )
    return (
        LoadBalancerEntry("external", None),
        f"{why}. Write the load balancer's VIP below (validate reports this line until then).",
    )


def _unmatched(group: list[Cluster], why: str) -> Note:
    cluster = group[0]
    nodes = ", ".join(scalar(n.server) for n in cluster.nodes) or "none"
    return Note(
        Section.ARRAY,
        f"NLB cluster {scalar(cluster.name)} (VIP {scalar(cluster.vip)}, nodes {nodes}) is not "
        f"declared: {why}.",
        "nlb-cluster-unmatched",
        cluster.name,
    )
