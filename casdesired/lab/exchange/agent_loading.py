"""Loading what a request needs, as agent.ps1's Main does before the first invocation.

The Exchange session (``remote``: the ``/PowerShell`` session and its import; ``snapin``), the
request's modules, the endpoint's version (Exchange 2013 or later refused) and the recipient
scope: each a step the response reports (``loading``), whose failure ends an ordinary request
(``fatal``) and is only reported in a diagnose request (casdesired doctor), as agent.ps1's
``Add-AgentStep`` does. Texts are agent.ps1's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from casdesired.agent.protocol import ALLOWED_CMDLETS, LoadStep, Request, is_allowed
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import Provider
from casdesired.lab.exchange.runner import CmdletRunner, Sessions

SNAPIN = "Microsoft.Exchange.Management.PowerShell.E2010"
EXCHANGE_TOO_NEW = (
    "Exchange Server 2013 or later detected on {host} ({version}): "
    "casdesired manages Exchange 2010 only."
)
_VERSION_MAJOR = re.compile(r"Version\s+(\d+)\.")


@dataclass(frozen=True)
class Loaded:
    """What loading gave the run: the providers loaded, the endpoint's version, and the text
    that ends the run when a step failed in an ordinary request (None: go on)."""

    loaded: frozenset[Provider]
    version: str | None
    fatal: str | None = None


def load(
    runner: CmdletRunner,
    request: Request,
    sessions: Sessions,
    host_lines: list[str],
    steps: Steps,
    probes: bool,
) -> Loaded:
    """Load what ``request`` needs in the run's ``sessions`` (``probes``: the agent came with
    probes.ps1, so its functions are defined)."""
    loaded: set[Provider] = {"probes"} if probes else set()
    endpoint = runner.hostname
    mode = request.exchange.mode
    if mode in ("snapin", "remote"):
        if mode == "remote":
            # No uri: the agent's own host's /PowerShell, as agent.ps1 works it out.
            remote_host = (
                urlsplit(request.exchange.uri).hostname or ""
                if request.exchange.uri
                else runner.hostname
            )
            uri = request.exchange.uri or f"http://{remote_host}/PowerShell/"
            failed = sessions.open_exchange(remote_host)
            if not steps.record("exchange-session", failed, uri):
                return Loaded(frozenset(loaded), None, failed or "")
            if failed is None:
                names = imported(request)
                refused = import_refused(runner.settings.host_execution_policy_gpo)
                shown = refused
                if refused is not None and request.diagnose:
                    # agent.ps1 then imports them one by one: each is refused the same way.
                    shown = f"0 of {len(names)} commands: {refused}"
                if not steps.record("import-session", shown, f"{len(names)} commands"):
                    return Loaded(frozenset(loaded), None, refused or "")
                endpoint = remote_host.split(".")[0]
                if refused is None:
                    loaded.add("exchange")
        elif not runner.has_server(runner.hostname):
            if not steps.record("exchange-session", err.SNAPIN_NOT_FOUND, ""):
                return Loaded(frozenset(loaded), None, err.SNAPIN_NOT_FOUND)
        else:
            # The snap-in's AD driver binds as the caller: a second hop unless it can delegate.
            sessions.main.exchange_reaches_ad = runner.logon.delegates
            steps.record("exchange-session", None, SNAPIN)
            loaded.add("exchange")
    for module in request.modules:
        missing = None
        if not runner.has_module(runner.hostname, module):
            missing = err.MODULE_NOT_FOUND.format(name=module)
        if not steps.record(f"module:{module}", missing, ""):
            return Loaded(frozenset(loaded), None, missing or "")
        if missing is None:
            loaded.add("nlb")
    frozen = frozenset(loaded)
    sessions.modules = tuple(request.modules)

    version: str | None = None
    if "exchange" in loaded:
        try:
            output = runner.invoke(
                "Get-ExchangeServer", {"Identity": endpoint}, frozen, sessions.main
            )
            host_lines += output.host_lines
            server = next(iter(output.objects), {})
            found = server.get("AdminDisplayVersion")
            version = None if found is None else str(found)
        except err.ExchangeError:
            version = None
        match = _VERSION_MAJOR.match(version or "")
        too_new = None
        if match and int(match.group(1)) >= 15:
            too_new = EXCHANGE_TOO_NEW.format(host=endpoint, version=version)
        if not steps.record("exchange-version", too_new, version or ""):
            return Loaded(frozenset(loaded), version, too_new or "")
        # Recipient cmdlets see the whole forest, not only this server's domain (field §3).
        scope_failed = None
        try:
            runner.invoke("Set-AdServerSettings", {"ViewEntireForest": True}, frozen,
                          sessions.main)
        except err.ExchangeError as exc:
            scope_failed = exc.message
        if not steps.record("recipient-scope", scope_failed, "ViewEntireForest"):
            return Loaded(frozenset(loaded), version, scope_failed or "")

    return Loaded(frozen, version)


def imported(request: Request) -> list[str]:
    """The commands agent.ps1 imports from the /PowerShell session in one go: the version
    check's, the recipient scope's, and those the request uses (a diagnose request: every
    Exchange command of the allow-list), its optional ones apart."""
    names = ["Get-ExchangeServer", "Set-AdServerSettings"]
    wanted = ALLOWED_CMDLETS if request.diagnose else [i.cmdlet for i in request.invocations]
    for name in wanted:
        lowered = name.lower()
        if "-nlb" in lowered or "-casdesired" in lowered or not is_allowed(name):
            continue
        if name in OPTIONAL_CMDLETS:
            continue
        if lowered not in (n.lower() for n in names):
            names.append(name)
    return names


OPTIONAL_CMDLETS = ("Get-AdminAuditLogConfig", "Search-AdminAuditLog")


def import_refused(group_policy: str) -> str | None:
    """Import-PSSession's error when the execution policy Group Policy sets refuses the module
    it generates (which beats the agent's -ExecutionPolicy Bypass); None when it loads."""
    if group_policy == "Restricted":
        return err.SCRIPTS_DISABLED.format(path=err.IMPLICIT_MODULE)
    if group_policy == "AllSigned":
        return err.NOT_SIGNED.format(path=err.IMPLICIT_MODULE)
    return None
"""agent.ps1's $OptionalCmdlets: imported apart, so one RBAC does not grant fails alone."""


class Steps:
    """Add-AgentStep: what loading the request's needs did; whether the run goes on."""

    def __init__(self, diagnose: bool) -> None:
        self.diagnose = diagnose
        self.steps: list[LoadStep] = []

    def record(self, step: str, failed: str | None, detail: str) -> bool:
        """Record ``step`` (``failed``: its error, None when it worked). False when the run must
        stop: a step failed and the request is not a diagnose request."""
        self.steps.append(LoadStep(step, failed is None, detail if failed is None else failed))
        return failed is None or self.diagnose


