"""doctor's one command execution: every on-host check in one diagnose request.

The request (:func:`request_for`) asks the agent, read-only, for everything the checks of the
host, WinRM, Exchange, NLB, the lock, the static ports and the clock need: the agent's probes,
the plan's own read (with every invocation on ``on_error: continue``, so one failure does not
hide the rest), one mailbox, the RBAC view of every Exchange command casdesired uses, each NLB
cluster on its host and each array member on itself (through a PSSession with the request's
credential, as apply reaches them: no double hop), and each array member's registry through
WMI. It is a ``diagnose`` request: loading failures come back as steps instead of stopping it,
and the agent runs nothing off the read allow-list.

:func:`run` sends it once and keeps what the checks read: the response (or the error that
stopped the run), the runner's clock around it, and how the service's answers came (sealed or
not) for the encryption check.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import requests

from casdesired import model
from casdesired.agent import protocol
from casdesired.agent.protocol import Invocation, JsonValue, LoadStep, Response, Result, Scalar
from casdesired.apply import lock as locking
from casdesired.desired.config import DesiredState
from casdesired.errors import CasdesiredError
from casdesired.live.invocations import NLB_MODULE, read_invocations
from casdesired.transport.errors import scrub
from casdesired.transport.winrm import AgentClient

HOST = "doctor:host"
WINRM = "doctor:winrm"
LOCK_DIRECTORY = "doctor:lock-directory"
LOCK = "doctor:lock"
COMMANDS = "doctor:commands"
MAILBOX = "doctor:mailbox"
AUDIT_CONFIG = "doctor:audit-config"
AUDIT_SEARCH = "Search-AdminAuditLog"
"""What casdesired drift attributes changes with (the View-Only Audit Logs role): looked up."""

WRITES: dict[str, tuple[str, ...]] = {
    "New-ClientAccessArray": ("Name", "Fqdn", "Site"),
    "Set-ClientAccessArray": ("Identity", "Fqdn", "Name"),
    "Remove-ClientAccessArray": ("Identity", "Confirm"),
    "Set-MailboxDatabase": ("Identity", "RpcClientAccessServer"),
    "Set-ClientAccessServer": (
        "Identity", "AutoDiscoverServiceInternalUri", "AutoDiscoverSiteScope"
    ),
}
"""The Exchange cmdlets casdesired's changes run, with every parameter they pass
(casdesired.changes.types; tests/doctor compares them with what each change kind sends)."""
READS: dict[str, str] = {
    "read:servers": "Get-ExchangeServer",
    "read:client-access": "Get-ClientAccessServer",
    "read:arrays": "Get-ClientAccessArray",
    "read:databases": "Get-MailboxDatabase",
    MAILBOX: "Get-Mailbox",
}
"""The read cmdlets (by the doctor invocation that runs each): run, not looked up."""


def nlb_cluster_id(host: str) -> str:
    return f"doctor:nlb-cluster:{model.key(host)}"


def nlb_nodes_id(host: str) -> str:
    return f"doctor:nlb-nodes:{model.key(host)}"


def nlb_member_id(server: str) -> str:
    return f"doctor:nlb-member:{model.key(server)}"


def ports_id(server: str) -> str:
    return f"doctor:ports:{model.key(server)}"


@dataclass(frozen=True)
class NlbArray:
    """A declared NLB array, as the NLB checks need it."""

    site: str
    fqdn: str
    vip: str
    cluster_host: str
    interface: str | None
    members: tuple[str, ...]
    """The declared members (server names)."""
    reached: tuple[tuple[str, str], ...]
    """(server name, FQDN) of every server apply may run NLB steps on, the cluster host
    apart: the declared members and the site's declared servers (a declared server that is a
    node but no member is drained and removed on itself)."""


def nlb_arrays(desired: DesiredState) -> list[NlbArray]:
    """Every present array with a Windows NLB load balancer, with its members' FQDNs."""
    found = []
    for site in desired.sites:
        array = site.array
        lb = array.load_balancer if array is not None else None
        if (
            array is None
            or array.ensure is not model.Ensure.PRESENT
            or lb is None
            or lb.kind is not model.LoadBalancerKind.NLB
            or not lb.cluster_host
        ):
            continue
        fqdns = {s.key: (s.name, s.fqdn) for s in site.servers}
        for node in lb.nodes:
            fqdns.setdefault(model.key(node.server), (node.server, node.server))
        reached = tuple(
            pair for pair in fqdns.values()
            if model.key(pair[1]) != model.key(lb.cluster_host)
            and model.key(pair[0]) != model.key(lb.cluster_host.split(".")[0])
        )
        found.append(NlbArray(site.name, array.fqdn, lb.vip, lb.cluster_host, lb.interface,
                              tuple(n.server for n in lb.nodes), reached))
    return found


def array_members(desired: DesiredState) -> dict[str, list[tuple[str, str]]]:
    """Site name -> (server name, FQDN) of the CAS servers of each site that declares a present
    array: Exchange makes every 2010 CAS of the site a member."""
    return {
        site.name: [(s.name, s.fqdn) for s in site.servers]
        for site in desired.sites
        if site.array is not None and site.array.ensure is model.Ensure.PRESENT and site.servers
    }


def request_for(desired: DesiredState, client: AgentClient, echo: str) -> protocol.Request:
    """doctor's one request (see the module docstring)."""
    mode = client.target.exchange.mode
    invocations = [
        Invocation(HOST, "Get-CasdesiredHost", {"Echo": echo}, HOST_PROPERTIES),
        Invocation(WINRM, "Get-CasdesiredWinRMConfig", {}, WINRM_PROPERTIES),
        Invocation(LOCK_DIRECTORY, "Get-CasdesiredLockDirectory", {}, LOCK_DIRECTORY_PROPERTIES),
        replace(locking.get(), id=LOCK),
    ]
    arrays = nlb_arrays(desired)
    if mode != "none":
        # The plan's own read (what plan depends on), then one mailbox: Get-Mailbox's
        # permission, without counting anyone.
        invocations += [i for i in read_invocations() if i.id in READS]
        invocations.append(
            Invocation(MAILBOX, "Get-Mailbox", {"ResultSize": 1}, ("Name", "Database"))
        )
        names: list[Scalar] = [*WRITES, *(READS.values()), AUDIT_SEARCH]
        invocations.append(Invocation(COMMANDS, "Get-CasdesiredCommand", {"Name": names},
                                      ("Name", "Available", "Parameters")))
        invocations.append(Invocation(AUDIT_CONFIG, "Get-AdminAuditLogConfig", {},
                                      AUDIT_PROPERTIES))
    for array in arrays:
        invocations += [
            Invocation(nlb_cluster_id(array.cluster_host), "Get-NlbCluster", {},
                       ("Name", "IPAddress", "SubnetMask", "Mode"),
                       computer=array.cluster_host),
            Invocation(nlb_nodes_id(array.cluster_host), "Get-NlbClusterNode", {},
                       ("Name", "State", "InterfaceName"), computer=array.cluster_host),
        ]
    reached = {model.key(name): fqdn for array in arrays for name, fqdn in array.reached}
    for key, fqdn in reached.items():
        invocations.append(Invocation(nlb_member_id(key), "Get-NlbClusterNode", {},
                                      ("Name", "State"), computer=fqdn))
    servers = {model.key(n): (n, f) for pairs in array_members(desired).values() for n, f in pairs}
    for name, fqdn in servers.values():
        invocations.append(Invocation(ports_id(name), "Get-CasdesiredStaticPort",
                                      {"ComputerName": fqdn}, PORT_PROPERTIES))
    modules = (NLB_MODULE,) if arrays else ()
    invocations = [replace(i, on_error="continue") for i in invocations]
    return replace(client.make_request(tuple(invocations), modules=modules), diagnose=True)


HOST_PROPERTIES = (
    "ComputerName", "Fqdn", "OperatingSystem", "OSVersion", "PSVersion", "CLRVersion",
    "ExecutionPolicy", "ExecutionPolicies", "JsonSerializer", "GZipRoundTrip", "UtcNow", "Echo",
)
WINRM_PROPERTIES = (
    "MaxEnvelopeSizekb", "MaxTimeoutms", "MaxShellsPerUser", "MaxMemoryPerShellMB",
    "IdleTimeout", "Errors",
)
LOCK_DIRECTORY_PROPERTIES = ("Path", "Directory", "Exists", "NearestExisting", "Writable", "User")
PORT_PROPERTIES = ("ComputerName", "RpcTcpPort", "AddressBookPort")
AUDIT_PROPERTIES = (
    "AdminAuditLogEnabled", "AdminAuditLogCmdlets", "AdminAuditLogParameters",
    "AdminAuditLogExcludedCmdlets", "AdminAuditLogAgeLimit",
)


@dataclass(frozen=True)
class ProbeRun:
    """What doctor's one execution brought back."""

    request: protocol.Request
    echo: str
    response: Response | None
    error: CasdesiredError | None
    """Why the run brought no response (the connection, the agent's start); None if it did."""
    started: float
    finished: float
    """The runner's clock (epoch seconds) just before sending and just after the answer."""
    answers: tuple[tuple[int, str], ...]
    """(HTTP status, Content-Type) of every answer of the service during the run."""

    def result(self, invocation_id: str) -> Result | None:
        return self.response.result(invocation_id) if self.response is not None else None

    def first(self, invocation_id: str) -> Mapping[str, JsonValue] | None:
        """The first object of a successful invocation (None: failed, not run, or empty)."""
        result = self.result(invocation_id)
        if result is None or not result.ok or not result.objects:
            return None
        return result.objects[0]

    def step(self, name: str) -> LoadStep | None:
        if self.response is None:
            return None
        return next((s for s in self.response.loading if s.step == name), None)

    @property
    def ran(self) -> bool:
        return self.response is not None


def run(desired: DesiredState, client: AgentClient) -> ProbeRun:
    """Send doctor's request once; never raises for what the host or the network did."""
    echo = secrets.token_hex(8)
    request = request_for(desired, client, echo)
    seen: list[tuple[int, str]] = []

    def observe(answer: requests.Response) -> None:
        seen.append((answer.status_code, answer.headers.get("Content-Type", "")))

    client.observe = observe
    started = time.time()
    try:
        response: Response | None = _scrubbed(client.run(request), client.target.secrets)
        error: CasdesiredError | None = None
    except CasdesiredError as exc:
        response, error = None, exc
    finally:
        client.observe = None
    return ProbeRun(request, echo, response, error, started, time.time(), tuple(seen))


def _scrubbed(response: Response, secrets: Sequence[str | None]) -> Response:
    """The response with any secret in the host's own texts (errors, loading steps) masked:
    doctor quotes them as evidence. (casdesired's own words are never scrubbed: masking a
    password inside them would say what it is, docs/connecting.md.)"""
    results = tuple(
        replace(r, error=replace(r.error, message=scrub(r.error.message, secrets)))
        if r.error is not None else r
        for r in response.results
    )
    loading = tuple(replace(s, detail=scrub(s.detail, secrets)) for s in response.loading)
    return replace(response, results=results, loading=loading)


def failed_invocations(run: ProbeRun, ids: Iterable[str]) -> list[tuple[str, str]]:
    """(invocation id, error text) of those of ``ids`` that failed or did not run."""
    failures = []
    for invocation_id in ids:
        result = run.result(invocation_id)
        if result is None:
            failures.append((invocation_id, "not run"))
        elif not result.ok:
            failures.append((invocation_id, result.error.message if result.error else "failed"))
    return failures


def texts(value: JsonValue) -> list[str]:
    """A property that is a list of strings (or one string) as a list."""
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [] if value is None else [str(value)]


def joined(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"
