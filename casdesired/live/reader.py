"""Reading the live organisation: one request, one command execution, whatever the size.

Everything is read by one agent run (servers, CAS settings, arrays, databases, mailbox counts
per database, and each NLB cluster with its nodes), then checked and converted to the shared
model. A failed invocation, a missing result or a malformed object is a :class:`ReadFailed`
naming what could not be read: a partial read is never taken for "absent", so no plan can
delete or recreate something because a read failed.

:func:`read_invocations` and :func:`live_state_from_response` are public so that ``apply`` can
put the read into the same request as its own work (e.g. taking a lock).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from casdesired import model
from casdesired.agent import protocol
from casdesired.errors import ReadFailed
from casdesired.transport.winrm import AgentClient

NLB_MODULE = "NetworkLoadBalancingClusters"

SERVERS = "read:servers"
CAS = "read:client-access"
ARRAYS = "read:arrays"
DATABASES = "read:databases"
MAILBOXES = "read:mailbox-counts"



def _describe(invocation_id: str) -> str:
    """What an invocation of a read reads, for messages."""
    fixed = {
        SERVERS: "the Exchange servers (Get-ExchangeServer)",
        CAS: "the Client Access servers (Get-ClientAccessServer)",
        ARRAYS: "the Client Access arrays (Get-ClientAccessArray)",
        DATABASES: "the mailbox databases (Get-MailboxDatabase)",
        MAILBOXES: "the mailbox counts (Get-Mailbox -ResultSize Unlimited)",
    }
    if invocation_id in fixed:
        return fixed[invocation_id]
    kind, _, host = invocation_id.removeprefix("read:").partition(":")
    return f"the NLB cluster on {host}" if kind == "nlb-cluster" else f"the NLB nodes of {host}"


def _nlb_cluster_id(host: str) -> str:
    return f"read:nlb-cluster:{model.key(host)}"


def _nlb_nodes_id(host: str) -> str:
    return f"read:nlb-nodes:{model.key(host)}"


@dataclass
class LiveState:
    """The organisation as Exchange (and Windows NLB) reported it in one read."""

    estate: model.Estate
    nlb: dict[str, model.LoadBalancer] = field(default_factory=dict)
    """NLB clusters read, keyed by ``model.key(cluster host)``."""
    host: str = ""
    """The Windows host the agent ran on."""
    exchange_version: str | None = None
    """AdminDisplayVersion of the Exchange server the agent talked to."""
    exchange_roles: dict[str, str] = field(default_factory=dict)
    """``ServerRole`` of every Exchange server by server key, CAS or not: lets the plan say a
    declared server lacks the Client Access role instead of "unknown". Not fingerprinted: the
    servers that matter are in ``estate``."""

    def fingerprint(self) -> str:
        """sha256 of a canonical JSON of everything read (stable whatever the read order)."""
        text = json.dumps(_canonical(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(state: LiveState) -> dict[str, Any]:
    e = state.estate

    def lb(b: model.LoadBalancer | None) -> Any:
        if b is None:
            return None
        return {
            "kind": b.kind.value,
            "vip": b.vip,
            "cluster_host": b.cluster_host,
            "interface": b.interface,
            "nodes": [[n.server, n.interface, n.state] for n in b.nodes],
        }

    return {
        "sites": sorted(e.sites),
        "servers": {
            k: [
                s.name,
                s.fqdn,
                s.site,
                s.autodiscover_internal_uri,
                list(s.autodiscover_site_scope or ()),
                s.version,
            ]
            for k, s in e.servers.items()
        },
        "arrays": {
            k: [a.fqdn, a.name, a.site, sorted(a.members), lb(a.load_balancer)]
            for k, a in e.arrays.items()
        },
        "databases": {
            k: [d.database, d.rpc_client_access_server, d.server, d.mailbox_count]
            for k, d in e.databases.items()
        },
        "nlb": {k: lb(b) for k, b in state.nlb.items()},
    }


def _unique_hosts(nlb_hosts: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for host in nlb_hosts:
        seen.setdefault(model.key(host), host)
    return list(seen.values())


def read_invocations(nlb_hosts: Iterable[str] = ()) -> tuple[protocol.Invocation, ...]:
    """The invocations of a full read; each stops the run if it fails."""
    invocations = [
        protocol.Invocation(
            SERVERS,
            "Get-ExchangeServer",
            properties=("Name", "Fqdn", "Site", "AdminDisplayVersion", "ServerRole"),
        ),
        protocol.Invocation(
            CAS,
            "Get-ClientAccessServer",
            properties=(
                "Name",
                "Fqdn",
                "AutoDiscoverServiceInternalUri",
                "AutoDiscoverSiteScope",
            ),
        ),
        protocol.Invocation(
            ARRAYS, "Get-ClientAccessArray", properties=("Name", "Fqdn", "Site", "Members")
        ),
        protocol.Invocation(
            DATABASES,
            "Get-MailboxDatabase",
            properties=("Name", "Server", "RpcClientAccessServer"),
        ),
        # Counted in the agent: one number per database, not one object per mailbox. Without
        # -ResultSize Unlimited Exchange stops at 1,000 and the counts would be wrong.
        protocol.Invocation(
            MAILBOXES,
            "Get-Mailbox",
            parameters={"ResultSize": "Unlimited"},
            group_by="Database",
        ),
    ]
    for host in _unique_hosts(nlb_hosts):
        invocations.append(
            protocol.Invocation(
                _nlb_cluster_id(host),
                "Get-NlbCluster",
                parameters={"HostName": host},
                properties=("Name", "IPAddress", "SubnetMask", "Mode"),
            )
        )
        invocations.append(
            protocol.Invocation(
                _nlb_nodes_id(host),
                "Get-NlbClusterNode",
                parameters={"HostName": host},
                properties=("Name", "State", "InterfaceName"),
            )
        )
    return tuple(invocations)


def read_modules(nlb_hosts: Iterable[str] = ()) -> tuple[str, ...]:
    """PowerShell modules a read needs (2.0 does not auto-load NLB's)."""
    return (NLB_MODULE,) if _unique_hosts(nlb_hosts) else ()


def read_live(
    client: AgentClient,
    *,
    nlb_hosts: Iterable[str],
    progress: Callable[[str], None] | None = None,
) -> LiveState:
    """Read the whole live organisation in ONE command execution."""
    hosts = _unique_hosts(nlb_hosts)
    say = progress or (lambda _message: None)
    say(f"reading the live organisation through {client.target.url}")
    request = client.make_request(read_invocations(hosts), modules=read_modules(hosts))
    response = client.run(request)
    state = live_state_from_response(response, hosts)
    e = state.estate
    say(
        f"read {len(e.servers)} servers, {len(e.arrays)} arrays, {len(e.databases)} databases "
        f"and {len(state.nlb)} NLB clusters from {state.host or client.target.url}"
    )
    return state


# --- conversion -------------------------------------------------------------------------------


class _Objects:
    """The checked objects of one invocation's result (or a ReadFailed saying why not)."""

    def __init__(self, response: protocol.Response, invocation_id: str, what: str) -> None:
        self.what = what
        result = response.result(invocation_id)
        if result is None:
            raise ReadFailed(
                f"could not read {what}: the agent returned no result for it (an earlier read "
                "failed or the agent stopped); nothing is taken for absent"
            )
        if not result.ok:
            error = result.error
            message = error.message if error else "no error message"
            category = f" [{error.category}]" if error and error.category else ""
            raise ReadFailed(f"could not read {what}: {message}{category}")
        self.result = result

    def objects(self) -> tuple[Mapping[str, Any], ...]:
        for index, obj in enumerate(self.result.objects):
            if not isinstance(obj, Mapping):
                raise ReadFailed(f"could not read {self.what}: object {index + 1} is not an object")
        return self.result.objects

    def text(self, obj: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
        if name not in obj:
            raise self._malformed(obj, f"has no {name}")
        value = obj[name]
        if value is None:
            if required:
                raise self._malformed(obj, f"has an empty {name}")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            raise self._malformed(obj, f"has a {name} that is not text: {value!r}"[:200])
        return value

    def texts(self, obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
        if name not in obj:
            raise self._malformed(obj, f"has no {name}")
        value = obj[name]
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,) if value else ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._malformed(obj, f"has a {name} that is not a list of text")
        return tuple(value)

    def _malformed(self, obj: Mapping[str, Any], problem: str) -> ReadFailed:
        name = obj.get("Name")
        label = f" {name!r}" if isinstance(name, str) else ""
        return ReadFailed(f"could not read {self.what}: an object{label} {problem}")


def _site_name(canonical: str) -> str:
    """``contoso.local/Configuration/Sites/HQ`` → ``HQ``."""
    return canonical.rstrip("/").rsplit("/", 1)[-1]


def live_state_from_response(
    response: protocol.Response, nlb_hosts: Iterable[str] = ()
) -> LiveState:
    """Check and convert the results of :func:`read_invocations` into a :class:`LiveState`."""
    hosts = _unique_hosts(nlb_hosts)
    # In invocation order, so the error names the read that failed, not one it prevented.
    for invocation in read_invocations(hosts):
        _Objects(response, invocation.id, _describe(invocation.id))

    servers = _Objects(response, SERVERS, _describe(SERVERS))
    exchange: dict[str, tuple[str, str, str]] = {}  # key → (name, site, version)
    roles: dict[str, str] = {}
    for obj in servers.objects():
        name = servers.text(obj, "Name") or ""
        servers.text(obj, "Fqdn")
        site = _site_name(servers.text(obj, "Site") or "")
        version = servers.text(obj, "AdminDisplayVersion") or ""
        exchange[model.key(name)] = (name, site, version)
        role = obj.get("ServerRole")  # only for messages: never a reason to fail the read
        roles[model.key(name)] = role if isinstance(role, str) else ""

    cas = _Objects(response, CAS, _describe(CAS))
    cas_servers: dict[str, model.CasServer] = {}
    for obj in cas.objects():
        name = cas.text(obj, "Name") or ""
        known = exchange.get(model.key(name))
        if known is None:
            raise ReadFailed(
                f"could not read the Client Access servers: {name!r} is not among the Exchange "
                "servers Get-ExchangeServer returned"
            )
        cas_servers[model.key(name)] = model.CasServer(
            name=name,
            fqdn=cas.text(obj, "Fqdn") or "",
            site=known[1],
            autodiscover_internal_uri=cas.text(
                obj, "AutoDiscoverServiceInternalUri", required=False
            ),
            autodiscover_site_scope=cas.texts(obj, "AutoDiscoverSiteScope"),
            version=known[2],
        )
    # Exchange 2013+ servers of any role stay visible, so the plan can refuse to manage them.
    for obj in servers.objects():
        name = str(obj["Name"])
        k = model.key(name)
        _, site, version = exchange[k]
        if k not in cas_servers and (model.exchange_major(version) or 0) >= 15:
            cas_servers[k] = model.CasServer(
                name=name, fqdn=str(obj["Fqdn"]), site=site, version=version
            )

    nlb = _read_nlb(response, hosts)

    arrays_read = _Objects(response, ARRAYS, _describe(ARRAYS))
    arrays: dict[str, model.CasArray] = {}
    for obj in arrays_read.objects():
        fqdn = arrays_read.text(obj, "Fqdn") or ""
        site = _site_name(arrays_read.text(obj, "Site") or "")
        arrays[model.key(fqdn)] = model.CasArray(
            fqdn=fqdn,
            name=arrays_read.text(obj, "Name") or "",
            site=site,
            load_balancer=_cluster_of_site(site, nlb, exchange),
            members=tuple(sorted(arrays_read.texts(obj, "Members"), key=model.key)),
        )

    databases = _read_databases(response)

    site_names: dict[str, str] = {}
    for _, site, _ in exchange.values():
        site_names.setdefault(model.key(site), site)
    for each in arrays.values():
        site_names.setdefault(model.key(each.site), each.site)
    sites = []
    for k, name in sorted(site_names.items()):
        members = sorted(
            (s for s in cas_servers.values() if model.key(s.site) == k), key=lambda s: s.key
        )
        array = next((a for a in arrays.values() if model.key(a.site) == k), None)
        sites.append(model.Site(name=name, servers=tuple(members), array=array))
    estate = model.Estate.build(
        sites=sites,
        databases=sorted(databases, key=lambda d: d.key),
        extra_arrays=arrays.values(),  # a second array in one site must not vanish
    )
    return LiveState(
        estate=estate,
        nlb=nlb,
        host=response.host,
        exchange_version=response.exchange_version,
        exchange_roles=roles,
    )


def _read_databases(response: protocol.Response) -> list[model.DatabaseBinding]:
    dbs = _Objects(response, DATABASES, _describe(DATABASES))
    counts = _Objects(response, MAILBOXES, _describe(MAILBOXES))
    if counts.result.groups is None:
        raise ReadFailed("could not read the mailbox counts: the agent returned no counts")
    per_database: dict[str, int] = {}
    for name, count in counts.result.groups.items():
        k = model.key(name)
        per_database[k] = per_database.get(k, 0) + count
    out = []
    for obj in dbs.objects():
        name = dbs.text(obj, "Name") or ""
        out.append(
            model.DatabaseBinding(
                database=name,
                rpc_client_access_server=dbs.text(obj, "RpcClientAccessServer", required=False)
                or "",
                server=dbs.text(obj, "Server", required=False),
                mailbox_count=per_database.get(model.key(name), 0),
            )
        )
    return out


def _read_nlb(response: protocol.Response, hosts: list[str]) -> dict[str, model.LoadBalancer]:
    clusters: dict[str, model.LoadBalancer] = {}
    for host in hosts:
        cluster = _Objects(response, _nlb_cluster_id(host), f"the NLB cluster on {host}")
        found = cluster.objects()
        if not found:
            continue  # no cluster answers there: the plan reports it, nothing is deleted
        vip = cluster.text(found[0], "IPAddress") or ""
        nodes_read = _Objects(response, _nlb_nodes_id(host), f"the NLB nodes of {host}")
        nodes = []
        for obj in nodes_read.objects():
            nodes.append(
                model.NlbNode(
                    server=nodes_read.text(obj, "Name") or "",
                    interface=nodes_read.text(obj, "InterfaceName", required=False),
                    state=nodes_read.text(obj, "State"),
                )
            )
        nodes.sort(key=lambda n: n.key)
        host_label = model.key(host).split(".", 1)[0]
        own = next((n for n in nodes if n.key.split(".", 1)[0] == host_label), None)
        interface = own or (nodes[0] if nodes else None)
        clusters[model.key(host)] = model.LoadBalancer(
            kind=model.LoadBalancerKind.NLB,
            vip=vip,
            cluster_host=host,
            interface=interface.interface if interface else None,
            nodes=tuple(nodes),
        )
    return clusters


def _cluster_of_site(
    site: str, nlb: dict[str, model.LoadBalancer], exchange: dict[str, tuple[str, str, str]]
) -> model.LoadBalancer | None:
    """The NLB cluster read whose cluster host is a server of ``site`` (the array's balancer)."""
    for cluster in nlb.values():
        label = model.key(cluster.cluster_host or "").split(".", 1)[0]
        known = exchange.get(label)
        if known is not None and model.key(known[1]) == model.key(site):
            return cluster
    return None
