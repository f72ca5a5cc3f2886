"""Host checks: Windows, PowerShell and its CLR, execution policy, JSON, gzip, the delivery.

All from the agent's ``Get-CasdesiredHost`` in doctor's run, or, when the run brought nothing
back, from why it did not (no System.Web.Extensions, an agent that never read its request).
"""

from __future__ import annotations

import re

from casdesired.doctor import outcome
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.doctor.probe import HOST, ProbeRun, texts

TITLES = {
    "host.windows": "Windows version",
    "host.powershell": "PowerShell version (2.0 next to Exchange 2010)",
    "host.clr": "CLR version",
    "host.execution-policy": "execution policy as it applies to the agent",
    "host.json": "JavaScriptSerializer (System.Web.Extensions) loads",
    "host.gzip": "GZipStream round-trips",
    "host.delivery": "the agent's delivery: the request reaches it, its answer comes back",
}
SUPPORTED_WINDOWS = {
    "6.0": "Windows Server 2008 SP2", "6.1": "Windows Server 2008 R2",
    "6.2": "Windows Server 2012 (Exchange 2010 SP3)",
}
BLOCKING_POLICIES = ("Restricted", "AllSigned")
NET35 = (
    "Install .NET Framework 3.5.1 on the host (Exchange 2010 needs it): in an elevated "
    "PowerShell, 'Import-Module ServerManager; Add-WindowsFeature NET-Framework-Core'."
)


def _major_minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"\s*(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def checks(run: ProbeRun, delivery: str = "stdin") -> list[Check]:
    if not run.ran:
        return [_not_run(check_id, run, delivery) for check_id in TITLES]
    host = run.first(HOST)
    if host is None:
        result = run.result(HOST)
        said = result.error.message if result is not None and result.error else "no answer"
        return [
            check(check_id, title, Status.FAIL, (f"Get-CasdesiredHost failed: {said}",),
                  "Run casdesired doctor again; if it fails the same way, the host's "
                  "PowerShell is damaged (see the error).")
            for check_id, title in TITLES.items()
        ]
    ps = str(host.get("PSVersion") or "")
    return [
        _windows(host),
        _powershell(ps),
        _clr(ps, str(host.get("CLRVersion") or "")),
        _policy(str(host.get("ExecutionPolicy") or ""), texts(host.get("ExecutionPolicies")),
                run.request.exchange.mode),
        check("host.json", TITLES["host.json"], Status.PASS,
              (f"the agent loaded {host.get('JsonSerializer')}",)),
        _gzip(host.get("GZipRoundTrip") is True),
        _delivery(run, str(host.get("Echo") or ""), delivery),
    ]


def _not_run(check_id: str, run: ProbeRun, delivery: str) -> Check:
    title = TITLES[check_id]
    if not outcome.owns(check_id, run.error):
        return skipped(check_id, title, outcome.not_run(run.error))
    if check_id == "host.json":
        return check(check_id, title, Status.FAIL, (str(run.error),), NET35)
    if delivery == "stdin":
        remedy = ("Set connection.agent.delivery: file in the organisation file: it sends "
                  "nothing on stdin, which Windows PowerShell 2.0 is reported to hang on or "
                  "misread on some hosts (docs/agent.md).")
    else:
        remedy = ("See the error: the file delivery writes under %ProgramData%\\casdesired\\"
                  "agent on the endpoint, which the account must be able to write.")
    return check(check_id, title, Status.FAIL, (f"{delivery}: {run.error}",), remedy)


def _windows(host: dict[str, object] | object) -> Check:
    assert isinstance(host, dict)
    version = str(host.get("OSVersion") or "")
    shown = f"{host.get('OperatingSystem')} ({version}) on {host.get('ComputerName')}"
    found = _major_minor(version)
    key = f"{found[0]}.{found[1]}" if found else ""
    if key in SUPPORTED_WINDOWS:
        return check("host.windows", TITLES["host.windows"], Status.PASS,
                     (shown, f"Exchange 2010 runs on {SUPPORTED_WINDOWS[key]}"))
    return check("host.windows", TITLES["host.windows"], Status.WARN,
                 (shown, "not a Windows that Exchange 2010 runs on (2008 SP2, 2008 R2, 2012 "
                  "from SP3): is the endpoint an Exchange server?"),
                 "Point connection.endpoint at an Exchange 2010 server (or a host with its "
                 "management tools); casdesired was built for Windows Server 2008 R2.",
                 anchor="host-windows")


def _powershell(ps: str) -> Check:
    title = TITLES["host.powershell"]
    found = _major_minor(ps)
    if found is not None and found[0] == 2:
        return check("host.powershell", title, Status.PASS,
                     (f"PowerShell {ps}, the version Exchange 2010 runs on",))
    if found is not None and found[0] == 3:
        return check("host.powershell", title, Status.FAIL,
                     (f"PowerShell {ps}: WMF 3.0 is not supported next to Exchange 2010 (it "
                      "breaks the Exchange Management Shell and update rollups)",),
                     "Uninstall Windows Management Framework 3.0 (KB2506143) from the host, "
                     "or point connection.endpoint at an Exchange 2010 server without it.",
                     anchor="host-powershell")
    return check("host.powershell", title, Status.WARN,
                 (f"PowerShell {ps or 'of an unknown version'}: Exchange 2010 supports 2.0, "
                  "and WMF 4.0 only from SP3 RU5; the agent is written for 2.0 and runs on "
                  "later versions too",),
                 "Check that the host's Exchange 2010 supports this WMF (SP3 RU5 or later for "
                 "4.0); otherwise remove it.", anchor="host-powershell")


def _clr(ps: str, clr: str) -> Check:
    title = TITLES["host.clr"]
    found, ps_found = _major_minor(clr), _major_minor(ps)
    if found is not None and found[0] == 2:
        return check("host.clr", title, Status.PASS,
                     (f"CLR {clr} (.NET 2.0-3.5), as PowerShell 2.0 runs",))
    if found is not None and found[0] >= 4 and ps_found is not None and ps_found[0] == 2:
        return check("host.clr", title, Status.FAIL,
                     (f"PowerShell {ps} on CLR {clr}: a powershell.exe.config forces .NET 4, "
                      "where Exchange 2010's snap-in and session proxies do not load "
                      "[inferred]",),
                     "Remove the <supportedRuntime version=\"v4.0\"/> lines from "
                     "%windir%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe.config on "
                     "the host.", anchor="host-clr")
    return check("host.clr", title, Status.PASS if found else Status.WARN,
                 (f"CLR {clr or 'unknown'} with PowerShell {ps}",),
                 "The agent could not read the CLR version; see host.powershell.",
                 anchor="host-clr")


def _policy(effective: str, scopes: list[str], mode: str) -> Check:
    title = TITLES["host.execution-policy"]
    by_scope = dict(s.split("=", 1) for s in scopes if "=" in s)
    group = {k: v for k, v in by_scope.items()
             if k in ("MachinePolicy", "UserPolicy") and v != "Undefined"}
    evidence = [f"in force: {effective}", f"by scope: {', '.join(scopes)}",
                "the agent itself runs as a script block (either delivery), which execution "
                "policy does not cover"]
    blocking = {k: v for k, v in group.items() if v in BLOCKING_POLICIES}
    if not blocking:
        reason = ("no Group Policy overrides the agent's -ExecutionPolicy Bypass" if not group
                  else "Group Policy sets a policy that lets local scripts run")
        return check("host.execution-policy", title, Status.PASS, (*evidence, reason))
    where = ", ".join(f"{k}={v}" for k, v in blocking.items())
    evidence.append(f"Group Policy ({where}) beats the agent's -ExecutionPolicy Bypass")
    remedy = ("Set the GPO's 'Turn on Script Execution' to allow local scripts "
              "(RemoteSigned) for the endpoint, or exempt it from that GPO.")
    if mode == "remote":
        evidence.append("Import-PSSession writes the Exchange session's proxies to an unsigned "
                        "temporary module and loads it, which this policy refuses [inferred]: "
                        "see exchange.session")
        return check("host.execution-policy", title, Status.FAIL, evidence, remedy)
    return check("host.execution-policy", title, Status.WARN,
                 (*evidence, "the snap-in's and the NLB module's format files are signed by "
                  "Microsoft; Restricted refuses even those [inferred]"), remedy)


def _gzip(round_trip: bool) -> Check:
    title = TITLES["host.gzip"]
    if round_trip:
        return check("host.gzip", title, Status.PASS,
                     ("GZipStream packed and unpacked a probe to the same text; the agent's "
                      "answer came gzip-framed",))
    return check("host.gzip", title, Status.FAIL,
                 ("GZipStream gave back other bytes than it was given",),
                 "The host's .NET Framework is damaged: repair it (the .NET Framework Repair "
                 "Tool, or reinstall .NET 3.5.1: 'Add-WindowsFeature NET-Framework-Core').",
                 anchor="host-gzip")


def _delivery(run: ProbeRun, echo: str, delivery: str) -> Check:
    title = TITLES["host.delivery"]
    if echo == run.echo:
        return check("host.delivery", title, Status.PASS,
                     (f"{delivery}: the request reached the agent and its nonce {echo} came "
                      "back with the answer",))
    return check("host.delivery", title, Status.FAIL,
                 (f"{delivery}: the agent echoed {echo!r}, not the request's {run.echo!r}: "
                  "the request arrived altered",),
                 "See docs/first-contact.md#host-delivery.", anchor="host-delivery")
