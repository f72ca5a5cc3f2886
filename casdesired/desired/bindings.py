"""Resolving the sites' binding rules against the databases that exist live.

Names and patterns are only meaningful against a real list of databases, so this runs at plan
time. Precedence, in order:

1. an explicit name (``databases.names`` or ``server_bindings``) always wins;
2. otherwise a database matched by the patterns of exactly one site binds there;
3. a database matched by patterns of two sites is an error and is left unbound;
4. a database no rule names or matches is not managed.

Patterns are shell-style globs (``*``, ``?``, ``[...]``) compared case-insensitively, as
Exchange compares names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from casdesired import model
from casdesired.desired.config import BindingRule, DesiredState
from casdesired.findings import Finding, Location, Severity


def resolve_bindings(
    desired: DesiredState, live_databases: Iterable[str]
) -> tuple[dict[str, model.DatabaseBinding], list[Finding]]:
    """The desired ``RpcClientAccessServer`` of each database a rule names or matches.

    Keys are ``model.key(database name)``; each binding carries the live spelling of the name,
    the target as Exchange shows it (an array FQDN, or the bound server's FQDN when the server
    is declared) and the rule's source location. Rules whose target is unknown or being removed
    are skipped here — ``validate`` reports them.
    """
    live = {model.key(name): name for name in live_databases}
    server_fqdns = {s.key: s.fqdn for site in desired.sites for s in site.servers}
    usable = [rule for rule in desired.binding_rules if _usable(rule, desired)]
    diagnostics: list[Finding] = []
    bindings: dict[str, model.DatabaseBinding] = {}
    explicit_by: dict[str, BindingRule] = {}

    def target_of(rule: BindingRule) -> str:
        if rule.target_kind == "server":
            return server_fqdns.get(model.key(rule.target), rule.target)
        return rule.target

    for rule in usable:
        for name in rule.names:
            k = model.key(name)
            where = rule.source or desired.organisation.source
            if k not in live:
                diagnostics.append(
                    _error(where, "database-unknown", f"database '{name}' does not exist")
                )
                continue
            earlier = explicit_by.setdefault(k, rule)
            if earlier is not rule:
                diagnostics.append(
                    _error(
                        where,
                        "database-bound-twice",
                        f"database '{name}' is already bound by site '{earlier.site}'",
                    )
                )
                continue
            bindings[k] = model.DatabaseBinding(
                database=live[k], rpc_client_access_server=target_of(rule), source=rule.source
            )

    claims: dict[str, list[BindingRule]] = {}
    live_keys = list(live)
    for rule in usable:
        for pattern in rule.patterns:
            matched = fnmatch.filter(live_keys, pattern.lower())
            if not matched:
                diagnostics.append(
                    Finding.at(
                        rule.source or desired.organisation.source,
                        Severity.WARNING,
                        f"pattern '{pattern}' of site '{rule.site}' matches no database",
                        "pattern-matches-nothing",
                    )
                )
            for k in matched:
                if k not in explicit_by:
                    claimants = claims.setdefault(k, [])
                    if rule not in claimants:
                        claimants.append(rule)

    for k, claimants in claims.items():
        sites = sorted({c.site for c in claimants})
        if len(sites) > 1:
            diagnostics.append(
                _error(
                    claimants[1].source or desired.organisation.source,
                    "database-pattern-conflict",
                    f"database '{live[k]}' matches patterns of sites {' and '.join(sites)}; "
                    "name it explicitly in one site",
                )
            )
            continue
        rule = claimants[0]
        bindings[k] = model.DatabaseBinding(
            database=live[k], rpc_client_access_server=target_of(rule), source=rule.source
        )
    return bindings, diagnostics


def _usable(rule: BindingRule, desired: DesiredState) -> bool:
    if rule.target_kind == "server":
        return True
    site = desired.site(rule.site)
    array = site.array if site is not None else None
    return bool(rule.target) and array is not None and array.ensure is model.Ensure.PRESENT


def _error(location: Location, rule: str, message: str) -> Finding:
    return Finding.at(location, Severity.ERROR, message, rule)
