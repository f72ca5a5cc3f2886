"""What the lab's agent executor runs against, and the sessions one run opens.

:class:`CmdletRunner` is the organisation as the agent sees it (the
:class:`~casdesired.lab.exchange.organisation.Organisation` is one); :class:`Sessions` are the
PowerShell sessions of one agent run, as agent.ps1 opens them: the Exchange ``/PowerShell``
session (remote mode) and one PSSession per other computer an invocation names, each with the
request's credential.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from casdesired.agent.protocol import Invocation, Request
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import LabValue, Obj, Provider, Session
from casdesired.lab.exchange.models import Behaviour
from casdesired.lab.process import Logon

REMOTE_CONNECT_FAILED = (
    "Connecting to remote server {host} failed with the following error message : The WinRM "
    "client cannot process the request because the server name cannot be resolved."
)


@dataclass
class CmdletOutput:
    objects: Iterable[Obj]
    host_lines: list[str] = field(default_factory=list)
    """What the cmdlet printed to the host: ``WARNING: ...`` and ``What if: ...`` lines."""


class CmdletRunner(Protocol):
    """The organisation as the agent sees it."""

    @property
    def hostname(self) -> str: ...

    @property
    def logon(self) -> Logon:
        """How the WinRM connection logged on (whether it can delegate: the double hop)."""
        ...

    def invoke(
        self,
        cmdlet: str,
        parameters: Mapping[str, LabValue],
        loaded: frozenset[Provider],
        session: Session | None = None,
    ) -> CmdletOutput:
        """Run one cmdlet in ``session``; raise :class:`~.errors.ExchangeError` as it would
        fail."""
        ...

    def has_server(self, name: str) -> bool: ...

    def reachable(self, name: str) -> bool:
        """Whether other computers reach server ``name`` over the network (WinRM, WMI)."""
        ...

    def has_module(self, name: str, module: str) -> bool:
        """Whether PowerShell module ``module`` is installed on server ``name``."""
        ...

    @property
    def settings(self) -> Behaviour:
        """The switches as they are now (the host's facts among them)."""
        ...

    def credential_valid(self, username: str, password: str) -> bool: ...

    def open_exchange_session(self, user: str) -> bool: ...

    def close_exchange_session(self, user: str) -> None: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def check_fence(self, lock_id: str, cmdlet: str) -> None:
        """Assert-CasdesiredFence before ``cmdlet``: raise :class:`~.errors.ExchangeError` with
        the lock check's text unless ``lock_id`` is the organisation's current lock."""
        ...


class Sessions:
    """The sessions one agent run opens, as agent.ps1 does: the Exchange /PowerShell session
    (remote mode) and one PSSession per other computer an invocation names, each opened with
    the request's credential (passed inside the session: no delegation needed) and removed
    when the run ends."""

    def __init__(self, runner: CmdletRunner, request: Request) -> None:
        self.runner = runner
        self.credential = request.credential
        credential_valid = (
            None if request.credential is None
            else runner.credential_valid(request.credential.username, request.credential.password)
        )
        self.main = Session(
            runner.hostname,
            delegates=runner.logon.delegates,
            credential_valid=credential_valid,
            user=runner.logon.user,
        )
        self.modules: tuple[str, ...] = ()
        self._nodes: dict[str, Session] = {}
        self._exchange_user: str | None = None

    def _connect(self, host: str) -> str | None:
        """New-PSSession to ``host``: None when it opens, else Windows' error text."""
        if not self.runner.has_server(host.split(".")[0]):
            return REMOTE_CONNECT_FAILED.format(host=host)
        if not self.runner.reachable(host.split(".")[0]):
            return err.REMOTE_UNREACHABLE.format(host=host)
        if self.credential is None:
            if not self.runner.logon.delegates:
                return err.REMOTE_NO_CREDENTIAL.format(host=host)
        elif not self.runner.credential_valid(self.credential.username, self.credential.password):
            return err.REMOTE_ACCESS_DENIED.format(host=host)
        return None

    def open_exchange(self, host: str) -> str | None:
        """The /PowerShell session: None when it opened, else agent.ps1's fatal text."""
        failed = self._connect(host)
        if failed is not None:
            return failed
        user = self.credential.username if self.credential else self.runner.logon.user
        limit_reached = not self.runner.open_exchange_session(user)
        if limit_reached:
            settings = getattr(self.runner, "behaviour", None)
            limit = getattr(settings, "exchange_session_limit", 18)
            return err.EXCHANGE_SESSIONS_EXCEEDED.format(host=host, limit=limit)
        self._exchange_user = user
        self.main.rbac = True  # the cmdlets now come through /PowerShell, under RBAC
        return None

    def for_invocation(self, invocation: Invocation) -> Session:
        """Where ``invocation`` runs; raises the PSSession's error when it cannot be opened."""
        computer = invocation.computer
        if not computer or computer.split(".")[0].lower() == self.runner.hostname.lower():
            return self.main
        key = computer.lower()
        if key not in self._nodes:
            failed = self._connect(computer)
            if failed is not None:
                raise err.ExchangeError(failed, target=computer,
                                        category="PSRemotingTransportException")
            # A session opened with explicit credentials is a network logon: no further hop.
            self._nodes[key] = Session(
                computer.split(".")[0], delegates=False, credential_valid=True,
                user=self.main.user,
            )
        return self._nodes[key]

    def node_modules(self, session: Session) -> frozenset[Provider]:
        """What $RemoteCmdlet loads on a node: each of the request's modules, imported there
        (a module the node lacks fails the invocation, as Import-Module does)."""
        loaded: set[Provider] = set()
        for module in self.modules:
            if not self.runner.has_module(session.computer, module):
                raise err.ExchangeError(
                    err.MODULE_NOT_FOUND.format(name=module), target=module,
                    category="FileNotFoundException",
                )
            loaded.add("nlb")
        return frozenset(loaded)

    def close(self) -> bool:
        """Remove every session; whether an Exchange session was among them."""
        removed = self._exchange_user is not None
        if self._exchange_user is not None:
            self.runner.close_exchange_session(self._exchange_user)
            self._exchange_user = None
        self._nodes.clear()
        return removed
