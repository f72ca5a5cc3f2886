"""What the agent runs: the allow-list, its writes (fenced) and its reads (diagnose requests).

agent.ps1 repeats each list literally (``$AllowedCmdlets``, ``$FencedCmdlets``,
``$ReadCmdlets``; tests/agent checks they are equal), so no request can widen one; the lab's
executor enforces them too, and :func:`check_allowed` refuses, before anything is sent, a
request the agent would refuse. :mod:`casdesired.agent.protocol` re-exports every name here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from casdesired.errors import ProtocolError

if TYPE_CHECKING:
    from casdesired.agent.protocol import Request

ALLOWED_CMDLETS: tuple[str, ...] = (
    # Exchange 2010: what the reader reads and what changes write.
    "Get-ExchangeServer",
    "Get-ClientAccessServer",
    "Set-ClientAccessServer",
    "Get-ClientAccessArray",
    "New-ClientAccessArray",
    "Set-ClientAccessArray",
    "Remove-ClientAccessArray",
    "Get-MailboxDatabase",
    "Set-MailboxDatabase",
    "Get-Mailbox",
    # Exchange 2010 SP1's admin audit log: who changed what (casdesired drift). Read only.
    "Get-AdminAuditLogConfig",
    "Search-AdminAuditLog",
    # Windows NLB (module NetworkLoadBalancingClusters). Start-NlbClusterNode is not sent by
    # casdesired today; plans tell operators to use it to bring a stopped node back.
    "Get-NlbCluster",
    "Get-NlbClusterNode",
    "Add-NlbClusterNode",
    "Stop-NlbClusterNode",
    "Start-NlbClusterNode",
    "Remove-NlbClusterNode",
    # The agent's own functions: the organisation lock (agent.ps1, "The organisation lock").
    "Enter-CasdesiredLock",
    "Update-CasdesiredLock",
    "Exit-CasdesiredLock",
    "Remove-CasdesiredLock",
    "Get-CasdesiredLock",
    "Register-CasdesiredPlan",
    "Get-CasdesiredPlanRecord",
    # The agent's own probes (``casdesired doctor``; agent.ps1, "Probes"): each only reads.
    "Get-CasdesiredHost",
    "Get-CasdesiredWinRMConfig",
    "Get-CasdesiredCommand",
    "Get-CasdesiredStaticPort",
    "Get-CasdesiredLockDirectory",
)
"""Every command the agent runs; anything else is refused. agent.ps1 repeats this list
literally (``$AllowedCmdlets``; tests/agent checks the two are equal) so that no request can
widen it. Names compare case-insensitively, as PowerShell's do."""

_ALLOWED_KEYS = frozenset(name.lower() for name in ALLOWED_CMDLETS)

KEEPALIVE_FAILED = "casdesired: stopped: the keepalive {cmdlet} failed: {message}"
"""The agent's text (``stopped``, and the error of an ``until`` it cut short) when a keepalive
fails: nothing after it was run."""

FENCED_CMDLETS: tuple[str, ...] = (
    "Set-ClientAccessServer",
    "New-ClientAccessArray",
    "Set-ClientAccessArray",
    "Remove-ClientAccessArray",
    "Set-MailboxDatabase",
    "Add-NlbClusterNode",
    "Stop-NlbClusterNode",
    "Start-NlbClusterNode",
    "Remove-NlbClusterNode",
)
"""The commands that write: in a request with a ``fence``, each is preceded by the lock check.
agent.ps1 repeats this list literally (``$FencedCmdlets``; tests/agent checks the two are equal)."""

_FENCED_KEYS = frozenset(name.lower() for name in FENCED_CMDLETS)

READ_CMDLETS: tuple[str, ...] = (
    "Get-ExchangeServer",
    "Get-ClientAccessServer",
    "Get-ClientAccessArray",
    "Get-MailboxDatabase",
    "Get-Mailbox",
    "Get-AdminAuditLogConfig",
    "Search-AdminAuditLog",
    "Get-NlbCluster",
    "Get-NlbClusterNode",
    "Get-CasdesiredLock",
    "Get-CasdesiredPlanRecord",
    "Get-CasdesiredHost",
    "Get-CasdesiredWinRMConfig",
    "Get-CasdesiredCommand",
    "Get-CasdesiredStaticPort",
    "Get-CasdesiredLockDirectory",
)
"""The read allow-list: the commands of :data:`ALLOWED_CMDLETS` that change nothing, on any
host. A ``diagnose`` request (``casdesired doctor``) may name only these; agent.ps1 repeats the
list literally (``$ReadCmdlets``; tests/agent checks the two are equal) and refuses anything
else in such a request."""

_READ_KEYS = frozenset(name.lower() for name in READ_CMDLETS)

NOT_A_READ = (
    "casdesired: '{cmdlet}' is not a read command; a diagnose request runs only the commands "
    "of the read allow-list."
)
"""The agent's error for a command of a diagnose request that is not on the read allow-list."""

FENCED = (
    "casdesired: stopped before {cmdlet}, whose lock check failed: {message} "
    "Nothing more was run."
)
"""The agent's ``stopped`` text when the fence stopped a request; ``message`` is the lock
check's error without its ``casdesired: `` prefix."""
FENCED_PREFIX = FENCED.partition("{cmdlet}")[0]


def is_fenced(cmdlet: str) -> bool:
    """Whether ``cmdlet`` writes, so a fenced request checks its lock before it."""
    return cmdlet.lower() in _FENCED_KEYS


def is_read(cmdlet: str) -> bool:
    """Whether ``cmdlet`` is on the read allow-list (:data:`READ_CMDLETS`)."""
    return cmdlet.lower() in _READ_KEYS


def is_allowed(cmdlet: str) -> bool:
    """Whether the agent runs ``cmdlet`` (case-insensitive, as PowerShell compares names)."""
    return cmdlet.lower() in _ALLOWED_KEYS


def check_allowed(request: Request) -> None:
    """Refuse, before anything is sent, a request naming a command the agent would refuse:
    one off the allow-list, or, in a ``diagnose`` request, one off the read allow-list."""
    refused = sorted({name for name in request.cmdlets() if not is_allowed(name)})
    if refused:
        names = ", ".join(repr(n) for n in refused)
        raise ProtocolError(
            f"casdesired will not send {names} to the agent: the agent runs only the commands "
            "in casdesired.agent.protocol.ALLOWED_CMDLETS"
        )
    writes = sorted({name for name in request.cmdlets() if not is_read(name)})
    if request.diagnose and writes:
        names = ", ".join(repr(n) for n in writes)
        raise ProtocolError(
            f"casdesired will not send {names} in a diagnose request: it runs only the "
            "commands in casdesired.agent.protocol.READ_CMDLETS"
        )
