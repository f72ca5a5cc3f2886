"""The threaded HTTP(S) server that carries the lab's WS-Man endpoint and control API."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Literal

from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.wsman.auth import Account, NtlmUserFile
from casdesired.lab.wsman.handler import WSManHandler
from casdesired.lab.wsman.limits import WinRMLimits
from casdesired.lab.wsman.service import WSManService

ControlHandler = Callable[[str, str, str, bytes, str], tuple[int, bytes]]
"""(method, path, X-Lab-Token, body, client address) → (status, JSON body)."""


@dataclass
class EndpointConfig:
    """Everything a connection handler needs, shared by all connections of one lab."""

    service: WSManService
    journal: Journal
    faults: Faults
    auth: Literal["basic", "ntlm"]
    account: Account
    machine: str
    stop: threading.Event
    ntlm_file: NtlmUserFile | None = None
    cert_hash: bytes | None = None
    control: ControlHandler | None = None
    tls: bool = False
    """The listener is HTTPS: every message is encrypted by TLS."""
    allow_unencrypted: bool = False
    """WinRM's ``AllowUnencrypted``: accept cleartext messages over HTTP (Windows: false)."""
    limits: WinRMLimits = field(default_factory=WinRMLimits)
    """WinRM's quotas (the same object as the shells'), changeable while the lab runs."""


class WSManHTTPServer(ThreadingHTTPServer):
    """One thread per connection; TLS (if any) is negotiated in that thread, not in accept."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(
        self, address: tuple[str, int], config: EndpointConfig,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.config = config
        self._tls = tls
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, WSManHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        raw = request
        with self._open_lock:
            self._open.add(raw)
        try:
            if self._tls is not None:
                request.settimeout(10)
                try:
                    request = self._tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # e.g. the client refused our certificate
                request.settimeout(None)
            super().finish_request(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(raw)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client vanishing mid-answer is normal (timeouts, drops); nothing to print.
        pass

    def close_connections(self) -> None:
        """Cut every open connection (keep-alive ones included) so their threads end."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
