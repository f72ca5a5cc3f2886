"""The agent's probes, as the lab runs them (mirror of the "Probes" section of agent.ps1).

``casdesired doctor`` asks the host what casdesired relies on, through five functions the agent
defines itself; each only reads. The lab answers as the Windows host its settings describe
(:class:`~casdesired.lab.exchange.models.Behaviour`'s ``host_*``, ``lock_directory_writable``,
``rbac_not_granted``; each server's ``registry``, ``nlb_module`` and ``reachable``; the lab's
WinRM quotas), so that every check doctor makes can be seen passing and failing.

They exist only where the agent runs (on the endpoint host: a PSSession to another computer does
not have them) and only in a run whose agent came with probes.ps1 (a diagnose request's); their
parameters are bound as strictly as a cmdlet's, and the texts are Windows' own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from casdesired.lab.exchange import agent_functions, cmdlets, locks, rbac
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import Cmdlet, CmdletContext, Obj, Param
from casdesired.lab.exchange.models import Server

JSON_SERIALIZER = (
    "System.Web.Extensions, Version=3.5.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"
)
PROCESS_POLICY = "Bypass"
"""What the agent's command line asks for (``-ExecutionPolicy Bypass``)."""
LOCAL_MACHINE_POLICY = "RemoteSigned"
"""What Exchange 2010's setup leaves on the server."""
RPC_PORT = "MSExchangeRPC\\ParametersSystem\\TCP/IP Port"
ADDRESS_BOOK_PORT = "MSExchangeAB\\Parameters\\RpcTcpPort"
LOCK_DIRECTORY = locks.LOCK_PATH.rsplit("\\", 1)[0]
PROGRAM_DATA = "C:\\ProgramData"
# What WMI says when it cannot reach a computer, and when it refuses the caller.
RPC_UNAVAILABLE = "The RPC server is unavailable. (Exception from HRESULT: 0x800706BA)"
COMMON_PARAMETERS = (
    "Verbose", "Debug", "ErrorAction", "WarningAction", "ErrorVariable", "WarningVariable",
    "OutVariable", "OutBuffer",
)


def _iso(moment: float) -> str:
    """``[DateTime]::UtcNow.ToString('o')``."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def get_host(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    settings = ctx.state.settings
    server = ctx.state.find_server(ctx.state.endpoint_host)
    gpo = settings.host_execution_policy_gpo
    scopes = (
        ("MachinePolicy", gpo),
        ("UserPolicy", "Undefined"),
        ("Process", PROCESS_POLICY),
        ("CurrentUser", "Undefined"),
        ("LocalMachine", LOCAL_MACHINE_POLICY),
    )
    effective = next(policy for _, policy in scopes if policy != "Undefined")
    return [{
        "ComputerName": server.name,
        "Fqdn": server.fqdn,
        "OperatingSystem": settings.host_os,
        "OSVersion": settings.host_os_version,
        "PSVersion": settings.host_powershell_version,
        "CLRVersion": settings.host_clr_version,
        "ExecutionPolicy": effective,
        "ExecutionPolicies": [f"{scope}={policy}" for scope, policy in scopes],
        "JsonSerializer": JSON_SERIALIZER,
        "GZipRoundTrip": settings.host_gzip_round_trip,
        "UtcNow": _iso(ctx.now),
        "Echo": args.get("Echo", ""),
    }]


def get_winrm_config(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    """``Get-Item WSMan:\\localhost\\...``: every value a string, as the provider gives it."""
    config: Obj = {name: str(value) for name, value in ctx.winrm.items()}
    config["Errors"] = []
    return [config]


def get_command(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    """What ``Get-Command`` finds in this session for each name: the Exchange cmdlets of the
    session (RBAC-filtered through remote /PowerShell), the module's, the agent's own."""
    settings = ctx.state.settings
    found: list[Obj] = []
    for name in args["Name"]:
        command = _command(ctx, name)
        if command is None or not rbac.published(settings, ctx.session, command):
            found.append({"Name": name, "Available": False, "Parameters": []})
            continue
        parameters = rbac.published_parameters(settings, ctx.session, command)
        found.append({
            "Name": name,
            "Available": True,
            "Parameters": [*parameters, *COMMON_PARAMETERS],
        })
    return found


def _command(ctx: CmdletContext, name: str) -> Cmdlet | None:
    agent_function = agent_functions.lookup(name) or lookup(name)
    if agent_function is not None:
        return agent_function if agent_function.provider in ctx.loaded | {"agent"} else None
    try:
        return cmdlets.lookup(name, ctx.loaded)
    except err.CommandNotFound:
        return None


def get_static_port(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    """StdRegProv on ``ComputerName`` through WMI: with the request's credential for another
    computer (a WMI connection of this logon's own would be a second hop), none locally."""
    name: str = args["ComputerName"]
    server = _reach_by_wmi(ctx, name)
    return [{
        "ComputerName": name,
        "RpcTcpPort": _registry_text(server.registry.get(RPC_PORT)),
        "AddressBookPort": _registry_text(server.registry.get(ADDRESS_BOOK_PORT)),
    }]


def _reach_by_wmi(ctx: CmdletContext, name: str) -> Server:
    try:
        server = ctx.state.find_server(name)
    except err.ObjectNotFound:
        raise err.ExchangeError(RPC_UNAVAILABLE, target=name, category="COMException") from None
    if server.name.lower() == ctx.session.computer.split(".")[0].lower():
        return server
    if not server.reachable:
        raise err.ExchangeError(RPC_UNAVAILABLE, target=name, category="COMException")
    if not ctx.session.delegates and ctx.session.credential_valid is not True:
        # Without a credential the logon's own token would have to hop; a wrong one is refused.
        raise err.ExchangeError(err.ACCESS_DENIED, target=name, category="UnauthorizedAccess")
    return server


def _registry_text(value: int | str | None) -> str:
    """Read-AgentRegistryValue's answer: ``REG_DWORD|59531``, ``REG_SZ|59532`` or ''."""
    if value is None:
        return ""
    return f"REG_DWORD|{value}" if isinstance(value, int) else f"REG_SZ|{value}"


def get_lock_directory(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    files = ctx.state.files
    parent = LOCK_DIRECTORY.rsplit("\\", 1)[0]
    exists = any(path.startswith(LOCK_DIRECTORY + "\\") for path in files)
    if exists:
        nearest = LOCK_DIRECTORY
    elif any(path.startswith(parent + "\\") for path in files):
        nearest = parent
    else:
        nearest = PROGRAM_DATA
    return [{
        "Path": locks.LOCK_PATH,
        "Directory": LOCK_DIRECTORY,
        "Exists": exists,
        "NearestExisting": nearest,
        "Writable": ctx.state.settings.lock_directory_writable,
        "User": ctx.session.user,
    }]


FUNCTIONS: dict[str, Cmdlet] = {
    f.name.lower(): f
    for f in (
        Cmdlet("Get-CasdesiredHost", "probes", (Param("Echo"),), get_host),
        Cmdlet("Get-CasdesiredWinRMConfig", "probes", (), get_winrm_config),
        Cmdlet("Get-CasdesiredCommand", "probes", (Param("Name", "strings", mandatory=True),),
               get_command),
        Cmdlet("Get-CasdesiredStaticPort", "probes", (Param("ComputerName", mandatory=True),),
               get_static_port),
        Cmdlet("Get-CasdesiredLockDirectory", "probes", (), get_lock_directory),
    )
}


def lookup(name: str) -> Cmdlet | None:
    """The agent's probe function ``name``, if it is one."""
    return FUNCTIONS.get(name.strip().lower())
