"""The lab's control API for tests and people: state, reset, faults, journal.

Served under ``/lab/`` on the WS-Man port. No WS-Man authentication, but only from loopback
and only with the lab's random ``X-Lab-Token`` header, so another local user cannot rewrite a
running lab's organisation. Bodies are JSON.

=======  ===============  ==================================================
GET      /lab/state       the organisation's snapshot
PUT      /lab/state       load a snapshot (replaces the organisation's state)
POST     /lab/reset       back to the organisation's own seed; faults cleared;
                          shells closed
GET/PUT  /lab/faults      the fault settings (PUT replaces the fields given)
GET/PUT  /lab/limits      WinRM's quotas by Windows' names, e.g. ``{"MaxShellsPerUser": 5}``
                          (PUT sets the ones given; casdesired.lab.wsman.limits)
GET      /lab/shells      the open shells: ``{"open": N, "shells": [{"id", "commands"}]}``
GET      /lab/journal     every entry, oldest first
DELETE   /lab/journal     empty the journal
GET/PUT  /lab/dns         the DNS server's A records ``{fqdn: [ipv4, ...]}``
                          (PUT replaces them all; casdesired.lab.dns)
POST     /lab/cmdlet      another administrator runs one Exchange cmdlet out
                          of band: ``{"caller", "cmdlet", "parameters",
                          "run_date"?}``, audited under their name
                          (casdesired.lab.exchange.administrators)
=======  ===============  ==================================================
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from casdesired import jsontext
from casdesired.errors import CasdesiredError
from casdesired.lab.dns import DnsRecordSource
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.wsman.limits import WinRMLimits

TOKEN_HEADER = "X-Lab-Token"  # noqa: S105 - a header name, not a secret


class StateOwner(Protocol):
    def snapshot(self) -> dict[str, Any]: ...
    def load(self, data: dict[str, Any]) -> None: ...
    def reset(self) -> None: ...


def _json(status: int, value: Any) -> tuple[int, bytes]:
    return status, json.dumps(value, indent=2, sort_keys=True, default=str).encode("utf-8")


def _error(status: int, message: str) -> tuple[int, bytes]:
    return _json(status, {"error": message})


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


@dataclass
class ControlAPI:
    organisation: StateOwner
    faults: Faults
    journal: Journal
    token: str
    on_reset: Callable[[], None] | None = None
    """Called by ``POST /lab/reset`` after the organisation reset (closes shells)."""
    shells: Callable[[], dict[str, Any]] | None = None
    """What ``GET /lab/shells`` answers (the WS-Man side's open shells)."""
    limits: WinRMLimits | None = None
    """The WinRM quotas ``GET/PUT /lab/limits`` read and change."""
    administrators: Callable[[Any], dict[str, Any]] | None = None
    """What ``POST /lab/cmdlet`` calls with the body (another administrator's cmdlet run)."""

    def __call__(
        self, method: str, path: str, token: str, body: bytes, client: str
    ) -> tuple[int, bytes]:
        if not is_loopback(client):
            return _error(403, "the control API answers loopback clients only")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return _error(403, f"missing or wrong {TOKEN_HEADER} header")
        route = (method, path.rstrip("/"))
        try:
            data = jsontext.loads(body) if body else None
        except ValueError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        try:
            return self._route(route, data)
        except (TypeError, ValueError, KeyError, CasdesiredError) as exc:
            # a bad document or fault setting changes nothing and says why
            return _error(400, f"rejected: {exc}")

    def _route(self, route: tuple[str, str], data: Any) -> tuple[int, bytes]:
        if route == ("GET", "/lab/state"):
            return _json(200, self.organisation.snapshot())
        if route == ("PUT", "/lab/state"):
            if not isinstance(data, dict):
                return _error(400, "PUT /lab/state needs a JSON object")
            self.organisation.load(data)
            return _json(200, self.organisation.snapshot())
        if route == ("POST", "/lab/reset"):
            self.organisation.reset()
            self.faults.clear()
            if self.on_reset is not None:
                self.on_reset()
            return _json(200, {"reset": True})
        if route == ("GET", "/lab/faults"):
            return _json(200, self.faults.to_json())
        if route == ("PUT", "/lab/faults"):
            if not isinstance(data, dict):
                return _error(400, "PUT /lab/faults needs a JSON object")
            self.faults.update(data)
            return _json(200, self.faults.to_json())
        if route[1] == "/lab/dns" and isinstance(self.organisation, DnsRecordSource):
            if route[0] == "PUT":
                if not isinstance(data, dict):
                    return _error(400, "PUT /lab/dns needs a JSON object {fqdn: [ipv4, ...]}")
                self.organisation.set_dns_records(data)
            if route[0] in ("GET", "PUT"):
                return _json(200, self.organisation.dns_records())
        if route[1] == "/lab/limits" and self.limits is not None:
            if route[0] == "PUT":
                if not isinstance(data, dict):
                    return _error(400, "PUT /lab/limits needs a JSON object {Name: value}")
                self.limits.update(data)
            if route[0] in ("GET", "PUT"):
                return _json(200, self.limits.to_json())
        if route == ("POST", "/lab/cmdlet") and self.administrators is not None:
            return _json(200, self.administrators(data))
        if route == ("GET", "/lab/shells") and self.shells is not None:
            return _json(200, self.shells())
        if route == ("GET", "/lab/journal"):
            return _json(200, self.journal.entries())
        if route == ("DELETE", "/lab/journal"):
            self.journal.clear()
            return _json(200, {"cleared": True})
        return _error(404, f"no control endpoint {route[0]} {route[1]}")
