"""``casdesired doctor`` end to end: look at the endpoint, run the agent once, check it all.

The path: the organisation file's connection (as ``plan`` connects: the embedded lab for
``endpoint: lab``, else WinRM with the environment's credentials) -> two looks that execute
nothing (:func:`casdesired.doctor.connection.look`) -> doctor's one command execution
(:func:`casdesired.doctor.probe.run`) -> every family's checks from what came back, and the DNS
checks from the runner. Nothing is written anywhere: the request is a diagnose request (read
allow-list only), no lock is taken, and DNS is only queried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from urllib.parse import urlsplit

from casdesired.agent import protocol
from casdesired.desired.config import DesiredState, display_url
from casdesired.doctor import (
    clock,
    connection,
    dns,
    exchange,
    host,
    lock,
    nlb,
    ports,
    probe,
    quotas,
)
from casdesired.doctor.model import Check, Report
from casdesired.errors import ConfigError, ConnectionFailed
from casdesired.plan.build import connect
from casdesired.transport.winrm import WinRMTarget

Progress = Callable[[str], None]


def diagnose(
    desired: DesiredState, environ: Mapping[str, str], *, progress: Progress | None = None
) -> Report:
    """Every check of ``casdesired doctor`` for ``desired``'s organisation (see the module)."""
    say = progress or (lambda _message: None)
    org = desired.organisation
    target: WinRMTarget | None = None
    endpoint: connection.Endpoint | None = None
    run: probe.ProbeRun | None = None
    problem: ConfigError | ConnectionFailed | None = None
    executions = 0
    try:
        with connect(org, environ) as client:
            target = client.target
            say(f"looking at {display_url(target.url)}")
            endpoint = connection.look(target)
            say("running the agent's probes (one command execution)")
            run = probe.run(desired, client)
            executions = client.executions
    except (ConfigError, ConnectionFailed) as exc:  # credentials missing, an extra not installed
        problem = exc
    found: list[Check] = [
        *connection.checks(org, target, endpoint, run, problem, datetime.now(timezone.utc))
    ]
    ran = run or probe.ProbeRun(
        protocol.Request(invocations=()), "", None, problem, 0.0, 0.0, ()
    )
    user = target.username if target is not None else None
    found += host.checks(ran, target.delivery if target is not None else "stdin")
    found += quotas.checks(ran, target)
    found += exchange.checks(ran, user)
    found += nlb.checks(ran, desired)
    found += lock.checks(ran, org.path)
    say("checking DNS")
    found += dns.checks(desired, environ, _names(target, ran))
    found += ports.checks(ran, desired)
    found += clock.checks(ran, org.connection.transport)
    shown = org.connection.endpoint
    if target is not None and org.connection.is_lab:
        shown = f"lab ({target.url})"
    return Report(org.name, display_url(shown), tuple(found), executions)


def _names(target: WinRMTarget | None, run: probe.ProbeRun) -> list[str]:
    """DNS names of the organisation's hosts: the endpoint's, then every Exchange server's."""
    names = [urlsplit(target.url).hostname or ""] if target is not None else []
    servers = run.result("read:servers")
    if servers is not None and servers.ok:
        names += [str(server.get("Fqdn") or "") for server in servers.objects]
    return [name for name in names if name]
