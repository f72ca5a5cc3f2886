"""Reading what import needs: the organisation as plan reads it, every mailbox, every NLB cluster.

One command execution, whatever the organisation's size: one request holding

1. the plan's own read (``casdesired.live.invocations``: servers, CAS settings, arrays,
   databases);
2. Windows NLB (``Get-NlbCluster``, ``Get-NlbClusterNode``) fanned out over the Client Access
   servers the read finds (``for_each``: one run per object of ``Get-ClientAccessServer``, on
   its ``Fqdn``, on the server itself, as plan reads a cluster host; ids
   ``import:nlb-cluster@<fqdn>``, :mod:`casdesired.agent.fanout`), each run allowed to fail
   alone — unless ``--no-nlb``;
3. the whole organisation's mailbox count per database
   (``casdesired.live.mailboxes.count_all_invocation``), last, so that its failure stops
   nothing else — unless ``--no-mailbox-count``.

Plan reads NLB only on the cluster hosts its YAML declares; import has no YAML, so it asks
every CAS the read finds. The fan-out cannot tell a server's version or site (Get-ClientAccess-
Server returns neither), so it runs on every CAS, and what Exchange 2013+ servers and servers
outside ``--site`` answer is ignored afterwards, whatever it is. On the others, a server that is
simply not in a cluster is no error: Windows says it "is not a member of an NLB cluster" (and a
server without the NLB feature has no NLB module to load). Any other failure is: a cluster left
unread would be written as "no cluster" and the first plan would differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from casdesired import model
from casdesired.agent import fanout, protocol
from casdesired.errors import ConfigError, ReadFailed
from casdesired.live.convert import live_state_from_response, site_name
from casdesired.live.invocations import CAS, NLB_MODULE, SERVERS, read_invocations
from casdesired.live.mailboxes import count_all_from_response, count_all_invocation
from casdesired.live.state import LiveState
from casdesired.transport.winrm import AgentClient

NOT_IN_A_CLUSTER = "is not a member of an nlb cluster"
"""What Windows' NLB cmdlets say (lower-cased) on a host that is in no cluster."""
NLB_CLUSTER = "import:nlb-cluster"
NLB_NODES = "import:nlb-nodes"
"""The fanned-out NLB reads: their runs' results are ``<id>@<the CAS server's Fqdn>``."""
NLB_HINT = (
    "import reads Windows NLB on every Client Access server; if no site uses Windows NLB, "
    "run it with --no-nlb"
)


@dataclass(frozen=True)
class ExchangeServer:
    """Any Exchange server (not only CAS): where databases live, and its version."""

    name: str
    fqdn: str
    site: str
    version: str

    @property
    def key(self) -> str:
        return model.key(self.name)

    @property
    def newer_than_2010(self) -> bool:
        major = model.exchange_major(self.version)
        return major is not None and major >= 15


@dataclass(frozen=True)
class Cluster:
    """The NLB cluster one host answered for, as that host reported it."""

    host: str
    """The FQDN it was read on."""
    name: str
    vip: str
    nodes: tuple[model.NlbNode, ...]

    @property
    def identity(self) -> tuple[str, str]:
        """The same cluster read on two of its nodes gives the same name and VIP."""
        return model.key(self.name), model.key(self.vip)

    def own_node(self) -> model.NlbNode | None:
        """The node that is the host itself (whose interface the plan compares)."""
        label = model.key(self.host).split(".", 1)[0]
        return next((n for n in self.nodes if n.key.split(".", 1)[0] == label), None)


@dataclass
class ImportRead:
    """Everything import read, and how."""

    live: LiveState
    exchange_servers: dict[str, ExchangeServer]
    """Every Exchange server by key (CAS or not, any version)."""
    mailboxes: dict[str, int] | None = None
    """Mailboxes per database key; None when not counted (``mailbox_problem`` says why)."""
    mailbox_problem: str | None = None
    clusters: dict[str, Cluster] = field(default_factory=dict)
    """By ``model.key(host)``: the cluster each host read is a node of (absent: none)."""
    nlb_hosts: tuple[str, ...] = ()
    """The hosts NLB was read on (empty with ``--no-nlb``)."""
    no_nlb_module: tuple[str, ...] = ()
    """Hosts without the NLB PowerShell module: no NLB feature, so in no cluster."""
    executions: int = 0
    """The command executions the read took: one (the module docstring)."""


Progress = Callable[[str], None]


def read_for_import(
    client: AgentClient,
    *,
    sites: Iterable[str] | None = None,
    mailboxes: bool = True,
    nlb: bool = True,
    progress: Progress | None = None,
) -> ImportRead:
    """Read the organisation for import: one command execution (the module docstring)."""
    say = progress or (lambda _message: None)
    say(f"reading the live organisation through {client.target.url}")
    invocations = read_invocations()
    if nlb:
        invocations = (*invocations, *nlb_invocations())
    if mailboxes:
        invocations = (*invocations, count_all_invocation())
    executions = client.executions
    request = client.make_request(invocations, modules=(NLB_MODULE,) if nlb else ())
    try:
        response = client.run(request)
    except ReadFailed as exc:
        if nlb and NLB_MODULE.lower() in str(exc).lower():  # the endpoint cannot load NLB's
            raise ReadFailed(f"{exc} — {NLB_HINT}") from None
        raise
    result = ImportRead(
        live=live_state_from_response(response),
        exchange_servers=_exchange_servers(response),
        executions=client.executions - executions,
    )
    if mailboxes:
        try:
            result.mailboxes = count_all_from_response(response)
        except ReadFailed as exc:  # the files are right without it; the summary says so
            result.mailbox_problem = str(exc)
    else:
        result.mailbox_problem = "not counted (--no-mailbox-count)"
    scope = sites_in_scope(result.live, sites)
    hosts = nlb_candidates(result.live, scope)
    e = result.live.estate
    say(f"read {len(e.servers)} CAS servers, {len(e.arrays)} arrays, {len(e.databases)} databases")
    if nlb and hosts:
        say(f"read Windows NLB on {len(hosts)} Client Access server(s) of the sites imported")
        result.nlb_hosts = tuple(hosts)
        result.clusters, result.no_nlb_module = clusters_from_response(response, hosts)
    return result


def sites_in_scope(live: LiveState, sites: Iterable[str] | None) -> list[str]:
    """The live sites' names import covers (all, or those named; an unknown one is an error)."""
    known = {k: s.name for k, s in live.estate.sites.items()}
    if sites is None:
        return sorted(known.values(), key=model.key)
    chosen: dict[str, str] = {}
    for name in sites:
        if model.key(name) not in known:
            listed = ", ".join(sorted(known.values(), key=model.key)) or "none"
            raise ConfigError(f"unknown site {name!r}: Exchange reports these sites: {listed}")
        chosen.setdefault(model.key(name), known[model.key(name)])
    return sorted(chosen.values(), key=model.key)


def nlb_candidates(live: LiveState, sites: Iterable[str]) -> list[str]:
    """The FQDNs of the Exchange 2010 CAS servers of ``sites``: where NLB is read."""
    wanted = {model.key(s) for s in sites}
    hosts = [
        server.fqdn
        for server in live.estate.servers.values()
        if model.key(server.site) in wanted and (model.exchange_major(server.version) or 14) < 15
    ]
    return sorted(dict.fromkeys(hosts), key=model.key)


def nlb_invocations() -> tuple[protocol.Invocation, ...]:
    """Get-NlbCluster and Get-NlbClusterNode on every CAS server the read finds (a fan-out over
    Get-ClientAccessServer, on each one's Fqdn), each run allowed to fail alone."""
    on_each_cas = fanout.ForEach(invocation=CAS, computer="Fqdn")
    return (
        protocol.Invocation(
            NLB_CLUSTER,
            "Get-NlbCluster",
            properties=("Name", "IPAddress", "SubnetMask", "Mode"),
            on_error="continue",
            for_each=on_each_cas,
        ),
        protocol.Invocation(
            NLB_NODES,
            "Get-NlbClusterNode",
            properties=("Name", "State", "InterfaceName"),
            on_error="continue",
            for_each=on_each_cas,
        ),
    )


def clusters_from_response(
    response: protocol.Response, hosts: Iterable[str]
) -> tuple[dict[str, Cluster], tuple[str, ...]]:
    """The cluster each of ``hosts`` is a node of, and the hosts without the NLB module; what
    other servers answered is not looked at.

    "Not a member of an NLB cluster" (and no NLB module at all) means no cluster; any other
    failure is a :class:`ReadFailed` naming the host.
    """
    cluster_runs = _by_host(response, NLB_CLUSTER)
    node_runs = _by_host(response, NLB_NODES)
    clusters: dict[str, Cluster] = {}
    no_module: list[str] = []
    for host in hosts:
        cluster = _result(cluster_runs, host, f"the NLB cluster on {host}")
        if not cluster.ok:
            message = cluster.error.message if cluster.error else "no error message"
            if NOT_IN_A_CLUSTER in message.lower():
                continue
            if _module_missing(message):
                no_module.append(host)
                continue
            raise ReadFailed(
                f"could not read the NLB cluster on {host}: {message} — import reads Windows NLB "
                "on every Client Access server of the sites it imports; leave this server's site "
                "out (--site), or run with --no-nlb if no site uses Windows NLB"
            )
        if not cluster.objects:
            continue
        found = cluster.objects[0]
        nodes_read = _result(node_runs, host, f"the NLB nodes of {host}")
        if not nodes_read.ok:
            message = nodes_read.error.message if nodes_read.error else "no error message"
            raise ReadFailed(f"could not read the NLB nodes of {host}: {message}")
        nodes = sorted(
            (
                model.NlbNode(
                    server=_text(obj, "Name", f"an NLB node of {host}"),
                    interface=_optional(obj, "InterfaceName"),
                    state=_optional(obj, "State"),
                )
                for obj in nodes_read.objects
            ),
            key=lambda n: n.key,
        )
        clusters[model.key(host)] = Cluster(
            host=host,
            name=_text(found, "Name", f"the NLB cluster on {host}"),
            vip=_text(found, "IPAddress", f"the NLB cluster on {host}"),
            nodes=tuple(nodes),
        )
    return clusters, tuple(no_module)


def _module_missing(message: str) -> bool:
    lowered = message.lower()
    return NLB_MODULE.lower() in lowered and "was not loaded" in lowered


def _by_host(response: protocol.Response, invocation_id: str) -> dict[str, protocol.Result]:
    """The runs of a fanned-out read by ``model.key`` of the computer each ran on."""
    runs = fanout.results(response, invocation_id)
    return {model.key(computer): result for computer, result in reversed(runs.items())}


def _result(runs: Mapping[str, protocol.Result], host: str, what: str) -> protocol.Result:
    result = runs.get(model.key(host))
    if result is None:
        raise ReadFailed(
            f"could not read {what}: the agent returned no result for it (it stopped early); "
            "nothing is taken for absent"
        )
    return result


def _text(obj: Mapping[str, Any], name: str, what: str) -> str:
    value = obj.get(name) if isinstance(obj, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        raise ReadFailed(f"could not read {what}: it has no {name}")
    return value


def _optional(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) and value.strip() else None


def _exchange_servers(response: protocol.Response) -> dict[str, ExchangeServer]:
    """Every server Get-ExchangeServer returned (already checked by the live conversion)."""
    result = response.result(SERVERS)
    servers: dict[str, ExchangeServer] = {}
    for obj in result.objects if result is not None else ():
        server = ExchangeServer(
            name=str(obj["Name"]),
            fqdn=str(obj["Fqdn"]),
            site=site_name(str(obj["Site"])),
            version=str(obj["AdminDisplayVersion"]),
        )
        servers[server.key] = server
    return servers
