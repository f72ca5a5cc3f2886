"""WinRM's service quotas, as ``winrm get winrm/config`` shows them: one place for the lab's.

The defaults are Windows Server 2008 R2's (WinRM 2.0), the oldest host casdesired meets next to
Exchange 2010 (see shared/domain/exchange2010-field.md §5); later Windows raised most of them.
A test, ``casdesired lab serve --winrm NAME=VALUE`` or ``PUT /lab/limits`` changes them, by
Windows' own names, as ``winrm set winrm/config/winrs @{MaxShellsPerUser="30"}`` would.

What the lab does at each limit (as Windows does):

- ``MaxEnvelopeSizekb``: a request body larger than this is refused with a bare HTTP 413
  (pywinrm: ``WinRMTransportError`` code 413); a client's ``MaxEnvelopeSize`` above it is
  lowered to it for the response.
- ``MaxTimeoutms``: a request's ``OperationTimeout`` above it is clamped to it (no fault).
- ``MaxShellsPerUser``: the Create of one shell more than this is refused with 500
  ``w:QuotaLimit`` 2150859173 (the lab has one account, so every open shell counts for it).
- ``MaxMemoryPerShellMB``: a shell's process whose estimated peak (see
  :mod:`casdesired.lab.exchange.memory`) goes over it dies with allocation errors on its
  streams; there is no WS-Man fault.
- ``IdleTimeout``: a shell that received no request for this long is closed, which is how a
  leaked shell stops counting against ``MaxShellsPerUser``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

WINDOWS_NAMES = {
    "max_envelope_size_kb": "MaxEnvelopeSizekb",
    "max_timeout_ms": "MaxTimeoutms",
    "max_shells_per_user": "MaxShellsPerUser",
    "max_memory_per_shell_mb": "MaxMemoryPerShellMB",
    "idle_timeout_ms": "IdleTimeout",
}
"""Attribute → its name in ``winrm/config`` (``winrm/config/winrs`` for the last three)."""

# The smallest values Windows accepts (MS-WSMV 2.2.4.10, 2.2.4.43); 0 is not "unlimited" here.
_MINIMUM = {
    "max_envelope_size_kb": 32,
    "max_timeout_ms": 500,
    "max_shells_per_user": 1,
    "max_memory_per_shell_mb": 1,
    "idle_timeout_ms": 60000,
}


@dataclass
class WinRMLimits:
    """The WinRM quotas a lab enforces; defaults are Windows Server 2008 R2's."""

    max_envelope_size_kb: int = 150
    max_timeout_ms: int = 60000
    max_shells_per_user: int = 5
    max_memory_per_shell_mb: int = 150
    idle_timeout_ms: int = 180000
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in WINDOWS_NAMES:
            self._check(name, getattr(self, name))

    @property
    def max_envelope_bytes(self) -> int:
        return self.max_envelope_size_kb * 1024

    @property
    def max_timeout_seconds(self) -> float:
        return self.max_timeout_ms / 1000

    @property
    def idle_timeout_seconds(self) -> float:
        return self.idle_timeout_ms / 1000

    def to_json(self) -> dict[str, int]:
        """``{"MaxEnvelopeSizekb": 150, ...}``, by Windows' names."""
        with self._lock:
            return {windows: int(getattr(self, name)) for name, windows in WINDOWS_NAMES.items()}

    def update(self, data: dict[str, Any]) -> None:
        """Set the settings named in ``data`` (Windows' names, any case); ValueError, changing
        nothing, for an unknown name or a value Windows would refuse."""
        by_lower = {windows.lower(): name for name, windows in WINDOWS_NAMES.items()}
        changes: dict[str, int] = {}
        for key, value in data.items():
            name = by_lower.get(str(key).lower())
            if name is None:
                known = ", ".join(WINDOWS_NAMES.values())
                raise ValueError(f"unknown WinRM setting {key!r}: one of {known}")
            changes[name] = self._check(name, value)
        with self._lock:
            for name, number in changes.items():
                setattr(self, name, number)

    @staticmethod
    def _check(name: str, value: Any) -> int:
        windows = WINDOWS_NAMES[name]
        if isinstance(value, bool):
            raise ValueError(f"{windows} must be a whole number, not {value!r}")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{windows} must be a whole number, not {value!r}") from None
        if number < _MINIMUM[name]:
            raise ValueError(f"{windows} must be at least {_MINIMUM[name]}, not {number}")
        return number


def parse_setting(text: str) -> dict[str, str]:
    """``NAME=VALUE`` (``casdesired lab serve --winrm``) → ``{NAME: VALUE}``; ValueError if not."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"expected NAME=VALUE (e.g. MaxShellsPerUser=30), not {text!r}")
    return {name.strip(): value.strip()}


__all__ = ["WINDOWS_NAMES", "WinRMLimits", "parse_setting"]
