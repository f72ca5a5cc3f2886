"""Helpers for tests that drive the lab's Exchange side without the wire.

They go through the same door as the WS-Man side: :meth:`Organisation.run` with the exact
bootstrap and an agent-framed stdin, so the host's recognition, the agent executor and the
response framing are all exercised.
"""

from __future__ import annotations

from dataclasses import replace

from casdesired.agent.delivery.stdin import BOOTSTRAP_SCRIPT, encode_stdin
from casdesired.agent.framing import decode_response
from casdesired.agent.protocol import (
    AGENT_MARKER,
    Credential,
    ExchangeSession,
    Invocation,
    Request,
    Response,
)
from casdesired.agent.script import agent_script as shipped_agent_script
from casdesired.lab.process import PowerShellHost, ProcessResult

NLB_MODULES = ("NetworkLoadBalancingClusters",)


def agent_script(diagnose: bool = False) -> str:
    """The shipped agent.ps1 (with its probes for a diagnose request) when present, else a
    minimal script with the version marker."""
    try:
        return shipped_agent_script(diagnose)
    except (FileNotFoundError, OSError, RuntimeError):
        return AGENT_MARKER + "\r\n"


def run_request(host: PowerShellHost, request: Request) -> ProcessResult:
    """Run ``request`` as the reconciler sends it: with the account's credential (for the
    agent's second hops) when it names none."""
    logon = getattr(host, "logon", None)
    if request.credential is None and logon is not None:
        request = replace(request, credential=Credential(logon.user, logon.password))
    return host.run(BOOTSTRAP_SCRIPT, encode_stdin(agent_script(request.diagnose), request))


def call(
    host: PowerShellHost,
    *invocations: Invocation,
    modules: tuple[str, ...] = NLB_MODULES,
    exchange: ExchangeSession | None = None,
    credential_password: str | object | None = ...,
) -> Response:
    """Run invocations through the host as the reconciler would (the supported /PowerShell
    session, the account's credential passed inside the session); the decoded response.
    ``credential_password``: another password to pass (None: no credential at all)."""
    logon = getattr(host, "logon", None)
    credential = Credential(logon.user, logon.password) if logon is not None else None
    if credential_password is not ... and logon is not None:
        credential = (
            None if credential_password is None
            else Credential(logon.user, str(credential_password))
        )
    request = Request(
        invocations=invocations,
        modules=modules,
        exchange=exchange or ExchangeSession(),
        credential=credential,
    )
    result = host.run(BOOTSTRAP_SCRIPT, encode_stdin(agent_script(), request))
    if result.exit_code != 0:
        raise AssertionError(f"agent run failed ({result.exit_code}): {result.stderr}")
    return decode_response(result.stdout)
