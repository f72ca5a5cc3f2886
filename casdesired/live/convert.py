"""Checking and converting an agent's answer to a read into the shared model.

Every object is checked (a missing or malformed property is a :class:`ReadFailed` naming the
object and what it lacks), then converted: a partial read is never taken for "absent".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from casdesired import model
from casdesired.agent import protocol
from casdesired.errors import ReadFailed
from casdesired.live.invocations import (
    ARRAYS,
    CAS,
    DATABASES,
    SERVERS,
    describe_read,
    nlb_cluster_id,
    nlb_nodes_id,
    read_invocations,
    unique_hosts,
)
from casdesired.live.state import LiveState


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


def site_name(canonical: str) -> str:
    """``contoso.local/Configuration/Sites/HQ`` → ``HQ``."""
    return canonical.rstrip("/").rsplit("/", 1)[-1]


def live_state_from_response(
    response: protocol.Response, nlb_hosts: Iterable[str] = ()
) -> LiveState:
    """Check and convert the results of :func:`read_invocations` into a :class:`LiveState`."""
    hosts = unique_hosts(nlb_hosts)
    # In invocation order, so the error names the read that failed, not one it prevented.
    for invocation in read_invocations(hosts):
        _Objects(response, invocation.id, describe_read(invocation.id))

    servers = _Objects(response, SERVERS, describe_read(SERVERS))
    exchange: dict[str, tuple[str, str, str]] = {}  # key → (name, site, version)
    roles: dict[str, str] = {}
    for obj in servers.objects():
        name = servers.text(obj, "Name") or ""
        servers.text(obj, "Fqdn")
        site = site_name(servers.text(obj, "Site") or "")
        version = servers.text(obj, "AdminDisplayVersion") or ""
        exchange[model.key(name)] = (name, site, version)
        role = obj.get("ServerRole")  # only for messages: never a reason to fail the read
        roles[model.key(name)] = role if isinstance(role, str) else ""

    cas = _Objects(response, CAS, describe_read(CAS))
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

    arrays_read = _Objects(response, ARRAYS, describe_read(ARRAYS))
    arrays: dict[str, model.CasArray] = {}
    for obj in arrays_read.objects():
        fqdn = arrays_read.text(obj, "Fqdn") or ""
        site = site_name(arrays_read.text(obj, "Site") or "")
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
    dbs = _Objects(response, DATABASES, describe_read(DATABASES))
    out = []
    for obj in dbs.objects():
        name = dbs.text(obj, "Name") or ""
        out.append(
            model.DatabaseBinding(
                database=name,
                rpc_client_access_server=dbs.text(obj, "RpcClientAccessServer", required=False)
                or "",
                server=dbs.text(obj, "Server", required=False),
            )
        )
    return out


def _read_nlb(response: protocol.Response, hosts: list[str]) -> dict[str, model.LoadBalancer]:
    clusters: dict[str, model.LoadBalancer] = {}
    for host in hosts:
        cluster = _Objects(response, nlb_cluster_id(host), f"the NLB cluster on {host}")
        found = cluster.objects()
        if not found:
            continue  # no cluster answers there: the plan reports it, nothing is deleted
        vip = cluster.text(found[0], "IPAddress") or ""
        nodes_read = _Objects(response, nlb_nodes_id(host), f"the NLB nodes of {host}")
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
