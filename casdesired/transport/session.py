"""One pywinrm conversation with the WinRM service, and closing its shell whatever happened.

A :class:`WinRMSession` is one pywinrm ``Protocol``: one HTTP session, so one authentication
(with NTLM over HTTP, the keys that seal every message belong to its TCP connection). It counts
the WS-Man operations it sends, turns their failures into user-facing errors, and remembers
whether it is still usable. After a dropped, hung, refused or interrupted exchange it is not:
whatever it sends next is sealed with keys the service has forgotten, and is refused.

:func:`close_shell` closes a run's shell on the run's own session while that is intact, and
otherwise on a freshly authenticated one, with short timeouts, so that a host that does not
answer never holds the user's exit. A shell left open counts against the account's limit of
concurrent shells on the host (MaxShellsPerUser: 5 on WinRM 2.0) until WinRM's idle timeout
closes it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import requests
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from casdesired.errors import CasdesiredError
from casdesired.transport.errors import describe

if TYPE_CHECKING:
    from casdesired.transport.winrm import WinRMTarget

T = TypeVar("T")

MAX_OPERATION_TIMEOUT_SECONDS = 60
"""The longest WS-Man OperationTimeout casdesired asks for: WinRM's MaxTimeoutms default (60,000
ms, also on Windows Server 2008 R2), which caps it anyway. A Receive that long with no output
just comes round again; a longer ``operation_seconds`` only lengthens the read timeout."""
CLEANUP_TIMEOUT_SECONDS = 5.0
"""Closing a shell waits at most this long to connect and, per request, to read."""
UNKNOWN_SHELL_FAULT = 2150858843
"""``w:InvalidSelectors``: the service no longer knows the shell, so it is closed already."""


class WinRMSession:
    """One authenticated HTTP session to the WinRM service, used for one run's operations.

    ``requests``: WS-Man operations sent. ``intact``: every operation so far got a complete
    answer (a result, a WS-Man fault, or "no output yet"), so the session can go on.
    ``authenticated``: the service has accepted a request of this session (NTLM's handshake
    included), so a 401 from now on is not about the credentials as typed. ``answered``: an
    operation got its WS-Man answer, so the URL is the WinRM service.
    """

    def __init__(
        self,
        target: WinRMTarget,
        *,
        timeouts: tuple[float, float] | None = None,
        observe: Callable[[requests.Response], None] | None = None,
    ) -> None:
        self.target = target
        self.observe = observe
        """Shown every HTTP answer of this session (``casdesired doctor`` reads how they
        came: sealed or in clear text)."""
        self.timeouts = timeouts or (target.connect_timeout, target.read_timeout)
        """(connect, read) timeout of each HTTP request."""
        self.requests = 0
        self.intact = True
        self.authenticated = False
        self.answered = False
        self._refused = False
        self.proto = self._protocol()
        self._watch_answers()

    def _protocol(self) -> Protocol:
        t = self.target
        operation = max(1, min(math.ceil(t.operation_timeout), MAX_OPERATION_TIMEOUT_SECONDS))
        try:
            proto = Protocol(
                endpoint=t.url,
                transport=t.transport,
                username=t.username,
                password=t.password,
                ca_trust_path=t.ca_trust_path if t.ca_trust_path else None,  # type: ignore[arg-type]
                cert_pem=t.cert_pem,
                cert_key_pem=t.cert_key_pem,
                server_cert_validation="validate" if t.server_cert_validation else "ignore",
                read_timeout_sec=max(operation + 1, math.ceil(t.read_timeout)),
                operation_timeout_sec=operation,
                message_encryption=t.message_encryption,
                proxy=t.proxy,
            )
        except Exception as exc:  # pywinrm validates its arguments here
            raise self.describe(exc, "preparing the connection") from None
        self._set_timeouts(proto, self.timeouts)
        return proto

    @staticmethod
    def _set_timeouts(proto: Protocol, timeouts: tuple[float, float]) -> None:
        # pywinrm applies one timeout to connect and read; requests accepts a (connect, read)
        # pair, so an unreachable host fails after the connect timeout, not the read timeout.
        cast(Any, proto.transport).read_timeout_sec = timeouts

    def shorten_timeouts(self, timeouts: tuple[float, float]) -> None:
        self.timeouts = (min(self.timeouts[0], timeouts[0]), min(self.timeouts[1], timeouts[1]))
        self._set_timeouts(self.proto, self.timeouts)

    def op(self, step: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One WS-Man operation, counted, with its failure turned into a user-facing error.

        pywinrm's "no output yet" (:class:`WinRMOperationTimeoutError`) passes through as it is.
        """
        self.requests += 1
        self.intact = False
        self._refused = False
        try:
            result = call(*args, **kwargs)
        except WinRMOperationTimeoutError:
            self.intact = self.authenticated = self.answered = True
            raise
        except WSManFaultError as exc:
            error = self.describe(exc, step)
            self.intact = self.authenticated = self.answered = True
            raise error from None
        except Exception as exc:
            raise self.describe(exc, step) from None
        self.intact = self.authenticated = self.answered = True
        return result

    def describe(self, exc: BaseException, step: str) -> CasdesiredError:
        t = self.target
        return describe(
            exc,
            url=t.url,
            transport=t.transport,
            step=step,
            connect_timeout=self.timeouts[0],
            read_timeout=self.timeouts[1],
            credential_source=t.credential_source,
            secrets=t.secrets,
            authenticated=self.authenticated,
            refused=self._refused,
            answered_before=self.answered,
        )

    def _watch_answers(self) -> None:
        """See every HTTP answer of this session, to know what pywinrm's errors leave out.

        After a 401 to a sealed message, requests_ntlm authenticates anew and re-sends the
        message sealed with the old keys; the service refuses that (400), and pywinrm reports
        only the 400. So a response hook goes on each requests session pywinrm builds, before
        the blank POST that runs NTLM's handshake; it runs after requests_ntlm's own hook and
        sees the answer that ends each exchange, with the 401s before it in its history.
        pywinrm is not changed: its Transport gets the hook through the two methods that make
        and prepare its session (if it ever lacks them, errors just say less).
        """
        transport = cast(Any, self.proto.transport)
        build = getattr(transport, "build_session", None)
        setup = getattr(transport, "setup_encryption", None)
        if not callable(build) or not callable(setup):
            return

        def watched(session: requests.Session) -> requests.Session:
            if self._saw_answer not in session.hooks["response"]:
                session.hooks["response"].append(self._saw_answer)
            return session

        def setup_encryption(session: requests.Session) -> None:
            setup(watched(session))

        def build_session() -> requests.Session:
            return watched(build())

        transport.setup_encryption = setup_encryption
        transport.build_session = build_session

    def _saw_answer(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if self.observe is not None:
            self.observe(response)
        if response.status_code < 300:
            self.authenticated = True
        self._refused = response.status_code >= 400 and (
            response.status_code == 401 or any(r.status_code == 401 for r in response.history)
        )

    def close(self) -> None:
        """Close the HTTP session (and its connections); the shell is :func:`close_shell`'s."""
        with contextlib.suppress(Exception):
            self.proto.transport.close_session()


class _StillOpen(Exception):
    """The shell could not be closed; ``args[0]`` says why, in casdesired's own words."""

    def __init__(self, why: str, *, try_fresh: bool) -> None:
        super().__init__(why)
        self.why = why
        self.try_fresh = try_fresh


def close_shell(session: WinRMSession, shell_id: str | None, command_id: str | None) -> str | None:
    """Close the shell of a run (nothing to do when none was opened), then ``session``.

    On an intact session: Signal the command, then Delete the shell. On a broken one, or when
    that fails without a timeout: Delete on a freshly authenticated session. Every request is
    bounded by :data:`CLEANUP_TIMEOUT_SECONDS`, and a timeout ends the attempt (a host that
    does not answer will not answer a second session either). Returns None when the shell is
    closed, else a one-line notice for the user; never raises for a failed close.
    """
    target = session.target
    limits = (
        min(target.connect_timeout, CLEANUP_TIMEOUT_SECONDS),
        min(target.read_timeout, CLEANUP_TIMEOUT_SECONDS),
    )
    fresh: WinRMSession | None = None
    try:
        if shell_id is None:
            return None
        if session.intact:
            session.shorten_timeouts(limits)
            try:
                _close_on(session, shell_id, command_id)
                return None
            except _StillOpen as still:
                if not still.try_fresh:
                    return _notice(session, still.why)
        session.close()  # its connections are broken: let the service see them go
        try:
            fresh = WinRMSession(target, timeouts=limits)
            _close_on(fresh, shell_id, None)  # deleting the shell ends its command too
            return None
        except _StillOpen as still:
            return _notice(session, still.why)
        except CasdesiredError:  # a new session could not even be prepared
            return _notice(session, "no new connection could be prepared")
    finally:
        if fresh is not None:
            session.requests += fresh.requests
            fresh.close()
        session.close()


def _close_on(session: WinRMSession, shell_id: str, command_id: str | None) -> None:
    if command_id is not None:
        # A fault here means the command is gone already, or goes with its shell.
        with contextlib.suppress(WSManFaultError):
            _cleanup_request(session, session.proto.cleanup_command, shell_id, command_id)
    try:
        _cleanup_request(session, session.proto.close_shell, shell_id, close_session=False)
    except WSManFaultError as fault:
        if fault.wsman_fault_code != UNKNOWN_SHELL_FAULT:
            # The service answered but did not delete it (say an internal error): one more try,
            # on a new connection, as for any refusal that was not a timeout.
            code = fault.wsman_fault_code
            raise _StillOpen(
                f"WS-Management fault {code}" if code else "a WS-Management fault",
                try_fresh=True,
            ) from None


def _cleanup_request(session: WinRMSession, call: Callable[..., Any], *args: Any,
                     **kwargs: Any) -> None:
    """One Signal or Delete; failures other than WS-Man faults become :class:`_StillOpen`."""
    session.requests += 1
    try:
        call(*args, **kwargs)
    except WSManFaultError:
        raise
    except requests.exceptions.ConnectTimeout:
        raise _StillOpen(
            f"no connection within {session.timeouts[0]:g} s", try_fresh=False
        ) from None
    except requests.exceptions.Timeout:
        raise _StillOpen(f"no answer within {session.timeouts[1]:g} s", try_fresh=False) from None
    except (InvalidCredentialsError, PermissionError):
        raise _StillOpen("the credentials were refused", try_fresh=True) from None
    except WinRMTransportError as exc:
        raise _StillOpen(f"HTTP {exc.code}", try_fresh=True) from None
    except requests.exceptions.ConnectionError:
        raise _StillOpen("the connection failed", try_fresh=True) from None
    except Exception as exc:  # an answer pywinrm could not read
        raise _StillOpen(type(exc).__name__, try_fresh=True) from None


def _notice(session: WinRMSession, why: str) -> str:
    host = urlsplit(session.target.url).hostname or session.target.url
    return (
        f"the shell casdesired opened on {host} could not be closed ({why}); WinRM closes it "
        "after its idle timeout (Shell IdleTimeout), and until then it counts against the "
        "account's limit of concurrent shells (MaxShellsPerUser)"
    )
