"""What every rule of the diff shares: its input, the identities, and what it has found.

:class:`DiffContext` indexes every name an object answers to (an array by FQDN or spaceless
Name, its old FQDN; a server by name or FQDN) under one canonical id, so rules compare
identities, not spellings; and it collects the changes, findings and unmanaged objects the
per-kind rules (:mod:`.servers`, :mod:`.arrays`, :mod:`.nlb`, :mod:`.bindings`) report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from casdesired import model
from casdesired.changes.changeset import ExtraSource
from casdesired.changes.types import Change
from casdesired.changes.unmanaged import Unmanaged
from casdesired.findings import Finding, Location, Severity


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
    binding_findings: Sequence[Finding] = ()
    allow_prune: bool = False
    all_sites: Sequence[model.Site] = ()
    """Every declared site (for resolving binding targets outside the scope); default: sites."""
    scoped: bool = False
    exchange_roles: Mapping[str, str] = field(default_factory=dict)
    """``ServerRole`` of every Exchange server by server key (CAS or not), when read."""
    sources: Sequence[ExtraSource] = ()
    """Extra sources of changes and findings (DNS), consulted before withholding."""


class DiffContext:
    """One diff run's shared indexes, and what its rules have reported so far."""

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

    def prunes(self, site: model.Site) -> bool:
        """The site's undeclared objects become deletes (the site asks and policy allows)."""
        return site.prune and self.inp.allow_prune
