"""Hypothesis strategies for whole Exchange 2010 organisations, as lab state documents.

Sites, Exchange 2010 CAS servers (with Autodiscover settings), a mailbox server per site,
sometimes an Exchange 2013 server, arrays (named from hostile alphabets, as Exchange allows:
no space), Windows NLB clusters (the array's, or in a site without one), DNS records, and
databases bound to an array, to a server, to nothing (orphans), or hosted on Exchange 2013 —
named from every character YAML or a glob gives a meaning to. :class:`Drawn` also says which
databases import must declare, so the round trip can check the plan left exactly the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from casdesired import model

V14 = "Version 14.3 (Build 123.4)"
V15 = "Version 15.0 (Build 1497.2)"
LEGACY_DN = (
    "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/"
    "cn={name}"
)
URI = "https://autodiscover.contoso.local/Autodiscover/Autodiscover.xml"

YAML_WORDS = ["no", "on", "off", "yes", "null", "~", "1e3", "0o17", ".inf", "true", "-", "?"]
HOSTILE = st.one_of(
    st.sampled_from(YAML_WORDS),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/"), max_size=12),
    st.text(st.sampled_from(list(" #:-'\"\\,[]{}*?!&|%@`\t\n\x85ÅЖ日$()a1")), max_size=10),
)
"""Names with quotes, ``$``, ``#``, leading and trailing spaces, line breaks, non-ASCII, words
YAML reads as something else. (No ``/``: Exchange shows a site by its canonical name, where
``/`` separates the parts.)"""
NAME = HOSTILE.filter(lambda n: model.key(n) != "")
SITE_NAME = NAME.filter(lambda n: n == n.strip())
"""AD site names are not padded with spaces (Sites and Services trims them)."""
ARRAY_NAME = st.one_of(
    st.sampled_from(YAML_WORDS),
    st.text(st.sampled_from(list("#:-'\"\\,[]{}*?!&|%@`ÅЖ日$()a1")), min_size=1, max_size=10),
).filter(lambda n: model.key(n) != "" and not any(c.isspace() for c in n))
"""Array names Exchange can address: no whitespace."""


@dataclass
class Drawn:
    """A generated organisation and what import must make of it."""

    state: dict[str, Any]
    declared: set[str] = field(default_factory=set)
    """Database names import must bind (to a declared array or Exchange 2010 CAS)."""
    unmanaged: set[str] = field(default_factory=set)
    """Database names it must leave out (and say so)."""


def _server(name: str, site: str, roles: list[str], version: str = V14) -> dict[str, Any]:
    server: dict[str, Any] = {
        "name": name, "fqdn": f"{name.lower()}.contoso.local", "site": site, "roles": roles,
        "version": version, "interfaces": ["LAN", "NLB"],
    }
    if "ClientAccess" in roles:
        server["autodiscover_internal_uri"] = None
        server["autodiscover_site_scope"] = []
    return server


@st.composite
def organisations(draw: st.DrawFn, base: dict[str, Any]) -> Drawn:
    """A lab state document (``base``: the seed's, for its format and settings)."""
    sites = draw(st.lists(SITE_NAME, min_size=1, max_size=3, unique_by=model.key))
    state: dict[str, Any] = {
        key: base[key] for key in ("format", "version", "seed", "settings", "random")
    }
    servers: list[dict[str, Any]] = []
    arrays: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    records: dict[str, list[str]] = {}
    pointers: list[tuple[dict[str, str], bool]] = []  # (RpcClientAccessServer, declarable)
    hosts: list[tuple[str, bool]] = []  # (mailbox server, runs 2010)
    used_names: set[str] = set()
    for i, site in enumerate(sites):
        cas = [_server(f"S{i}CAS{j}", site, ["ClientAccess", "HubTransport"])
               for j in range(draw(st.integers(0, 3)))]
        for server in cas:
            if draw(st.booleans()):
                server["autodiscover_internal_uri"] = URI
            server["autodiscover_site_scope"] = draw(
                st.lists(st.sampled_from(sites), unique_by=model.key, max_size=2)
            )
            records[server["fqdn"]] = [f"10.{i}.1.{len(records) + 1}"]
            pointers.append(({"kind": "server", "shown": server["fqdn"],
                              "target": server["name"]}, True))
        mailbox = _server(f"S{i}MBX", site, ["Mailbox"])
        hosts.append((mailbox["name"], True))
        servers += [*cas, mailbox]
        used_names |= {model.key(s["name"]) for s in (*cas, mailbox)}
        if draw(st.booleans()):  # Exchange 2013 coexistence
            newer = _server(f"S{i}EX15", site, ["Mailbox", "ClientAccess"], V15)
            servers.append(newer)
            hosts.append((newer["name"], False))
            pointers.append(({"kind": "server", "shown": newer["fqdn"],
                              "target": newer["name"]}, False))
        nodes = [s["name"] for s in cas if draw(st.booleans())]
        if draw(st.booleans()):
            taken = frozenset(used_names)
            name = draw(ARRAY_NAME.filter(lambda n, taken=taken: model.key(n) not in taken))
            used_names.add(model.key(name))
            guid = str(uuid.UUID(int=i + 1))
            fqdn = f"arr{i}.contoso.local"
            arrays.append({
                "fqdn": fqdn, "name": name, "site": site, "guid": guid,
                "legacy_dn": LEGACY_DN.format(name=f"arr{i}"),
                "when_changed": "2012-02-02T16:40:03Z", "when_created": "2012-02-02T16:40:03Z",
            })
            vip = f"10.{i}.0.50" if nodes else f"10.{i}.0.60"
            records[fqdn] = [vip]
            pointers.append(({"kind": "array", "shown": fqdn, "target": guid}, True))
        if nodes:  # the array's cluster, or one in a site without an array
            clusters.append({
                "host": f"{nodes[0].lower()}.contoso.local", "name": f"nlb{i}.contoso.local",
                "ip_address": f"10.{i}.0.50", "subnet_mask": "255.255.255.0",
                "mode": "Unicast",
                "nodes": [{"name": n, "state": "Converged", "interface": "NLB",
                           "priority": p + 1, "drain_until": None}
                          for p, n in enumerate(nodes)],
            })
    endpoint = servers[0]["name"]
    state["organisation"] = {"name": "Contoso", "domain": "contoso.local",
                             "domain_controller": "DC01.contoso.local", "endpoint_host": endpoint}
    state["sites"] = [{"name": s, "guid": str(uuid.UUID(int=1000 + i))}
                      for i, s in enumerate(sites)]
    drawn = Drawn(state)
    databases = []
    for name in draw(st.lists(NAME, max_size=10, unique_by=model.key)):
        host, on_2010 = draw(st.sampled_from(hosts))
        choice = draw(st.one_of(st.none(), st.sampled_from(pointers))) if pointers else None
        pointer, declarable = choice if choice is not None else (None, False)
        databases.append({"name": name, "server": host, "rpc_client_access_server": pointer,
                          "mailboxes": draw(st.integers(0, 50)), "recovery": False})
        (drawn.declared if on_2010 and declarable else drawn.unmanaged).add(name)
    state.update(servers=servers, arrays=arrays, databases=databases, nlb_clusters=clusters,
                 dns_records=records)
    return drawn
