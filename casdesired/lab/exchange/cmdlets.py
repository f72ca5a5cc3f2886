"""The cmdlets the lab offers: their parameters (exactly as documented), binding, and semantics.

Each cmdlet is a :class:`Cmdlet` in :data:`CMDLETS`: its parameters, the snap-in or module that
provides it, and a handler. :func:`bind` turns a splatted parameter table into typed arguments
the way PowerShell 2.0 does for ``& $cmdlet @parameters`` (names case-insensitive; an unknown
name, a missing mandatory one or an unconvertible value is an error before anything runs).
Handlers resolve every identity and check every rule before calling a mutating
:class:`~casdesired.lab.exchange.state.OrgState` method, so a failed invocation changes nothing.

Every parameter accepted here appears in the syntax in shared/domain/exchange2010.md, plus the
common parameters that make sense (WhatIf, Confirm, DomainController). Unlike PowerShell, the lab
does not accept unambiguous prefixes of parameter names: the agent always sends full names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

from casdesired.agent.protocol import JsonValue, ParamValue
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.models import ROLE_ORDER, CasArray, NlbCluster, NlbNode, Server
from casdesired.lab.exchange.state import OrgState

Kind = Literal["string", "fqdn", "uri", "strings", "switch", "uint", "resultsize"]
Provider = Literal["exchange", "nlb", "agent"]
"""``agent``: functions agent.ps1 defines itself (the lock, see .locks); always present."""
Obj = dict[str, JsonValue]

_TYPE_NAMES: dict[Kind, str] = {
    "string": "System.String",
    "fqdn": "Microsoft.Exchange.Data.Fqdn",
    "uri": "System.Uri",
    "strings": "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]",
    "switch": "System.Management.Automation.SwitchParameter",
    "uint": "System.UInt32",
    "resultsize": "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]",
}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_FQDN = re.compile(rf"^(?=.{{1,255}}$){_LABEL}(?:\.{_LABEL})*\.?$")
DEFAULT_RESULT_SIZE = 1000


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind = "string"
    mandatory: bool = False
    nullable: bool = False
    """$null is a value (clears a property); otherwise binding $null is an error."""


@dataclass
class CmdletContext:
    """What a handler may use besides its arguments; collects what it prints."""

    state: OrgState
    now: float
    """Wall-clock time (epoch seconds), for NLB drains."""
    warnings: list[str] = field(default_factory=list)
    host_lines: list[str] = field(default_factory=list)
    """Text written to the host (What if: ...)."""
    changed: bool = False


Handler = Callable[[CmdletContext, dict[str, Any]], Iterable[Obj]]


@dataclass(frozen=True)
class Cmdlet:
    name: str
    provider: Provider
    params: tuple[Param, ...]
    handler: Handler
    should_process: bool = False
    """Supports -WhatIf and -Confirm."""

    def param(self, given: str) -> Param | None:
        wanted = given.lower()
        return next((p for p in self.all_params if p.name.lower() == wanted), None)

    @property
    def all_params(self) -> tuple[Param, ...]:
        common: tuple[Param, ...] = ()
        if self.provider == "exchange":
            common += (Param("DomainController", "fqdn"),)
        if self.should_process:
            common += (Param("WhatIf", "switch"), Param("Confirm", "switch"))
        return self.params + common


# ---------------------------------------------------------------------------- binding
def bind(cmdlet: Cmdlet, given: Mapping[str, ParamValue]) -> dict[str, Any]:
    """Bind splatted parameters; keys of the result are the parameters' canonical names."""
    bound: dict[str, Any] = {}
    for name, value in given.items():
        param = cmdlet.param(str(name))
        if param is None:
            raise err.ParameterBindingError(
                err.PARAMETER_NOT_FOUND.format(name=name), target=str(name)
            )
        if param.name in bound:
            raise err.ParameterBindingError(err.PARAMETER_TWICE.format(name=param.name))
        bound[param.name] = _convert(param, value)
    missing = [p.name for p in cmdlet.params if p.mandatory and p.name not in bound]
    if missing:
        raise err.ParameterBindingError(err.MISSING_MANDATORY.format(names=" ".join(missing)))
    return bound


def _convert(param: Param, value: ParamValue) -> Any:
    if value is None:
        if param.nullable:
            return [] if param.kind == "strings" else None
        raise err.ParameterValidationError(err.ARGUMENT_NULL.format(name=param.name))
    if param.kind == "switch":
        if isinstance(value, bool):
            return value
        _cannot(param, value, "Only boolean values are allowed for a switch.")
    if param.kind == "strings":
        items = value if isinstance(value, list) else [value]
        return [_scalar_text(param, v) for v in items if v is not None]
    if isinstance(value, list):
        if len(value) == 1:  # PowerShell unwraps a one-element array for a scalar parameter
            return _convert(param, value[0])
        raise err.ParameterBindingError(
            err.CANNOT_CONVERT_ARRAY.format(type=_TYPE_NAMES[param.kind], name=param.name)
        )
    text = _scalar_text(param, value)
    if param.kind == "fqdn" and not _FQDN.match(text):
        _cannot(param, text, f"'{text}' is not a valid FQDN.")
    if param.kind == "uri":
        parts = urlsplit(text)
        if not (parts.scheme and parts.netloc):
            _cannot(param, text, "Invalid URI: The format of the URI could not be determined.")
    if param.kind == "uint":
        if not text.isdigit() or int(text) > 0xFFFFFFFF:
            _cannot(param, text, "Input string was not in a correct format.")
        return int(text)
    if param.kind == "resultsize":
        if text.lower() == "unlimited":
            return None
        if not text.isdigit() or int(text) == 0:
            _cannot(param, text, "Input string was not in a correct format.")
        return int(text)
    return text


def _scalar_text(param: Param, value: ParamValue) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float, str)):
        return str(value)
    _cannot(param, value, "Specified method is not supported.")


def _cannot(param: Param, value: object, error: str) -> NoReturn:
    raise err.ParameterBindingError(
        err.CANNOT_CONVERT.format(
            name=param.name, value=value, type=_TYPE_NAMES[param.kind], error=error
        ),
        target=str(value),
    )


def _confirm(ctx: CmdletContext, args: dict[str, Any], action: str, target: str,
             *, prompts_by_default: bool) -> bool:
    """ShouldProcess in a non-interactive host: False for -WhatIf (after saying what it would
    do); a prompt (default or -Confirm) cannot be shown and fails the invocation."""
    if args.get("WhatIf"):
        ctx.host_lines.append(f'What if: {action} "{target}".')
        return False
    if args.get("Confirm", prompts_by_default):
        raise err.PromptNotAvailable()
    return True


# ---------------------------------------------------------------------------- objects
def array_object(state: OrgState, array: CasArray) -> Obj:
    return {
        "Name": array.name,
        "Identity": array.name,
        "Fqdn": array.fqdn,
        "Site": state.site_canonical(array.site),
        "SiteName": state.sites[array.site.lower()].name,
        "Members": list(state.members(array.site)),
        "ExchangeVersion": "0.1 (8.0.535.0)",
        "ExchangeLegacyDN": array.legacy_dn,
        "DistinguishedName": state.array_dn(array),
        "Guid": array.guid,
        "WhenCreated": array.when_created,
        "WhenChanged": array.when_changed,
        "WhenCreatedUTC": array.when_created,
        "WhenChangedUTC": array.when_changed,
        "IsValid": True,
    }


def server_object(state: OrgState, server: Server) -> Obj:
    return {
        "Name": server.name,
        "Identity": server.name,
        "Fqdn": server.fqdn,
        "Site": state.site_canonical(server.site),
        "ServerRole": ", ".join(r for r in ROLE_ORDER if r in server.roles),
        "AdminDisplayVersion": server.version,
        "IsClientAccessServer": server.is_cas,
        "IsMailboxServer": server.is_mailbox,
        "IsHubTransportServer": "HubTransport" in server.roles,
    }


def cas_object(server: Server) -> Obj:
    return {
        "Name": server.name,
        "Identity": server.name,
        "Fqdn": server.fqdn,
        "AutoDiscoverServiceInternalUri": server.autodiscover_internal_uri,
        "AutoDiscoverSiteScope": list(server.autodiscover_site_scope),
        "OutlookAnywhereEnabled": False,
    }


def node_object(cluster: NlbCluster, node: NlbNode) -> Obj:
    return {
        "Name": node.name,
        "State": node.state,
        "InterfaceName": node.interface,
        "HostPriority": node.priority,
        "Cluster": cluster.name,
    }


# ---------------------------------------------------------------------------- CAS arrays
def get_client_access_array(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    state = ctx.state
    if "Identity" in args:
        arrays = [state.find_array(args["Identity"])]
    else:
        arrays = sorted(state.arrays.values(), key=lambda a: a.name.lower())
    if "Site" in args:
        site = state.find_site(args["Site"])
        arrays = [a for a in arrays if a.site.lower() == site.name.lower()]
    return [array_object(state, a) for a in arrays]


def new_client_access_array(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    state = ctx.state
    site = state.find_site(args["Site"])
    fqdn: str = args["Fqdn"]
    name: str | None = args.get("Name")
    if not _confirm(ctx, args, "Creating Client Access array", fqdn, prompts_by_default=False):
        return []
    array = state.new_array(fqdn, site, name)
    ctx.changed = True
    return [array_object(state, array)]


def set_client_access_array(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    state = ctx.state
    array = state.find_array(args["Identity"])
    site = state.find_site(args["Site"]) if "Site" in args else None
    if not _confirm(ctx, args, "Setting Client Access array", array.name,
                    prompts_by_default=False):
        return []
    if state.set_array(array, fqdn=args.get("Fqdn"), name=args.get("Name"), site=site):
        ctx.changed = True
    else:
        ctx.warnings.append(err.NO_SETTINGS_MODIFIED.format(identity=array.name))
    return []


def remove_client_access_array(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    array = ctx.state.find_array(args["Identity"])
    if _confirm(ctx, args, "Removing Client Access array", array.name, prompts_by_default=True):
        ctx.state.remove_array(array)
        ctx.changed = True
    return []


# ---------------------------------------------------------------------------- servers
def get_exchange_server(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    state = ctx.state
    if "Identity" in args:
        servers = [state.find_server(args["Identity"])]
    else:
        servers = sorted(state.servers.values(), key=lambda s: s.name.lower())
    return [server_object(state, s) for s in servers]


def get_client_access_server(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    state = ctx.state
    if "Identity" in args:
        servers = [state.find_server(args["Identity"], cas_only=True)]
    else:
        servers = [s for s in sorted(state.servers.values(), key=lambda s: s.name.lower())
                   if s.is_cas]
    return [cas_object(s) for s in servers]


def set_client_access_server(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    server = ctx.state.find_server(args["Identity"], cas_only=True)
    if not _confirm(ctx, args, "Setting Client Access server", server.name,
                    prompts_by_default=False):
        return []
    changed = ctx.state.set_autodiscover(
        server,
        uri=args.get("AutoDiscoverServiceInternalUri"),
        set_uri="AutoDiscoverServiceInternalUri" in args,
        scope=args.get("AutoDiscoverSiteScope"),
    )
    if changed:
        ctx.changed = True
    else:
        ctx.warnings.append(err.NO_SETTINGS_MODIFIED.format(identity=server.name))
    return []


# ---------------------------------------------------------------------------- databases
def get_mailbox_database(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    state = ctx.state
    if "Identity" in args:
        databases = [state.find_database(args["Identity"])]
    else:
        databases = sorted(state.databases.values(), key=lambda d: d.name.lower())
    return [
        {
            "Name": db.name,
            "Identity": db.name,
            "Server": db.server,
            "RpcClientAccessServer": state.rpc_shown(db),
            "MasterServerOrAvailabilityGroup": db.server,
            "MasterType": "Server",
            "Recovery": db.recovery,
            "ExchangeVersion": "0.10 (14.0.100.0)",
        }
        for db in databases
    ]


def set_mailbox_database(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    state = ctx.state
    db = state.find_database(args["Identity"])
    pointer = (
        state.resolve_rpc_target(args["RpcClientAccessServer"])
        if "RpcClientAccessServer" in args
        else None
    )
    host = state.servers.get(db.server.lower())
    if host is not None and host.major_version >= 15:
        # A 2010 tool cannot write an object a newer version stamped (field §7).
        raise err.DataValidationError(err.FUTURE_VERSION, target=db.name)
    if not _confirm(ctx, args, "Setting mailbox database", db.name, prompts_by_default=False):
        return []
    if pointer is not None and state.set_rpc(db, pointer):
        ctx.changed = True
    else:
        ctx.warnings.append(err.NO_SETTINGS_MODIFIED.format(identity=db.name))
    return []


def get_mailbox(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Obj]:
    """Mailboxes are synthesised from each database's count, lazily; only the counts are read
    under the state lock, so a large listing does not hold it."""
    state = ctx.state
    if "Database" in args:
        databases = [state.find_database(args["Database"])]
    else:
        databases = sorted(state.databases.values(), key=lambda d: d.name.lower())
    counts = [(db.name, db.mailboxes) for db in databases]
    limit = args.get("ResultSize", DEFAULT_RESULT_SIZE)
    total = sum(count for _, count in counts)
    if limit is not None and total > limit and "ResultSize" not in args:
        ctx.warnings.append(err.RESULT_SIZE_WARNING)
    return MailboxListing(state.domain, counts, limit)


class MailboxListing(Iterator[Obj]):
    """Get-Mailbox's output: synthesised one mailbox at a time from each database's count.

    ``count_by("Database")`` gives what grouping the whole listing by database would give,
    without building millions of mailbox objects; the agent executor uses it for ``group_by``.
    The answer is identical to iterating, it only costs less (the lab's cost is not what the
    benchmarks measure).
    """

    def __init__(self, domain: str, counts: list[tuple[str, int]], limit: int | None) -> None:
        self._counts = counts
        self._limit = limit
        self._objects = _mailboxes(domain, counts, limit)

    def __next__(self) -> Obj:
        return next(self._objects)

    def count_by(self, prop: str) -> dict[str, int] | None:
        if prop.lower() != "database":
            return None
        groups: dict[str, int] = {}
        remaining = self._limit
        for db_name, count in self._counts:
            taken = count if remaining is None else min(count, remaining)
            if taken > 0:
                groups[db_name] = groups.get(db_name, 0) + taken
            if remaining is not None:
                remaining -= taken
        return groups


def _mailboxes(domain: str, counts: list[tuple[str, int]], limit: int | None) -> Iterator[Obj]:
    emitted = 0
    for db_name, count in counts:
        for number in range(1, count + 1):
            if limit is not None and emitted >= limit:
                return
            name = f"{db_name} User {number:04d}"
            yield {
                "Name": name,
                "Identity": f"{domain}/Users/{name}",
                "Alias": f"{db_name.lower()}.user{number:04d}",
                "Database": db_name,
            }
            emitted += 1


# ---------------------------------------------------------------------------- NLB
def _host(ctx: CmdletContext, args: dict[str, Any]) -> str:
    """-HostName, or the local computer (the endpoint host) as Windows defaults it."""
    host: str = args.get("HostName") or ctx.state.endpoint_host
    return host


def get_nlb_cluster(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, _ = ctx.state.cluster_of(host)
    if "InterfaceName" in args:
        ctx.state.check_interface(host, args["InterfaceName"])
    return [{
        "Name": cluster.name,
        "IPAddress": cluster.ip_address,
        "SubnetMask": cluster.subnet_mask,
        "Mode": cluster.mode,
    }]


def get_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, _ = ctx.state.cluster_of(host)
    if "InterfaceName" in args:
        ctx.state.check_interface(host, args["InterfaceName"])
    nodes = sorted(cluster.nodes, key=lambda n: n.priority)
    if "NodeName" in args:
        wanted = ctx.state.find_server(args["NodeName"]).name.lower()
        nodes = [n for n in nodes if n.name.lower() == wanted]
        if not nodes:
            raise err.NlbError(err.NLB_HOST_NOT_FOUND.format(host=args["NodeName"]),
                               target=args["NodeName"], category="ObjectNotFound")
    return [node_object(cluster, n) for n in nodes]


def add_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, _ = ctx.state.cluster_of(host)
    ctx.state.check_interface(host, args["InterfaceName"])
    node = ctx.state.add_node(cluster, args["NewNodeName"], args["NewNodeInterface"])
    ctx.changed = True
    return [node_object(cluster, node)]


def stop_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    cluster, node = ctx.state.node_of(_host(ctx, args))
    ctx.state.stop_node(node, drain=bool(args.get("Drain")), timeout_minutes=args.get("Timeout"),
                        now=ctx.now)
    ctx.changed = True
    return [node_object(cluster, node)]


def start_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    cluster, node = ctx.state.node_of(_host(ctx, args))
    ctx.state.start_node(node)
    ctx.changed = True
    return [node_object(cluster, node)]


def remove_nlb_cluster_node(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    host = _host(ctx, args)
    cluster, node = ctx.state.node_of(host)
    if "InterfaceName" in args and args["InterfaceName"].lower() != node.interface.lower():
        raise err.NlbError(
            err.NLB_INTERFACE_NOT_FOUND.format(interface=args["InterfaceName"], host=host),
            target=args["InterfaceName"], category="ObjectNotFound",
        )
    if not args.get("Force"):
        raise err.PromptNotAvailable()
    ctx.state.remove_node(cluster, node)
    ctx.changed = True
    return []


_IDENTITY = Param("Identity", mandatory=True)
_OPTIONAL_IDENTITY = Param("Identity")

CMDLETS: dict[str, Cmdlet] = {
    c.name.lower(): c
    for c in (
        Cmdlet("Get-ClientAccessArray", "exchange", (_OPTIONAL_IDENTITY, Param("Site")),
               get_client_access_array),
        Cmdlet("New-ClientAccessArray", "exchange",
               (Param("Name"), Param("Fqdn", "fqdn", mandatory=True),
                Param("Site", mandatory=True)),
               new_client_access_array, should_process=True),
        Cmdlet("Set-ClientAccessArray", "exchange",
               (_IDENTITY, Param("Fqdn", "fqdn"), Param("Name"), Param("Site")),
               set_client_access_array, should_process=True),
        Cmdlet("Remove-ClientAccessArray", "exchange", (_IDENTITY,),
               remove_client_access_array, should_process=True),
        Cmdlet("Get-ExchangeServer", "exchange", (_OPTIONAL_IDENTITY,), get_exchange_server),
        Cmdlet("Get-ClientAccessServer", "exchange", (_OPTIONAL_IDENTITY,),
               get_client_access_server),
        Cmdlet("Set-ClientAccessServer", "exchange",
               (_IDENTITY, Param("AutoDiscoverServiceInternalUri", "uri", nullable=True),
                Param("AutoDiscoverSiteScope", "strings", nullable=True)),
               set_client_access_server, should_process=True),
        Cmdlet("Get-MailboxDatabase", "exchange", (_OPTIONAL_IDENTITY,), get_mailbox_database),
        Cmdlet("Set-MailboxDatabase", "exchange", (_IDENTITY, Param("RpcClientAccessServer")),
               set_mailbox_database, should_process=True),
        Cmdlet("Get-Mailbox", "exchange",
               (Param("Database"), Param("ResultSize", "resultsize")), get_mailbox),
        Cmdlet("Get-NlbCluster", "nlb", (Param("HostName"), Param("InterfaceName")),
               get_nlb_cluster),
        Cmdlet("Get-NlbClusterNode", "nlb",
               (Param("NodeName"), Param("HostName"), Param("InterfaceName")),
               get_nlb_cluster_node),
        Cmdlet("Add-NlbClusterNode", "nlb",
               (Param("InterfaceName", mandatory=True), Param("NewNodeName", mandatory=True),
                Param("NewNodeInterface", mandatory=True), Param("HostName"),
                Param("Force", "switch")),
               add_nlb_cluster_node),
        Cmdlet("Stop-NlbClusterNode", "nlb",
               (Param("HostName"), Param("Drain", "switch"), Param("Timeout", "uint")),
               stop_nlb_cluster_node),
        Cmdlet("Start-NlbClusterNode", "nlb", (Param("HostName"),), start_nlb_cluster_node),
        Cmdlet("Remove-NlbClusterNode", "nlb",
               (Param("HostName"), Param("InterfaceName"), Param("Force", "switch")),
               remove_nlb_cluster_node),
    )
}


def lookup(name: str, loaded: frozenset[Provider]) -> Cmdlet:
    """The cmdlet ``name`` if its snap-in or module is loaded, as command discovery would."""
    cmdlet = CMDLETS.get(name.strip().lower())
    if cmdlet is None or cmdlet.provider not in loaded:
        raise err.CommandNotFound(name)
    return cmdlet
