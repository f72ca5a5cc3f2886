"""Turning checked documents into the organisation settings and the shared estate model.

Builders are tolerant: they run even on documents with schema errors, so one run reports every
problem. A value of the wrong type is treated as absent (its schema error is already reported)
and an object missing what identifies it (a server without a name) is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casdesired import model
from casdesired.desired.config import (
    BindingRule,
    Connection,
    Credentials,
    DnsConfig,
    Organisation,
    Policy,
)
from casdesired.desired.yamlsource import Document, YamlPath
from casdesired.dns.tsig import TsigConfig
from casdesired.findings import Location

DEFAULT_CONNECT_SECONDS = 10.0
DEFAULT_OPERATION_SECONDS = 120.0
DEFAULT_AGENT_START_SECONDS = 120.0


@dataclass
class SiteFile:
    """A site document with what was built from it (rules need both: values and places)."""

    document: Document
    site: model.Site
    binding_rules: list[BindingRule] = field(default_factory=list)


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _text(data: Any, *path: str) -> str | None:
    value = _get(data, *path)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(data: Any, default: float, *path: str) -> float:
    value = _get(data, *path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    # .nan and .inf are schema errors; never let one through as a setting.
    return float(value) if math.isfinite(value) else default


def _whole(data: Any, default: int, *path: str) -> int:
    """A whole number; ``12.0`` counts (the schema's "integer" accepts it), ``12.5`` does not."""
    value = _number(data, float(default), *path)
    return int(value) if value.is_integer() else default


def _flag(data: Any, default: bool, *path: str) -> bool:
    value = _get(data, *path)
    return value if isinstance(value, bool) else default


def _texts(data: Any, *path: str) -> tuple[str, ...]:
    value = _get(data, *path)
    if not isinstance(value, list):
        return ()
    return tuple(v.strip() for v in value if isinstance(v, str) and v.strip())


def organisation_from(document: Document | None, directory: Path) -> Organisation:
    """The organisation settings; defaults stand in for anything missing or mistyped."""
    data = document.data if document is not None else {}
    source = document.location(()) if document else Location(str(directory))
    conn = _get(data, "connection")
    endpoint = _text(conn, "endpoint") or "lab"
    lab_state_text = _text(conn, "lab", "state")
    lab_state = None
    if lab_state_text is not None:
        lab_state = Path(lab_state_text).expanduser()
        if not lab_state.is_absolute():
            lab_state = directory / lab_state
    ca_text = _text(conn, "tls", "ca_bundle")
    connection = Connection(
        endpoint=endpoint,
        transport=_text(conn, "transport") or "ntlm",
        exchange_mode=_text(conn, "exchange", "mode") or "remote",
        exchange_uri=_text(conn, "exchange", "uri"),
        tls_validate=_flag(conn, True, "tls", "validate"),
        ca_bundle=(directory / Path(ca_text).expanduser()) if ca_text else None,
        connect_timeout=_number(conn, DEFAULT_CONNECT_SECONDS, "timeouts", "connect_seconds"),
        operation_timeout=_number(conn, DEFAULT_OPERATION_SECONDS, "timeouts", "operation_seconds"),
        credentials=Credentials(
            username_env=_text(conn, "credentials", "username_env"),
            password_env=_text(conn, "credentials", "password_env"),
            cert_pem_env=_text(conn, "credentials", "cert_pem_env"),
            cert_key_env=_text(conn, "credentials", "cert_key_env"),
        ),
        lab_state=lab_state,
        agent_delivery=_text(conn, "agent", "delivery") or "stdin",
        agent_start_timeout=_number(
            conn, DEFAULT_AGENT_START_SECONDS, "agent", "start_timeout_seconds"
        ),
    )
    dns = DnsConfig(
        resolvers=_texts(data, "dns", "resolvers"),
        external_resolvers=_texts(data, "dns", "external_resolvers"),
        management=_management(_get(data, "dns", "management")),
        source=document.location(("dns",)) if document and _get(data, "dns") is not None else None,
    )
    defaults = Policy()
    policy = Policy(
        max_rebind_percent=_number(
            data, defaults.max_rebind_percent, "policy", "max_rebind_percent"
        ),
        min_databases_for_threshold=_whole(
            data, defaults.min_databases_for_threshold, "policy", "min_databases_for_threshold"
        ),
        allow_prune=_flag(data, defaults.allow_prune, "policy", "allow_prune"),
    )
    return Organisation(
        name=_text(data, "name") or directory.name,
        connection=connection,
        dns=dns,
        policy=policy,
        path=directory,
        source=source,
    )


def _management(data: Any) -> TsigConfig | None:
    """``dns.management`` as the TsigConfig it maps onto one to one; None when absent or unusable.

    ``server`` keeps its ``ip:port`` form (TsigConfig parses it); the secret is only ever the
    NAME of an environment variable (the schema refuses anything else).
    """
    zone, server = _text(data, "zone"), _text(data, "server")
    if zone is None or server is None:
        return None
    defaults = TsigConfig("", "", "", "", "")
    return TsigConfig(
        key_name=_text(data, "key_name") or "",
        algorithm=_text(data, "algorithm") or "hmac-sha256",
        secret_env=_text(data, "secret_env") or "",
        server=server,
        zone=zone,
        ttl=_whole(data, defaults.ttl, "ttl"),
        unsigned=_flag(data, defaults.unsigned, "unsigned"),
    )


def host_label(fqdn: str) -> str:
    """What Exchange names an array when -Name is omitted: the FQDN's first label."""
    return fqdn.split(".", 1)[0]


def site_from(document: Document) -> SiteFile | None:
    """The site's model and binding rules; None when the file does not even name its site."""
    data = document.data
    name = _text(data, "site")
    if name is None:
        return None
    servers = []
    entries = _get(data, "servers")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        server = _server(document, entry, ("servers", index), name)
        if server is not None:
            servers.append(server)
    array = _array(document, _get(data, "array"), name)
    site = model.Site(
        name=name,
        servers=tuple(servers),
        array=array,
        prune=_flag(data, False, "prune"),
        source=document.location(("site",)),
    )
    result = SiteFile(document, site)
    result.binding_rules = _binding_rules(document, name, array)
    return result


def _server(document: Document, entry: Any, where: YamlPath, site: str) -> model.CasServer | None:
    name, fqdn = _text(entry, "name"), _text(entry, "fqdn")
    if name is None or fqdn is None:
        return None
    autodiscover = _get(entry, "autodiscover")
    uri = _text(autodiscover, "internal_uri")
    scope = _texts(autodiscover, "site_scope") if isinstance(autodiscover, dict) else None
    if isinstance(autodiscover, dict) and "site_scope" not in autodiscover:
        scope = None  # not mentioned: not managed
    return model.CasServer(
        name=name,
        fqdn=fqdn,
        site=site,
        autodiscover_internal_uri=uri,
        autodiscover_site_scope=scope,
        source=document.location(where),
    )


def _array(document: Document, data: Any, site: str) -> model.CasArray | None:
    fqdn = _text(data, "fqdn")
    if fqdn is None:
        return None
    ensure = model.Ensure.ABSENT if _get(data, "ensure") == "absent" else model.Ensure.PRESENT
    return model.CasArray(
        fqdn=fqdn,
        name=_text(data, "name") or host_label(fqdn),
        site=site,
        load_balancer=_load_balancer(document, _get(data, "load_balancer")),
        ensure=ensure,
        source=document.location(("array",)),
    )


def _load_balancer(document: Document, data: Any) -> model.LoadBalancer | None:
    kind_text, vip = _text(data, "type"), _text(data, "vip")
    if kind_text not in ("nlb", "external") or vip is None:
        return None
    kind = model.LoadBalancerKind(kind_text)
    interface = _text(data, "interface")
    nodes: list[model.NlbNode] = []
    if kind is model.LoadBalancerKind.NLB:
        members = _get(data, "members")
        for index, member in enumerate(members if isinstance(members, list) else []):
            if isinstance(member, str) and member.strip():
                nodes.append(
                    model.NlbNode(
                        server=member.strip(),
                        interface=interface,
                        source=document.location(("array", "load_balancer", "members", index)),
                    )
                )
    return model.LoadBalancer(
        kind=kind,
        vip=vip,
        cluster_host=_text(data, "cluster_host"),
        interface=interface,
        nodes=tuple(sorted(nodes, key=lambda n: n.key)),
        source=document.location(("array", "load_balancer")),
    )


def _binding_rules(
    document: Document, site: str, array: model.CasArray | None
) -> list[BindingRule]:
    data = _get(document.data, "databases")
    rules: list[BindingRule] = []
    names, patterns = _texts(data, "names"), _texts(data, "patterns")
    if names or patterns:
        rules.append(
            BindingRule(
                site=site,
                # With no array declared the target is unknown; rules report it, plan ignores it.
                target=array.fqdn if array is not None else "",
                target_kind="array",
                names=names,
                patterns=patterns,
                source=document.location(("databases",)),
            )
        )
    entries = _get(data, "server_bindings")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        database, server = _text(entry, "database"), _text(entry, "server")
        if database is None or server is None:
            continue
        rules.append(
            BindingRule(
                site=site,
                target=server,
                target_kind="server",
                names=(database,),
                source=document.location(("databases", "server_bindings", index)),
            )
        )
    return rules
