"""One exception root for everything casdesired reports to a user.

Every subclass carries a message written for an Exchange administrator. The CLI prints
``str(error)`` and exits non-zero; it never shows a traceback for a ``CasdesiredError``.
Messages must never contain a secret: build them from names, never from credential values.
"""

from __future__ import annotations

from casdesired.findings import Location


class CasdesiredError(Exception):
    """Something went wrong that the user can act on."""

    exit_code = 1


class ConfigError(CasdesiredError):
    """The desired state (YAML) is invalid; carries where, when known."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class ConnectionFailed(CasdesiredError):
    """The Exchange side could not be reached or refused us (network, TLS, credentials)."""


class AgentNotStarted(ConnectionFailed):
    """The connection failed before the agent could start (no shell, or its command refused,
    or its input not fully sent): nothing of that request ran on the endpoint."""


class ProtocolError(CasdesiredError):
    """The far side answered, but not in the agent's protocol (corrupt or missing frame)."""


class ReadFailed(CasdesiredError):
    """Reading the live organisation failed or was partial; never taken for 'absent'."""


class UnsupportedExchange(CasdesiredError):
    """The organisation runs something casdesired must not manage (Exchange 2013 or later)."""


class PlanRefused(CasdesiredError):
    """A safety check refused a plan or an apply (threshold, stale plan, DNS gate, lock)."""


class FileWriteError(CasdesiredError):
    """A file casdesired writes (a plan, a state file) could not be written."""


class ApplyFailed(CasdesiredError):
    """An apply stopped part-way; the message says what was and was not changed."""
