"""The rules across site files: what the schemas cannot say about an organisation.

Each rule has a stable id (``Finding.rule``) so CI output can be filtered and the docs can
list them. Rules read the built model for values and the documents for places; they never stop
at the first problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from casdesired import model
from casdesired.desired.build import SiteFile, _get
from casdesired.desired.syntax import is_fqdn, is_ip, url_host
from casdesired.desired.yamlsource import YamlPath
from casdesired.findings import Finding, Location, Severity

ARRAY_NAME_MAX = 64
"""New-ClientAccessArray -Name takes at most 64 characters."""

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

SiteRule = Callable[[list[SiteFile]], Iterator[Finding]]
SITE_RULES: list[tuple[str, SiteRule]] = []
"""(summary, rule) in the order they run; the summary is what docs/desired-state.md lists."""


def _rule(summary: str) -> Callable[[SiteRule], SiteRule]:
    def register(function: SiteRule) -> SiteRule:
        SITE_RULES.append((summary, function))
        return function

    return register


def _list(data: object, *path: str) -> list[object]:
    value = _get(data, *path)
    return value if isinstance(value, list) else []


def _error(location: Location, rule: str, message: str) -> Finding:
    return Finding.at(location, Severity.ERROR, message, rule)


def _warning(location: Location, rule: str, message: str) -> Finding:
    return Finding.at(location, Severity.WARNING, message, rule)


# --- rules across site files ---------------------------------------------------------------


def check_sites(sites: list[SiteFile]) -> list[Finding]:
    """Every cross-file rule over every site file."""
    found: list[Finding] = []
    for _summary, rule in SITE_RULES:
        found.extend(rule(sites))
    return found


def _present_arrays(sites: list[SiteFile]) -> Iterator[tuple[SiteFile, model.CasArray]]:
    for entry in sites:
        if entry.site.array is not None:
            yield entry, entry.site.array


@_rule("site-duplicate: a site is declared by one file only (so at most one array per site)")
def _sites_unique(sites: list[SiteFile]) -> Iterator[Finding]:
    first: dict[str, SiteFile] = {}
    for entry in sites:
        earlier = first.setdefault(entry.site.key, entry)
        if earlier is not entry:
            yield _error(
                entry.document.location(("site",)),
                "site-duplicate",
                f"site '{entry.site.name}' is already declared in {earlier.document.display}; "
                "one file per site (a site has at most one array)",
            )


@_rule("server-duplicate: a server name or FQDN is declared once in the organisation")
def _servers_unique(sites: list[SiteFile]) -> Iterator[Finding]:
    names: dict[str, model.CasServer] = {}
    fqdns: dict[str, model.CasServer] = {}
    for entry in sites:
        for server in entry.site.servers:
            place = server.source or entry.document.location(())
            for index, value, attr in ((names, server.name, "name"), (fqdns, server.fqdn, "FQDN")):
                earlier = index.setdefault(model.key(value), server)
                if earlier is not server:
                    yield _error(
                        place,
                        "server-duplicate",
                        f"server {attr} '{value}' is already declared at {earlier.source}",
                    )


@_rule("fqdn-syntax / ip-syntax / uri-syntax: FQDNs, VIPs and URIs are well formed")
def _syntax(sites: list[SiteFile]) -> Iterator[Finding]:
    for entry in sites:
        doc = entry.document
        for index, server in enumerate(_list(doc.data, "servers")):
            fqdn = _get(server, "fqdn")
            if isinstance(fqdn, str) and not is_fqdn(fqdn.strip()):
                yield _error(
                    doc.location(("servers", index, "fqdn")),
                    "fqdn-syntax",
                    f"servers[{index}].fqdn is not a valid FQDN: {fqdn!r}",
                )
            uri = _get(server, "autodiscover", "internal_uri")
            if isinstance(uri, str) and url_host(uri) is None:
                yield _error(
                    doc.location(("servers", index, "autodiscover", "internal_uri")),
                    "uri-syntax",
                    f"autodiscover.internal_uri is not an http(s) URL: {uri!r}",
                )
        for where in (("array", "fqdn"), ("array", "load_balancer", "cluster_host")):
            value = _get(doc.data, *where)
            if isinstance(value, str) and not is_fqdn(value.strip()):
                yield _error(
                    doc.location(where),
                    "fqdn-syntax",
                    f"{'.'.join(where)} is not a valid FQDN: {value!r}",
                )
        vip = _get(doc.data, "array", "load_balancer", "vip")
        if isinstance(vip, str) and not is_ip(vip.strip()):
            yield _error(
                doc.location(("array", "load_balancer", "vip")),
                "ip-syntax",
                f"array.load_balancer.vip is not an IP address: {vip!r}",
            )


@_rule("array-name-invalid: an array name has no spaces and at most 64 characters")
def _array_names_addressable(sites: list[SiteFile]) -> Iterator[Finding]:
    for entry, array in _present_arrays(sites):
        place = entry.document.location(
            ("array", "name") if _get(entry.document.data, "array", "name") else ("array", "fqdn")
        )
        if re.search(r"\s", array.name):
            yield _error(
                place,
                "array-name-invalid",
                f"array name '{array.name}' contains a space: Exchange cannot address "
                "such an array by name",
            )
        if len(array.name) > ARRAY_NAME_MAX:
            yield _error(
                place,
                "array-name-invalid",
                f"array name is {len(array.name)} characters; Exchange allows at most "
                f"{ARRAY_NAME_MAX}",
            )


@_rule("array-name-duplicate / array-fqdn-duplicate / array-name-is-server: unique org-wide")
def _arrays_unique(sites: list[SiteFile]) -> Iterator[Finding]:
    names: dict[str, SiteFile] = {}
    fqdns: dict[str, SiteFile] = {}
    servers = {s.key: s for entry in sites for s in entry.site.servers}
    for entry, array in _present_arrays(sites):
        doc = entry.document
        earlier = fqdns.setdefault(array.key, entry)
        if earlier is not entry:
            yield _error(
                doc.location(("array", "fqdn")),
                "array-fqdn-duplicate",
                f"array FQDN '{array.fqdn}' is also used by site "
                f"'{earlier.site.name}' ({earlier.document.display})",
            )
        earlier = names.setdefault(model.key(array.name), entry)
        name_place = doc.location(
            ("array", "name") if _get(doc.data, "array", "name") else ("array", "fqdn")
        )
        if earlier is not entry:
            yield _error(
                name_place,
                "array-name-duplicate",
                f"array name '{array.name}' is also used by site '{earlier.site.name}'",
            )
        if model.key(array.name) in servers:
            # Arrays and servers share one name space in AD: New-ClientAccessArray would fail.
            yield _error(
                name_place,
                "array-name-is-server",
                f"array name '{array.name}' is the name of a server; Exchange keeps "
                "arrays and servers in one name space",
            )


@_rule("array-fqdn-is-server / array-fqdn-is-autodiscover: the array FQDN is its own name")
def _array_fqdn_own(sites: list[SiteFile]) -> Iterator[Finding]:
    servers = {model.key(s.fqdn): s for entry in sites for s in entry.site.servers}
    autodiscover: dict[str, model.CasServer] = {}
    for entry in sites:
        for server in entry.site.servers:
            host = url_host(server.autodiscover_internal_uri or "")
            if host:
                autodiscover.setdefault(model.key(host), server)
    for entry, array in _present_arrays(sites):
        if array.ensure is model.Ensure.ABSENT:
            continue
        place = entry.document.location(("array", "fqdn"))
        if array.key in servers:
            yield _error(
                place,
                "array-fqdn-is-server",
                f"array FQDN '{array.fqdn}' is the FQDN of server "
                f"'{servers[array.key].name}': Outlook clients would pin to that one "
                "server; give the array its own name resolving to the load balancer",
            )
        if array.key in autodiscover:
            yield _error(
                place,
                "array-fqdn-is-autodiscover",
                f"array FQDN '{array.fqdn}' is the Autodiscover host of server "
                f"'{autodiscover[array.key].name}': Outlook Anywhere clients would try "
                "RPC/TCP first and connect slowly",
            )


@_rule("lb-missing / lb-nlb-incomplete / lb-external-nlb-keys: the load balancer is complete")
def _load_balancer_shape(sites: list[SiteFile]) -> Iterator[Finding]:
    for entry, array in _present_arrays(sites):
        doc = entry.document
        lb = _get(doc.data, "array", "load_balancer")
        if array.ensure is model.Ensure.ABSENT:
            continue
        if lb is None:
            yield _error(
                doc.location(("array",), key=True),
                "lb-missing",
                "array needs a load_balancer (type nlb or external, and its vip)",
            )
            continue
        if not isinstance(lb, dict):
            continue
        where: YamlPath = ("array", "load_balancer")
        nlb_keys = ("cluster_host", "interface", "members")
        if lb.get("type") == "nlb":
            missing = [k for k in nlb_keys if k not in lb]
            if missing:
                yield _error(
                    doc.location(where, key=True),
                    "lb-nlb-incomplete",
                    "an nlb load_balancer needs " + ", ".join(missing),
                )
        elif lb.get("type") == "external":
            for k in nlb_keys:
                if k in lb:
                    yield _error(
                        doc.location((*where, k), key=True),
                        "lb-external-nlb-keys",
                        f"'{k}' applies only to type: nlb; casdesired does not drive "
                        "external balancers",
                    )


@_rule("nlb-member-unknown / nlb-member-duplicate / nlb-cluster-host-not-member: NLB members")
def _nlb_members(sites: list[SiteFile]) -> Iterator[Finding]:
    for entry, array in _present_arrays(sites):
        lb = array.load_balancer
        if (
            lb is None
            or lb.kind is not model.LoadBalancerKind.NLB
            or array.ensure is model.Ensure.ABSENT
        ):
            continue
        doc = entry.document
        declared = {s.key: s for s in entry.site.servers}
        members = _get(doc.data, "array", "load_balancer", "members")
        seen: set[str] = set()
        for index, member in enumerate(members if isinstance(members, list) else []):
            if not isinstance(member, str):
                continue
            place = doc.location(("array", "load_balancer", "members", index))
            if model.key(member) in seen:
                yield _error(
                    place, "nlb-member-duplicate", f"NLB member '{member}' is listed twice"
                )
            seen.add(model.key(member))
            if model.key(member) not in declared:
                yield _error(
                    place,
                    "nlb-member-unknown",
                    f"NLB member '{member}' is not a server declared in site '{entry.site.name}'",
                )
        host = lb.cluster_host
        # Without a members list, lb-nlb-incomplete already says what is missing.
        if host is not None and isinstance(members, list):
            member_names = {model.key(declared[m].fqdn) for m in seen if m in declared} | seen
            if model.key(host) not in member_names:
                yield _error(
                    doc.location(("array", "load_balancer", "cluster_host")),
                    "nlb-cluster-host-not-member",
                    f"cluster_host '{host}' is not one of the NLB members",
                )


@_rule("binding-without-array / binding-to-absent-array / binding-unknown-server: targets exist")
def _binding_targets(sites: list[SiteFile]) -> Iterator[Finding]:
    servers = {s.key for entry in sites for s in entry.site.servers}
    for entry in sites:
        array = entry.site.array
        for rule in entry.binding_rules:
            place = rule.source or entry.document.location(())
            if rule.target_kind == "array" and array is None:
                yield _error(
                    place,
                    "binding-without-array",
                    f"site '{entry.site.name}' binds databases to its array but declares no array",
                )
            elif (
                rule.target_kind == "array"
                and array is not None
                and array.ensure is model.Ensure.ABSENT
            ):
                yield _error(
                    place,
                    "binding-to-absent-array",
                    f"databases bind to array '{array.fqdn}', which has ensure: absent; "
                    "bind them elsewhere first",
                )
            elif rule.target_kind == "server" and model.key(rule.target) not in servers:
                yield _error(
                    place, "binding-unknown-server", f"'{rule.target}' is not a declared CAS server"
                )


@_rule("database-bound-twice: each database is named by one binding only")
def _databases_once(sites: list[SiteFile]) -> Iterator[Finding]:
    first: dict[str, tuple[str, Location]] = {}
    for entry in sites:
        doc = entry.document
        places: list[tuple[object, YamlPath]] = []
        names = _get(doc.data, "databases", "names")
        for index, name in enumerate(names if isinstance(names, list) else []):
            places.append((name, ("databases", "names", index)))
        bindings = _get(doc.data, "databases", "server_bindings")
        for index, item in enumerate(bindings if isinstance(bindings, list) else []):
            places.append(
                (_get(item, "database"), ("databases", "server_bindings", index, "database"))
            )
        for name, where in places:
            if not isinstance(name, str):
                continue
            place = doc.location(where)
            site_name, first_place = first.setdefault(model.key(name), (entry.site.name, place))
            if first_place != place:
                also = "this site" if site_name == entry.site.name else f"site '{site_name}'"
                yield _error(
                    place,
                    "database-bound-twice",
                    f"database '{name}' is already bound by {also} at {first_place}",
                )


@_rule("site-without-array (warning): a site with CAS servers has an array, even for one CAS")
def _site_has_array(sites: list[SiteFile]) -> Iterator[Finding]:
    for entry in sites:
        if entry.site.servers and entry.site.array is None and "array" not in entry.document.data:
            yield _warning(
                entry.document.location(("site",)),
                "site-without-array",
                f"site '{entry.site.name}' has CAS servers but no array: create one "
                "(even for a single CAS) before mailboxes move in, or every Outlook "
                "profile will name a server",
            )


@_rule("array-single-member (warning): an array with one member has no high availability")
def _array_redundant(sites: list[SiteFile]) -> Iterator[Finding]:
    for entry, array in _present_arrays(sites):
        lb = array.load_balancer
        if lb is None or array.ensure is model.Ensure.ABSENT:
            continue
        count = len(lb.nodes) if lb.kind is model.LoadBalancerKind.NLB else len(entry.site.servers)
        what = "NLB member" if lb.kind is model.LoadBalancerKind.NLB else "CAS server"
        if count == 1:
            yield _warning(
                entry.document.location(("array", "fqdn")),
                "array-single-member",
                f"array '{array.fqdn}' has a single {what}: no high availability",
            )


@_rule("database-bound-to-server (warning): databases should bind to an array, not a server")
def _bound_to_server(sites: list[SiteFile]) -> Iterator[Finding]:
    for entry in sites:
        for rule in entry.binding_rules:
            if rule.target_kind == "server":
                yield _warning(
                    rule.source or entry.document.location(()),
                    "database-bound-to-server",
                    f"database '{rule.names[0]}' binds to server '{rule.target}': "
                    "its Outlook profiles break when that server goes away",
                )


@_rule("autodiscover-scope-unknown-site (warning): site_scope names declared sites")
def _scope_sites(sites: list[SiteFile]) -> Iterator[Finding]:
    known = {entry.site.key for entry in sites}
    for entry in sites:
        doc = entry.document
        for index, server in enumerate(_list(doc.data, "servers")):
            scope = _get(server, "autodiscover", "site_scope")
            for position, name in enumerate(scope if isinstance(scope, list) else []):
                if isinstance(name, str) and model.key(name) not in known:
                    yield _warning(
                        doc.location(("servers", index, "autodiscover", "site_scope", position)),
                        "autodiscover-scope-unknown-site",
                        f"site_scope names '{name}', which no site file declares",
                    )
