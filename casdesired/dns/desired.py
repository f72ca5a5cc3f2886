"""The DNS checks of one desired state: what ``validate --online`` and ``plan`` report.

Resolvers come from the organisation file; ``lab`` there means the embedded lab's DNS server
(:func:`resolvers_for` starts it, or finds the running one). Findings are located at the array
(or server) declaration in its site file, so they print as ``path:line:col: error: ...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from casdesired import model
from casdesired.desired.config import LAB_RESOLVER, DesiredState, Organisation
from casdesired.dns.check import (
    ServerExpectation,
    check_arrays,
    check_servers,
    expectations_from_sites,
)
from casdesired.findings import Finding

DEFAULT_TIMEOUT = 3.0


@dataclass(frozen=True)
class Resolvers:
    """The organisation's resolvers as addresses (``lab`` replaced by the lab server's)."""

    internal: tuple[str, ...] = ()
    external: tuple[str, ...] = ()


@contextmanager
def resolvers_for(org: Organisation) -> Iterator[Resolvers]:
    """The resolvers to ask, for the ``with`` block (the lab's DNS server runs meanwhile)."""
    internal, external = org.dns.resolvers, org.dns.external_resolvers
    if LAB_RESOLVER not in internal:
        yield Resolvers(internal, external)
        return
    from casdesired.lab.embedded import lab_dns

    with lab_dns(org) as address:
        yield Resolvers(
            tuple(address if r == LAB_RESOLVER else r for r in internal), external
        )


def in_scope(desired: DesiredState, sites: Iterable[str] | None) -> list[model.Site]:
    """The declared sites a run covers (all when ``sites`` is None)."""
    if sites is None:
        return list(desired.sites)
    wanted = {model.key(s) for s in sites}
    return [s for s in desired.sites if s.key in wanted]


def check_desired(
    desired: DesiredState,
    resolvers: Resolvers,
    *,
    sites: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Finding]:
    """Every array (FQDN -> VIP, internal only) and every CAS server (resolves) of the sites.

    No resolvers configured: nothing to ask, no findings. Each finding carries the site and
    the declaration of the array or server it is about.
    """
    if not resolvers.internal and not resolvers.external:
        return []
    scope = in_scope(desired, sites)
    findings = check_arrays(
        expectations_from_sites(scope),
        resolvers=resolvers.internal,
        external_resolvers=resolvers.external,
        timeout=timeout,
    )
    if resolvers.internal:
        servers = [
            ServerExpectation(server.fqdn, site.name, server.source)
            for site in scope
            for server in site.servers
        ]
        findings += check_servers(servers, resolvers=resolvers.internal, timeout=timeout)
    return findings


def located(findings: Iterable[Finding], org: Organisation) -> list[Finding]:
    """Each finding with a place for validate to print: its declaration, or else the
    organisation file's dns block."""
    fallback = org.dns.source or org.source
    return [f if f.location is not None else replace(f, location=fallback) for f in findings]
