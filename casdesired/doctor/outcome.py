"""What stopped doctor's run, when it brought no response: which check it speaks about.

The transport's messages (casdesired.transport.errors, docs/connecting.md "When it fails") and
the agent's own texts name their cause; each kind here is the check that owns it, so that the
failure is shown once, where it belongs, and every other on-host check says it was not made.
"""

from __future__ import annotations

from typing import Literal

from casdesired.errors import AgentNotStarted, CasdesiredError, ReadFailed

Kind = Literal[
    "credentials", "tls", "network", "shells", "memory", "envelope", "serializer",
    "delivery", "agent", "wsman",
]

# (marker in the message, kind), the first that matches wins.
_MARKERS: tuple[tuple[str, Kind], ...] = (
    ("rejected the credentials", "credentials"),
    ("refused the request with HTTP 401", "credentials"),
    ("environment variable", "credentials"),
    ("TLS verification failed", "tls"),
    ("refused a new shell", "shells"),
    ("ran out of memory", "memory"),
    ("as too large (HTTP 413)", "envelope"),
    ("System.Web.Extensions", "serializer"),
    ("no agent on stdin", "delivery"),
    ("never finished reading its standard input", "delivery"),
    ("read nothing of what casdesired sent", "delivery"),
    ("agent file", "delivery"),
    ("request file", "delivery"),
    ("did not finish within", "delivery"),
    ("answered with a WS-Management fault", "wsman"),
    ("Could not connect", "network"),
    ("Could not resolve", "network"),
    ("Could not reach", "network"),
    ("Timed out after", "network"),
    ("was closed without an answer", "network"),
    ("sent no answer within", "network"),
    ("without a WS-Management fault", "network"),
    ("not WS-Management", "network"),
)


OWNER: dict[Kind, str] = {
    "credentials": "connection.auth",
    "tls": "connection.tls",
    "network": "connection.wsman",
    "wsman": "connection.wsman",
    "shells": "winrm.shells",
    "memory": "winrm.memory",
    "envelope": "winrm.envelope",
    "serializer": "host.json",
    "delivery": "host.delivery",
    "agent": "host.delivery",
}
"""The check that reports each kind of failure."""


def kind(error: CasdesiredError | None) -> Kind | None:
    """The cause of a run that brought no response; None when there was no error."""
    if error is None:
        return None
    text = str(error)
    for marker, found in _MARKERS:
        if marker in text:
            return found
    if isinstance(error, AgentNotStarted):
        return "network"
    return "agent"


def authenticated(error: CasdesiredError | None) -> bool:
    """Whether the service had accepted the logon before the run stopped: it ran a command,
    or answered an authenticated request with a WS-Management fault or a quota."""
    found = kind(error)
    if found in ("shells", "wsman", "memory", "envelope", "serializer", "delivery"):
        return True
    return (found == "agent" and not isinstance(error, AgentNotStarted)) or isinstance(
        error, ReadFailed
    )


def owns(check_id: str, error: CasdesiredError | None) -> bool:
    """Whether the failure ``error`` is the one check ``check_id`` reports."""
    found = kind(error)
    return found is not None and OWNER[found] == check_id


def not_run(error: CasdesiredError | None) -> str:
    """Why an on-host check was not made, for its SKIPPED evidence."""
    found = kind(error)
    if found is None:
        return "not checked: the agent did not run"
    return f"not checked: the run stopped before the agent answered (see {OWNER[found]})"
