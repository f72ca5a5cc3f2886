"""Authentication as the WinRM service does it: Basic, and NTLM with message encryption.

NTLM runs through pyspnego's acceptor. pyspnego reads the accepted credentials from the file
named by the process-global ``NTLM_USER_FILE`` environment variable at the moment it checks
the AUTHENTICATE message; several labs may live in one process with different passwords, so
that one step runs under a process-wide lock with the variable pointing at *this* lab's file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import os
import re
import struct
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spnego
import spnego.channel_bindings
import spnego.exceptions

BASIC_CHALLENGE = 'Basic realm="WSMAN"'
NEGOTIATE = "Negotiate"
KERBEROS = "Kerberos"

ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = b"--Encrypted Boundary"
ENCRYPTED_CONTENT_TYPE = (
    f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
)

_ENV_LOCK = threading.Lock()


class AuthFailed(Exception):
    """The credentials (or the NTLM token) were not accepted: answer 401."""


class EncryptionError(Exception):
    """An encrypted body is malformed or fails its signature."""


@dataclass(frozen=True)
class Account:
    """The one account a lab accepts, ``DOMAIN\\user`` or ``user``."""

    username: str
    password: str

    @property
    def domain_and_user(self) -> tuple[str, str]:
        domain, sep, user = self.username.partition("\\")
        return (domain, user) if sep else ("", self.username)

    def matches(self, username: str, password: str) -> bool:
        """Basic: the user name (with or without its domain) and the password."""
        domain, user = self.domain_and_user
        given_domain, sep, given_user = username.partition("\\")
        if not sep:
            given_domain, given_user = domain, username
        name_ok = given_user.lower() == user.lower() and given_domain.lower() == domain.lower()
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return name_ok and password_ok


def check_basic(header: str, account: Account) -> None:
    """Raise :class:`AuthFailed` unless ``header`` is Basic with the account's credentials."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise AuthFailed("not Basic")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthFailed("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not account.matches(username, password):
        raise AuthFailed("wrong user name or password")


class NtlmUserFile:
    """A private temp file ``DOMAIN:USER:PASSWORD`` for pyspnego's NTLM acceptor."""

    def __init__(self, account: Account) -> None:
        if any(c in account.password for c in "\r\n"):
            raise ValueError("an NTLM lab password cannot contain a line break")
        domain, user = account.domain_and_user
        handle, name = tempfile.mkstemp(prefix="casdesired-lab-ntlm-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(f"{domain}:{user}:{account.password}\n")
        self.path = Path(name)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def _user_file_env(path: Path) -> Iterator[None]:
    """Point ``NTLM_USER_FILE`` at ``path`` while pyspnego reads it (see module docstring)."""
    with _ENV_LOCK:
        previous = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = str(path)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = previous


def _negotiate_token(header: str) -> bytes:
    scheme, _, value = header.partition(" ")
    if scheme.lower() not in ("negotiate", "ntlm"):
        raise AuthFailed("not Negotiate")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raise AuthFailed("malformed Negotiate token") from None


class NtlmConnection:
    """The NTLM state of one HTTP connection: handshake, then wrap/unwrap in order."""

    def __init__(self, user_file: NtlmUserFile, cert_hash: bytes | None = None) -> None:
        self._user_file = user_file
        bindings = None
        if cert_hash is not None:
            # Channel binding (tls-server-end-point): an NTLM exchange relayed from another
            # TLS connection fails, as on Windows with extended protection.
            bindings = spnego.channel_bindings.GssChannelBindings(
                application_data=b"tls-server-end-point:" + cert_hash
            )
        with _user_file_env(user_file.path):
            self._context: Any = spnego.server(
                protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm,
                channel_bindings=bindings,
            )
        self.authenticated = False
        self._seal_lock = threading.Lock()

    def step(self, header: str) -> str | None:
        """Feed the client's token; the challenge header value to send with a 401, or None
        once the connection is authenticated. :class:`AuthFailed` when it fails."""
        token = _negotiate_token(header)
        scheme = header.partition(" ")[0]
        try:
            if self._context.complete or token[8:12] == b"\x03\x00\x00\x00":
                with _user_file_env(self._user_file.path):
                    self._context.step(token)
            else:
                challenge = self._context.step(token)
                return f"{scheme} {base64.b64encode(challenge).decode('ascii')}"
        except spnego.exceptions.SpnegoError as exc:
            raise AuthFailed(f"NTLM: {type(exc).__name__}") from None
        if not self._context.complete:
            raise AuthFailed("NTLM handshake incomplete")
        self.authenticated = True
        return None

    # Message encryption (MS-WSMV 2.2.9.1.1) --------------------------------------------------
    def decrypt(self, body: bytes) -> bytes:
        """The SOAP text inside a ``multipart/encrypted`` body."""
        parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
        if len(parts) < 2:
            raise EncryptionError("not a multipart/encrypted body")
        header, payload = parts[0], parts[1]
        match = re.search(rb"Length=(\d+)", header)
        if not match or ENCRYPTED_PROTOCOL.encode() not in header:
            raise EncryptionError("encrypted part header missing")
        if payload.endswith(BOUNDARY + b"--\r\n"):
            payload = payload[: -len(BOUNDARY + b"--\r\n")]
        prefix = b"\tContent-Type: application/octet-stream\r\n"
        if not payload.startswith(prefix):
            raise EncryptionError("encrypted payload header missing")
        payload = payload[len(prefix) :]
        if len(payload) < 4:
            raise EncryptionError("encrypted payload too short")
        sig_len = struct.unpack("<i", payload[:4])[0]
        signature, sealed = payload[4 : 4 + sig_len], payload[4 + sig_len :]
        try:
            with self._seal_lock:
                plain: bytes = self._context.unwrap(signature + sealed).data
        except spnego.exceptions.SpnegoError as exc:
            raise EncryptionError(f"unwrap failed: {type(exc).__name__}") from None
        if len(plain) != int(match.group(1)):
            raise EncryptionError("decrypted length does not match the declared Length")
        return plain

    def encrypt(self, message: bytes) -> bytes:
        with self._seal_lock:
            wrapped: bytes = self._context.wrap(message, encrypt=True).data
        signature, sealed = wrapped[:16], wrapped[16:]
        return (
            BOUNDARY + b"\r\n"
            b"\tContent-Type: " + ENCRYPTED_PROTOCOL.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(message)).encode() + b"\r\n"
            + BOUNDARY + b"\r\n"
            b"\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<i", len(signature)) + signature + sealed
            + BOUNDARY + b"--\r\n"
        )
