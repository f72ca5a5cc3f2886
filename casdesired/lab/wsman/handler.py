"""One HTTP/1.1 connection to the lab: authentication, encryption, injected faults, dispatch.

A handler instance lives as long as its TCP connection (keep-alive), which is exactly the
scope of an NTLM authentication and of its sealing keys.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING

from casdesired.lab.faults import WireFault
from casdesired.lab.wsman import envelope as env
from casdesired.lab.wsman.auth import (
    BASIC_CHALLENGE,
    ENCRYPTED_CONTENT_TYPE,
    KERBEROS,
    NEGOTIATE,
    AuthFailed,
    EncryptionError,
    NtlmConnection,
    check_basic,
)

if TYPE_CHECKING:
    from casdesired.lab.wsman.server import EndpointConfig, WSManHTTPServer

log = logging.getLogger(__name__)

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
SOAP_MEDIA_TYPES = ("application/soap+xml", "multipart/encrypted")
"""What a WS-Man POST may carry: SOAP, or SOAP sealed by the authentication. Anything else: 415."""
MAX_BODY = 64 * 1024 * 1024
UNENCRYPTED_REFUSED = "unencrypted"
"""Journal ``reason`` of a 401 that refused a cleartext message (``AllowUnencrypted=false``)."""
HANG_LIMIT_SECONDS = 60.0
"""A ``hang`` fault never holds a request longer than this (nor past the lab's stop)."""


class _Dropped(Exception):
    """The connection was closed on purpose (a ``drop`` or ``hang`` fault)."""


class WSManHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections close, as HTTP.sys closes them
    server: WSManHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: with Nagle's algorithm on, the body waits
        # for the client's delayed ACK of the headers (~40 ms a reply). HTTP.sys does not stall
        # like that, so neither may the lab: its timings must measure work, not that wait.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ntlm: NtlmConnection | None = None

    @property
    def config(self) -> EndpointConfig:
        return self.server.config

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    # -----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self._answer(400, b"", "text/plain")
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0]
        try:
            if path.startswith("/lab/") or path == "/lab":
                self._control(path, body)
            elif path.lower() == "/wsman" and self.command == "POST":
                self._wsman(body)
            elif path.lower() == "/wsman":
                # WinRM answers only POST: any other method is 405 with the one it allows.
                self._answer(405, b"", "text/plain", [("Allow", "POST")])
            else:
                self._answer(404, b"", "text/plain")
        except _Dropped:
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def _answer(
        self, status: int, body: bytes, content_type: str,
        extra: list[tuple[str, str]] | None = None, reason: str | None = None,
        phrase: str | None = None,
    ) -> None:
        """Answer ``status`` (``phrase``: the status line's reason phrase, None: the usual one);
        ``reason`` is only journaled."""
        # Journaled before the answer leaves: a client that reads the journal as soon as it
        # has its answer must find the entry there.
        details = {"reason": reason} if reason else {}
        self.config.journal.record(
            "http", method=self.command, path=self.path, status=status, **details
        )
        self.send_response(status, phrase)
        for name, value in extra or []:
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    # Control API -----------------------------------------------------------------------------
    def _control(self, path: str, body: bytes) -> None:
        control = self.config.control
        if control is None:
            self._answer(404, b"", "text/plain")
            return
        status, payload = control(
            self.command, path, self.headers.get("X-Lab-Token", ""), body,
            self.client_address[0],
        )
        self._answer(status, payload, "application/json")

    # WS-Man ----------------------------------------------------------------------------------
    def _challenge_headers(self) -> list[tuple[str, str]]:
        """One ``WWW-Authenticate`` per method the service has enabled, in Windows' order.

        An NTLM lab is a domain member with WinRM's default methods, Negotiate and Kerberos
        (the lab cannot complete Kerberos; a client that tries it is refused); a Basic lab is
        a service with only Basic enabled, so only ``Basic realm="WSMAN"``.
        """
        if self.config.auth == "ntlm":
            return [("WWW-Authenticate", NEGOTIATE), ("WWW-Authenticate", KERBEROS)]
        return [("WWW-Authenticate", BASIC_CHALLENGE)]

    def _unauthorised(self, reason: str | None = None) -> None:
        """Refuse the request as HTTP.sys does for WinRM: ``HTTP/1.1 401 `` with no reason
        phrase, the enabled methods, and ``Connection: close`` (so whatever the connection
        had authenticated, NTLM keys included, is gone). Only the NTLM challenge in the middle
        of a handshake keeps the connection, since NTLM authenticates the connection."""
        self.ntlm = None
        self._answer(401, b"", "text/plain", [*self._challenge_headers(), ("Connection", "close")],
                     reason, phrase="")

    def _must_be_sealed(self) -> bool:
        """Whether this connection must carry WS-Man messages encrypted.

        Windows' default ``AllowUnencrypted=false``: over HTTP only messages sealed by the
        authentication (NTLM's ``multipart/encrypted``) are accepted; HTTPS encrypts them all.
        """
        return not (self.config.allow_unencrypted or self.config.tls)

    def _authenticate(self) -> bool:
        """True when the request may proceed; otherwise the 401 has been answered."""
        config = self.config
        if config.faults.reject_credentials:
            self._unauthorised()
            return False
        header = self.headers.get("Authorization")
        if config.auth == "basic":
            if self._must_be_sealed():
                # Basic cannot seal messages: Windows refuses it over HTTP whatever the
                # password, the "Basic needs AllowUnencrypted=true" trap.
                self._unauthorised(UNENCRYPTED_REFUSED)
                return False
            if header is None:
                self._unauthorised()
                return False
            try:
                check_basic(header, config.account)
            except AuthFailed:
                self._unauthorised()
                return False
            return True
        if header is None:
            if self.ntlm is not None and self.ntlm.authenticated:
                return True
            self._unauthorised()
            return False
        if config.ntlm_file is None:  # pragma: no cover - Lab always creates it for ntlm
            self._unauthorised()
            return False
        if self.ntlm is None or self.ntlm.authenticated:
            self.ntlm = NtlmConnection(config.ntlm_file, config.cert_hash)
        try:
            challenge = self.ntlm.step(header)
        except AuthFailed:
            self._unauthorised()
            return False
        if challenge is not None:
            # The handshake's middle step: the connection stays open for the AUTHENTICATE.
            self._answer(401, b"", "text/plain", [("WWW-Authenticate", challenge)], phrase="")
            return False
        return True

    def _wsman(self, body: bytes) -> None:
        if not self._authenticate():
            return
        media_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if body and media_type not in SOAP_MEDIA_TYPES:
            self._answer(415, b"", "text/plain")
            return
        if len(body) > self.config.limits.max_envelope_bytes:
            # MaxEnvelopeSizekb also bounds what a client may send: a bare 413, as Windows.
            self._answer(413, b"", "text/plain")
            return
        encrypted = media_type == "multipart/encrypted"
        if encrypted:
            if self.ntlm is None or not self.ntlm.authenticated:
                self._unauthorised()
                return
            try:
                body = self.ntlm.decrypt(body)
            except EncryptionError:
                log.debug("rejecting a malformed encrypted body", exc_info=True)
                self._answer(400, b"", "text/plain")
                self.close_connection = True
                return
        if not body:
            # pywinrm's blank POST that only authenticates the connection before encrypting.
            self._answer(200, b"", SOAP_CONTENT_TYPE)
            return
        if not encrypted and self._must_be_sealed():
            # A cleartext SOAP message after NTLM over HTTP (message_encryption="never").
            self._unauthorised(UNENCRYPTED_REFUSED)
            return
        self._soap(body, encrypted)

    def _soap(self, body: bytes, encrypted: bool) -> None:
        config = self.config
        request: env.Request | None = None
        try:
            request = env.parse_request(body)
        except env.MalformedRequest as exc:
            self._reply(500, env.fault_envelope(env.invalid_request(str(exc)), None,
                                                config.machine), encrypted)
            return
        if config.faults.latency_ms > 0:
            config.stop.wait(config.faults.latency_ms / 1000)
        fault = config.faults.take_wire(request.action)
        if fault is not None:
            config.journal.record("wsman", action=request.action, shell_id=request.shell_id,
                                  fault=fault.kind)
            self._inject(fault, request, encrypted)
            return
        try:
            answer = config.service.handle(request)
            status = 200
        except env.WSManFault as exc:
            answer = env.fault_envelope(exc, request.message_id, config.machine)
            status = 500
        config.journal.record(
            "wsman", action=request.action, shell_id=request.shell_id, status=status
        )
        self._reply(status, answer, encrypted)

    def _reply(self, status: int, soap: bytes, encrypted: bool) -> None:
        if encrypted and self.ntlm is not None:
            self._answer(status, self.ntlm.encrypt(soap), ENCRYPTED_CONTENT_TYPE)
        else:
            self._answer(status, soap, SOAP_CONTENT_TYPE)

    def _inject(self, fault: WireFault, request: env.Request, encrypted: bool) -> None:
        if fault.kind == "http500":
            self._answer(500, b"", "text/plain")
        elif fault.kind == "wsman_fault":
            wsman_fault = env.WSManFault(
                "w:InternalError", fault.wsman_code, fault.message, code="s:Receiver"
            )
            soap = env.fault_envelope(wsman_fault, request.message_id, self.config.machine)
            self._reply(500, soap, encrypted)
        elif fault.kind == "401":
            # As HTTP.sys refuses a request it will not authenticate (see _unauthorised).
            self._unauthorised()
        elif fault.kind == "drop":
            self.config.journal.record("http", method=self.command, path=self.path,
                                       status="dropped")
            self._close_now()
        else:  # "hang" (WireFault refuses unknown kinds)
            self._hang()

    def _close_now(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    def _hang(self) -> None:
        """Answer nothing until the client gives up (closes), the lab stops, or the limit."""
        deadline = time.monotonic() + HANG_LIMIT_SECONDS
        stop = self.config.stop
        while time.monotonic() < deadline and not stop.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        break  # the client closed its end: it timed out
                except (OSError, ValueError):
                    break
        self.config.journal.record("http", method=self.command, path=self.path, status="hung")
        self._close_now()
