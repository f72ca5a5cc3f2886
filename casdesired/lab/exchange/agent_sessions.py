"""The sessions one run of the lab's agent opens, as agent.ps1 does (field §1, the double hop)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from casdesired.agent.protocol import Invocation, Request
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import Session

if TYPE_CHECKING:
    from casdesired.lab.exchange.agent import CmdletRunner

REMOTE_CONNECT_FAILED = (
    "Connecting to remote server {host} failed with the following error message : The WinRM "
    "client cannot process the request because the server name cannot be resolved."
)


class Sessions:
    """The sessions one agent run opens, as agent.ps1 does: the Exchange /PowerShell session
    (remote mode) and one PSSession per other computer an invocation names, each opened with
    the request's credential (passed inside the session: no delegation needed) and removed
    when the run ends."""

    def __init__(self, runner: CmdletRunner, request: Request) -> None:
        self.runner = runner
        self.credential = request.credential
        self.main = Session(runner.hostname, delegates=runner.logon.delegates)
        self.modules: tuple[str, ...] = ()
        self._nodes: dict[str, Session] = {}
        self._exchange_user: str | None = None

    def _connect(self, host: str) -> str | None:
        """New-PSSession to ``host``: None when it opens, else Windows' error text."""
        if not self.runner.has_server(host.split(".")[0]):
            return REMOTE_CONNECT_FAILED.format(host=host)
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
            self._nodes[key] = Session(computer.split(".")[0], delegates=False)
        return self._nodes[key]

    def close(self) -> None:
        if self._exchange_user is not None:
            self.runner.close_exchange_session(self._exchange_user)
            self._exchange_user = None
        self._nodes.clear()
