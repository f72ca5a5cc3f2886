"""WinRM quota checks: the host's values against what this organisation needs of them.

The values come from the agent's ``Get-CasdesiredWinRMConfig`` (``WSMan:\\localhost``). What
casdesired needs: requests of about 90 KB (MaxEnvelopeSizekb), Receives of up to 60 s
(MaxTimeoutms), one shell per run plus another run's (MaxShellsPerUser), memory for a full read
of *this* organisation (MaxMemoryPerShellMB, against casdesired.agent.memory's estimate), and an
IdleTimeout longer than a Receive but short enough that a killed run's shell frees up soon.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from casdesired.agent import memory
from casdesired.agent.delivery import files
from casdesired.agent.delivery.stdin import encode_stdin
from casdesired.agent.protocol import JsonValue, Request, Response
from casdesired.agent.script import agent_script
from casdesired.doctor import outcome
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.doctor.probe import READS, WINRM, ProbeRun, texts
from casdesired.transport.session import MAX_OPERATION_TIMEOUT_SECONDS
from casdesired.transport.shell import STDIN_CHUNK_BYTES
from casdesired.transport.winrm import WinRMTarget

TITLES = {
    "winrm.envelope": "MaxEnvelopeSizekb (the largest request)",
    "winrm.timeout": "MaxTimeoutms (how long a Receive may wait)",
    "winrm.shells": "MaxShellsPerUser (shells open at once)",
    "winrm.memory": "MaxMemoryPerShellMB against the agent's estimated peak",
    "winrm.idle": "IdleTimeout (when an abandoned shell closes)",
}
ENVELOPE_OVERHEAD_KB = 8
"""The WS-Man envelope and NTLM's sealing around a Send's base64 (generous)."""
NEEDED_ENVELOPE_KB = {
    "stdin": math.ceil(STDIN_CHUNK_BYTES * 4 / 3 / 1024) + ENVELOPE_OVERHEAD_KB,
    "file": math.ceil(files.CMD_MAX_LINE / 1024) + ENVELOPE_OVERHEAD_KB,
}
"""The largest request of each delivery: a 64 KiB piece of stdin in base64, or one command
line of cmd.exe (at most 8,191 characters), in its envelope."""
MIN_SHELLS = 2
MEMORY_MARGIN = 0.8
"""Above this share of the quota the estimate leaves too little room for its own error."""
IDLE_TOO_LONG_MS = 30 * 60 * 1000
PLAN_NLB_READS = ("doctor:nlb-cluster:", "doctor:nlb-nodes:")
"""The NLB reads plan makes too (each cluster and its nodes, on the cluster host)."""
WINRM_SET = "winrm set winrm/config{path} @{{{name}=\"{value}\"}}"


def _number(config: Mapping[str, JsonValue], name: str) -> int | None:
    value = config.get(name)
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def checks(run: ProbeRun, target: WinRMTarget | None) -> list[Check]:
    if not run.ran:
        return [_not_run(check_id, run) for check_id in TITLES]
    config = run.first(WINRM)
    if config is None:
        result = run.result(WINRM)
        said = result.error.message if result is not None and result.error else "no answer"
        return [check(i, t, Status.FAIL, (f"Get-CasdesiredWinRMConfig failed: {said}",),
                      "Reading WSMan:\\localhost needs an administrator on the host: add the "
                      "account to its local Administrators group.")
                for i, t in TITLES.items()]
    unread = "; ".join(texts(config.get("Errors")))
    operation = min(
        math.ceil(target.operation_timeout) if target else MAX_OPERATION_TIMEOUT_SECONDS,
        MAX_OPERATION_TIMEOUT_SECONDS,
    )
    found = [
        _envelope(_number(config, "MaxEnvelopeSizekb"),
                  target.delivery if target is not None else "stdin"),
        _timeout(_number(config, "MaxTimeoutms"), operation),
        _shells(_number(config, "MaxShellsPerUser")),
        _memory(_number(config, "MaxMemoryPerShellMB"), run),
        _idle(_number(config, "IdleTimeout"), operation),
    ]
    if unread:
        found = [c if c.status is not Status.SKIPPED else
                 skipped(c.id, c.title, f"could not be read: {unread}") for c in found]
    return found


def _not_run(check_id: str, run: ProbeRun) -> Check:
    title = TITLES[check_id]
    if not outcome.owns(check_id, run.error):
        return skipped(check_id, title, outcome.not_run(run.error))
    remedy = {
        "winrm.shells": WINRM_SET.format(path="/winrs", name="MaxShellsPerUser", value=10),
        "winrm.memory": WINRM_SET.format(path="/winrs", name="MaxMemoryPerShellMB", value=1024),
        "winrm.envelope": WINRM_SET.format(path="", name="MaxEnvelopeSizekb", value=500),
    }[check_id]
    return check(check_id, title, Status.FAIL, (str(run.error),),
                 f"On the host, in an elevated prompt: {remedy}", )


def _missing(check_id: str) -> Check:
    return skipped(check_id, TITLES[check_id], "the host did not report this value")


def _envelope(kb: int | None, delivery: str) -> Check:
    if kb is None:
        return _missing("winrm.envelope")
    needed = NEEDED_ENVELOPE_KB.get(delivery, max(NEEDED_ENVELOPE_KB.values()))
    what = (f"a {STDIN_CHUNK_BYTES // 1024} KiB piece of stdin, base64" if delivery == "stdin"
            else "one cmd.exe command line of the file delivery")
    facts = (f"MaxEnvelopeSizekb is {kb}; casdesired's largest request is about {needed} KB "
             f"({what}, in its envelope)",)
    if kb < needed:
        return check("winrm.envelope", TITLES["winrm.envelope"], Status.FAIL, facts,
                     "On the host, in an elevated prompt: "
                     + WINRM_SET.format(path="", name="MaxEnvelopeSizekb", value=500),
                     anchor="winrm-envelope")
    return check("winrm.envelope", TITLES["winrm.envelope"], Status.PASS, facts)


def _timeout(ms: int | None, operation: int) -> Check:
    if ms is None:
        return _missing("winrm.timeout")
    facts = (f"MaxTimeoutms is {ms}; casdesired asks a Receive to wait up to {operation} s",)
    if ms < operation * 1000:
        return check("winrm.timeout", TITLES["winrm.timeout"], Status.WARN,
                     (*facts, "WinRM shortens each wait to its maximum: the same answers, in "
                      "more round trips"),
                     "Optional, on the host: "
                     + WINRM_SET.format(path="", name="MaxTimeoutms", value=60000),
                     anchor="winrm-timeout")
    return check("winrm.timeout", TITLES["winrm.timeout"], Status.PASS, facts)


def _shells(shells: int | None) -> Check:
    if shells is None:
        return _missing("winrm.shells")
    facts = (f"MaxShellsPerUser is {shells}; each casdesired run opens one shell and closes "
             "it (a run killed before it could close one leaves it open until IdleTimeout)",)
    if shells < MIN_SHELLS:
        return check("winrm.shells", TITLES["winrm.shells"], Status.FAIL,
                     (*facts, "with one shell per user, any other shell of the account (another "
                      "pipeline's run, a killed run's) refuses the next run"),
                     "On the host, in an elevated prompt: "
                     + WINRM_SET.format(path="/winrs", name="MaxShellsPerUser", value=10),
                     anchor="winrm-shells")
    return check("winrm.shells", TITLES["winrm.shells"], Status.PASS, facts)


def _memory(quota: int | None, run: ProbeRun) -> Check:
    title = TITLES["winrm.memory"]
    if quota is None:
        return _missing("winrm.memory")
    estimate = full_read_estimate(run)
    if estimate is None:
        return skipped("winrm.memory", title,
                       f"MaxMemoryPerShellMB is {quota}; the organisation's size could not be "
                       "read (see exchange.read), so the agent's peak cannot be estimated")
    peak, sizes = estimate
    facts = (
        f"MaxMemoryPerShellMB is {quota}",
        f"a full read of this organisation ({sizes}) is estimated at {peak:.0f} MB at its "
        "peak (casdesired.agent.memory; docs/connecting.md#winrms-quotas-windows-server-2008-r2)",
    )
    remedy = "On the host, in an elevated prompt: " + WINRM_SET.format(
        path="/winrs", name="MaxMemoryPerShellMB", value=max(1024, 2 ** math.ceil(
            math.log2(peak * 2))))
    if peak > quota:
        return check("winrm.memory", title, Status.FAIL,
                     (*facts, "plan would die of the quota: WinRM ends the agent at the "
                      "allocation that crosses it"), remedy, anchor="winrm-memory")
    if peak > quota * MEMORY_MARGIN:
        return check("winrm.memory", title, Status.WARN,
                     (*facts, f"over {MEMORY_MARGIN:.0%} of the quota: the estimate's own error "
                      "could cross it"), remedy, anchor="winrm-memory")
    return check("winrm.memory", title, Status.PASS, facts)


def full_read_estimate(run: ProbeRun) -> tuple[float, str] | None:
    """The agent's estimated peak (MB) for plan's full read of this organisation, from what
    doctor's run read of it (the same invocations and properties), and the sizes it counted."""
    results = [run.result(i) for i in READS if i.startswith("read:")]
    if any(r is None or not r.ok for r in results):
        return None
    read = [r for r in results if r is not None]
    nodes = [
        r for r in (run.response.results if run.response else ())
        if r.id.startswith(PLAN_NLB_READS) and r.ok
    ]
    request = Request(
        invocations=tuple(i for i in run.request.invocations
                          if i.id in READS or i.id.startswith(PLAN_NLB_READS)),
        exchange=run.request.exchange,
        modules=run.request.modules,
        credential=run.request.credential,
    )
    answer = Response(results=(*read, *nodes))
    stdin = len(encode_stdin(agent_script(), request))
    parts = memory.parts(request, stdin, memory.Answer.of(answer))
    counts = {r.id.removeprefix("read:"): len(r.objects) for r in read}
    sizes = (f"{counts.get('databases', 0)} databases, {counts.get('servers', 0)} servers, "
             f"{counts.get('arrays', 0)} arrays, "
             f"{sum(1 for r in nodes if r.id.startswith(PLAN_NLB_READS[0]))} NLB clusters")
    return sum(mb for _, mb in parts), sizes


def _idle(idle: int | None, operation: int) -> Check:
    if idle is None:
        return _missing("winrm.idle")
    facts = (f"IdleTimeout is {idle} ms ({idle / 60000:g} min)",)
    if idle <= operation * 1000:
        return check("winrm.idle", TITLES["winrm.idle"], Status.FAIL,
                     (*facts, f"no longer than the {operation} s a Receive may wait: a shell "
                      "could be closed as idle while the agent works [inferred]"),
                     "On the host, in an elevated prompt: "
                     + WINRM_SET.format(path="/winrs", name="IdleTimeout", value=180000),
                     anchor="winrm-idle")
    if idle > IDLE_TOO_LONG_MS:
        return check("winrm.idle", TITLES["winrm.idle"], Status.WARN,
                     (*facts, "a shell left by a killed run counts against MaxShellsPerUser "
                      "that long"),
                     "On the host, in an elevated prompt: "
                     + WINRM_SET.format(path="/winrs", name="IdleTimeout", value=180000),
                     anchor="winrm-idle")
    return check("winrm.idle", TITLES["winrm.idle"], Status.PASS, facts)
