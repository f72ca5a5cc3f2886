"""Checks that each CAS array's FQDN resolves to its load balancer VIP, and only internally.

Exchange guidance (docs/dns.md): the array FQDN must resolve, inside the organisation only, to
the VIP — never to one CAS server's address (clients would lose Outlook when that server goes
down) and never through public DNS (Outlook Anywhere clients would try RPC/TCP first and stall).

Every internal resolver is asked separately, because clients use all of them: a stale secondary
breaks the clients that ask it. Lookups run concurrently so a silent resolver costs one timeout,
not one per name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from casdesired import model
from casdesired.dns.endpoints import Endpoint, parse_endpoint
from casdesired.dns.lookup import FAILURES, Lookup, Status, lookup_a, sorted_addresses
from casdesired.findings import Finding, Location, Severity, Source

_MAX_PARALLEL_LOOKUPS = 16

# Rule ids (stable: output formats and tests key on them).
RULE_WRONG_ADDRESS = "dns-array-wrong-address"
RULE_RESOLVES_TO_SERVER = "dns-array-resolves-to-server"
RULE_RESOLVES_EXTERNALLY = "dns-array-resolves-externally"
RULE_EXTERNAL_UNCHECKED = "dns-external-unchecked"
RULE_SERVER_UNRESOLVED = "dns-server-unresolved"
_RULE_BY_STATUS = {
    Status.NXDOMAIN: "dns-array-nxdomain",
    Status.NODATA: "dns-array-no-a-record",
    Status.SERVFAIL: "dns-servfail",
    Status.REFUSED: "dns-refused",
    Status.TIMEOUT: "dns-timeout",
    Status.UNREACHABLE: "dns-unreachable",
    Status.OTHER: "dns-error",
}


@dataclass(frozen=True)
class ArrayExpectation:
    """What DNS should say about one array: its FQDN resolves to exactly its VIP."""

    fqdn: str
    vip: str
    server_fqdns: tuple[str, ...] = ()
    """The CAS servers of the array's site: the array must not resolve to their addresses."""
    ensure: model.Ensure = model.Ensure.PRESENT
    """``absent``: not checked; with management on, its record is planned for deletion."""
    site: str | None = None
    source: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ServerExpectation:
    """A CAS server's FQDN must resolve (to anything) through every internal resolver."""

    fqdn: str
    site: str | None = None
    source: Location | None = field(default=None, compare=False)


def _finding(
    expected: ArrayExpectation | ServerExpectation,
    name: str,
    severity: Severity,
    rule: str,
    message: str,
) -> Finding:
    """A DNS finding located where its array or server is declared."""
    return Finding(
        severity,
        rule,
        message,
        site=expected.site,
        location=expected.source,
        name=name,
        source=Source.DNS,
    )


def expectations_from_sites(sites: Iterable[model.Site]) -> list[ArrayExpectation]:
    """One expectation per declared array that has a load balancer (the desired side's)."""
    expectations = []
    for site in sites:
        array = site.array
        if array is None or array.load_balancer is None:
            continue
        expectations.append(
            ArrayExpectation(
                fqdn=array.fqdn,
                vip=array.load_balancer.vip,
                server_fqdns=tuple(server.fqdn for server in site.servers),
                ensure=array.ensure,
                site=site.name,
                source=array.source,
            )
        )
    return expectations


def _endpoints(resolvers: Sequence[str], port: int) -> list[Endpoint]:
    """Parsed resolvers in the order given, each once (a repeat would repeat its findings)."""
    return list(dict.fromkeys(parse_endpoint(r, default_port=port) for r in resolvers))


def _lookup_all(
    jobs: Sequence[tuple[str, Endpoint]], timeout: float
) -> dict[tuple[str, Endpoint], Lookup]:
    if not jobs:
        return {}
    workers = min(_MAX_PARALLEL_LOOKUPS, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dns-check") as pool:
        results = pool.map(lambda job: lookup_a(job[0], job[1], timeout=timeout), jobs)
        return dict(zip(jobs, results, strict=True))


def _server_owners(
    expectations: Sequence[ArrayExpectation],
    server_addresses: Mapping[str, set[str]] | None,
    resolvers: Sequence[Endpoint],
    timeout: float,
) -> dict[str, str]:
    """address -> server FQDN, from the caller's map or by resolving the servers' FQDNs."""
    if server_addresses is None:
        fqdns = sorted({model.key(f) for e in expectations for f in e.server_fqdns})
        found = _lookup_all([(f, r) for f in fqdns for r in resolvers], timeout)
        server_addresses = {}
        for (fqdn, _), lookup in found.items():
            server_addresses.setdefault(fqdn, set()).update(lookup.addresses)
    owners: dict[str, str] = {}
    for fqdn, addresses in sorted(server_addresses.items()):
        for address in addresses:
            owners.setdefault(address, fqdn)
    return owners


def _internal_finding(
    expected: ArrayExpectation, lookup: Lookup, owners: Mapping[str, str]
) -> Finding | None:
    name, where = lookup.name, f"DNS server {lookup.server}"
    if lookup.status is not Status.OK:
        message = f"{lookup.describe()}; expected it to resolve to its VIP {expected.vip}"
        return _finding(expected, name, Severity.ERROR, _RULE_BY_STATUS[lookup.status], message)
    if lookup.addresses == {expected.vip}:
        return None
    shown = ", ".join(sorted_addresses(lookup.addresses))
    servers = [
        f"{address} is server {owners[address]}"
        for address in sorted_addresses(lookup.addresses)
        if address in owners
    ]
    if servers:
        message = (
            f"{name} resolves to {shown} ({'; '.join(servers)}) instead of only its load "
            f"balancer VIP {expected.vip} ({where}); clients sent to a server's own address "
            "bypass the load balancer and lose Outlook when that server is down"
        )
        return _finding(expected, name, Severity.ERROR, RULE_RESOLVES_TO_SERVER, message)
    message = f"{name} resolves to {shown}, expected only its VIP {expected.vip} ({where})"
    return _finding(expected, name, Severity.ERROR, RULE_WRONG_ADDRESS, message)


def _external_finding(expected: ArrayExpectation, lookup: Lookup) -> Finding | None:
    name = lookup.name
    if lookup.status is Status.OK:
        shown = ", ".join(sorted_addresses(lookup.addresses))
        message = (
            f"{name} resolves through external resolver {lookup.server} (to {shown}); an "
            "array name must resolve internally only, or Outlook Anywhere clients try RPC/TCP "
            "first and connect slowly"
        )
        return _finding(expected, name, Severity.WARNING, RULE_RESOLVES_EXTERNALLY, message)
    if lookup.status in FAILURES:
        message = f"could not confirm that {name} does not resolve externally: {lookup.describe()}"
        return _finding(expected, name, Severity.WARNING, RULE_EXTERNAL_UNCHECKED, message)
    return None


def check_arrays(
    arrays: Iterable[ArrayExpectation],
    *,
    resolvers: Sequence[str],
    external_resolvers: Sequence[str] = (),
    server_addresses: Mapping[str, set[str]] | None = None,
    timeout: float = 3.0,
    port: int = 53,
) -> list[Finding]:
    """Check every present array against every resolver; findings in a stable order.

    ``resolvers``/``external_resolvers`` are IPs, optionally ``ip:port`` (``port`` is the
    default). ``server_addresses`` maps server FQDN -> its addresses; when None, the servers'
    FQDNs are resolved through ``resolvers`` to learn them. Raises DnsError only for a resolver
    that is not an IP address.
    """
    internal = _endpoints(resolvers, port)
    external = _endpoints(external_resolvers, port)
    present = [a for a in arrays if a.ensure is model.Ensure.PRESENT]
    owners = _server_owners(present, server_addresses, internal, timeout)
    inside = _lookup_all([(a.fqdn, r) for a in present for r in internal], timeout)
    outside = _lookup_all([(a.fqdn, r) for a in present for r in external], timeout)
    findings: list[Finding] = []
    for expected in present:
        for resolver in internal:
            finding = _internal_finding(expected, inside[(expected.fqdn, resolver)], owners)
            if finding:
                findings.append(finding)
        for resolver in external:
            finding = _external_finding(expected, outside[(expected.fqdn, resolver)])
            if finding:
                findings.append(finding)
    return findings


def check_servers(
    servers: Iterable[ServerExpectation],
    *,
    resolvers: Sequence[str],
    timeout: float = 3.0,
    port: int = 53,
) -> list[Finding]:
    """Each CAS server FQDN must resolve (to anything) through every internal resolver."""
    endpoints = _endpoints(resolvers, port)
    expected = list({model.key(s.fqdn): s for s in servers}.values())
    found = _lookup_all([(s.fqdn, r) for s in expected for r in endpoints], timeout)
    findings = []
    for server in expected:
        for resolver in endpoints:
            lookup = found[(server.fqdn, resolver)]
            if lookup.status is not Status.OK:
                message = f"CAS server {lookup.describe()}"
                findings.append(
                    _finding(server, lookup.name, Severity.ERROR, RULE_SERVER_UNRESOLVED, message)
                )
    return findings
