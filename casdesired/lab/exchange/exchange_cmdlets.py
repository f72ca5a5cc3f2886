"""The Exchange 2010 cmdlets the lab offers: CAS arrays, servers, databases and mailboxes.

Parameters exactly as shared/domain/exchange2010.md documents them. Handlers resolve every
identity and check every rule before calling a mutating
:class:`~casdesired.lab.exchange.state.OrgState` method, so a failed invocation changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import (
    DEFAULT_RESULT_SIZE,
    CmdletContext,
    Obj,
    confirm,
)
from casdesired.lab.exchange.models import ROLE_ORDER, CasArray, Server
from casdesired.lab.exchange.state import OrgState


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
    ctx.object_modified = name if name is not None else fqdn.split(".")[0]
    if not confirm(ctx, args, "Creating Client Access array", fqdn, prompts_by_default=False):
        return []
    array = state.new_array(fqdn, site, name)
    ctx.changed = True
    return [array_object(state, array)]


def set_client_access_array(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    state = ctx.state
    array = state.find_array(args["Identity"])
    ctx.object_modified = array.name
    site = state.find_site(args["Site"]) if "Site" in args else None
    if not confirm(ctx, args, "Setting Client Access array", array.name,
                    prompts_by_default=False):
        return []
    if state.set_array(array, fqdn=args.get("Fqdn"), name=args.get("Name"), site=site):
        ctx.changed = True
    else:
        ctx.warnings.append(err.NO_SETTINGS_MODIFIED.format(identity=array.name))
    return []


def remove_client_access_array(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    array = ctx.state.find_array(args["Identity"])
    ctx.object_modified = array.name
    if confirm(ctx, args, "Removing Client Access array", array.name, prompts_by_default=True):
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
    ctx.object_modified = server.name
    if not confirm(ctx, args, "Setting Client Access server", server.name,
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
    ctx.object_modified = db.name
    pointer = (
        state.resolve_rpc_target(args["RpcClientAccessServer"])
        if "RpcClientAccessServer" in args
        else None
    )
    host = state.servers.get(db.server.lower())
    if host is not None and host.major_version >= 15:
        # A 2010 tool cannot write an object a newer version stamped (field §7).
        raise err.DataValidationError(err.FUTURE_VERSION, target=db.name)
    if not confirm(ctx, args, "Setting mailbox database", db.name, prompts_by_default=False):
        return []
    if pointer is not None and state.set_rpc(db, pointer):
        ctx.changed = True
    else:
        ctx.warnings.append(err.NO_SETTINGS_MODIFIED.format(identity=db.name))
    return []


def get_mailbox(ctx: CmdletContext, args: dict[str, Any]) -> Iterator[Obj]:
    """Mailboxes are synthesised from each database's counts, lazily; only the counts are read
    under the state lock, so a large listing does not hold it. The recipient scope is the
    server's own domain unless the session set ViewEntireForest (field §3)."""
    state = ctx.state
    if "Database" in args:
        databases = [state.find_database(args["Database"])]
    else:
        databases = sorted(state.databases.values(), key=lambda d: d.name.lower())
    counts: list[tuple[str, str, int]] = []
    for db in databases:
        counts.append((db.name, state.domain, db.mailboxes))
        if ctx.session.view_entire_forest:
            counts += [(db.name, domain, n) for domain, n in sorted(db.child_mailboxes.items())]
    limit = args.get("ResultSize", DEFAULT_RESULT_SIZE)
    total = sum(count for _, _, count in counts)
    if limit is not None and total > limit and "ResultSize" not in args:
        ctx.warnings.append(err.RESULT_SIZE_WARNING)
    return MailboxListing(counts, limit)


def set_ad_server_settings(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    """The recipient scope of *this session* only (field §3): not saved anywhere."""
    if "ViewEntireForest" in args:
        ctx.session.view_entire_forest = bool(args["ViewEntireForest"])
    return []


class MailboxListing(Iterator[Obj]):
    """Get-Mailbox's output: synthesised one mailbox at a time from each database's counts.

    ``count_by("Database")`` gives what grouping the whole listing by database would give,
    without building millions of mailbox objects; the agent executor uses it for ``group_by``.
    The answer is identical to iterating, it only costs less (the lab's cost model charges the
    same either way).
    """

    def __init__(self, counts: list[tuple[str, str, int]], limit: int | None) -> None:
        self._counts = counts
        self._limit = limit
        self._objects = _mailboxes(counts, limit)

    def __next__(self) -> Obj:
        return next(self._objects)

    def count_by(self, prop: str) -> dict[str, int] | None:
        if prop.lower() != "database":
            return None
        groups: dict[str, int] = {}
        remaining = self._limit
        for db_name, _, count in self._counts:
            taken = count if remaining is None else min(count, remaining)
            if taken > 0:
                groups[db_name] = groups.get(db_name, 0) + taken
            if remaining is not None:
                remaining -= taken
        return groups


def _mailboxes(counts: list[tuple[str, str, int]], limit: int | None) -> Iterator[Obj]:
    emitted = 0
    root = counts[0][1] if counts else ""
    for db_name, domain, count in counts:
        # The root domain's users as before; a child domain's carry its label.
        label = "" if domain == root else domain.split(".")[0].upper() + " "
        for number in range(1, count + 1):
            if limit is not None and emitted >= limit:
                return
            name = f"{db_name} {label}User {number:04d}"
            yield {
                "Name": name,
                "Identity": f"{domain}/Users/{name}",
                "Alias": f"{db_name.lower()}.{label.strip().lower()}user{number:04d}",
                "Database": db_name,
            }
            emitted += 1
