"""The WinRM client: runs the agent once per request over one pywinrm shell.

One run = one shell (:mod:`casdesired.transport.shell`: codepage 65001, so non-ASCII names
survive; closed whatever happened), in which the delivery the organisation file chose
(:mod:`casdesired.transport.deliveries`) gets the agent and its request to the host and runs
it: ``stdin`` (one command, both on its stdin) or ``file`` (no stdin: files under
``%ProgramData%\\casdesired\\agent`` checked by their SHA-256). The answer is the framed
response on stdout; anything else the host prints is ignored.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast
from urllib.parse import urlsplit

import requests
import winrm.transport

from casdesired.agent import framing, protocol
from casdesired.agent.delivery import DELIVERIES, Delivery, files
from casdesired.desired.config import Connection, display_url, url_has_credentials
from casdesired.errors import (
    ConfigError,
    ConnectionFailed,
    ProtocolError,
    ReadFailed,
    UnsupportedExchange,
)
from casdesired.transport import credentials
from casdesired.transport.deliveries import ProgressCallback, run_file, run_stdin
from casdesired.transport.errors import (
    clean_stderr,
    out_of_memory_message,
    ran_out_of_memory,
    scrub,
)
from casdesired.transport.shell import AgentShell

TransportName = Literal["basic", "ntlm", "kerberos", "credssp", "certificate"]
TRANSPORTS: tuple[TransportName, ...] = ("basic", "ntlm", "kerberos", "credssp", "certificate")

# pywinrm needs its HTTP read timeout above the WS-Man OperationTimeout (the server may hold a
# Receive that long before answering "no output yet").
READ_TIMEOUT_MARGIN_SECONDS = 10.0
EXCHANGE_2013_MARKER = "Exchange Server 2013 or later"


@dataclass(frozen=True)
class WinRMTarget:
    """Where and how to reach the Windows host that runs the agent."""

    url: str
    transport: TransportName = "ntlm"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_trust_path: str | None = None
    """PEM bundle of the CA(s) that sign the WinRM certificate; None: the system's defaults."""
    server_cert_validation: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    """HTTP read timeout of each WS-Man request; must exceed ``operation_timeout``."""
    operation_timeout: float = 20.0
    """WS-Man OperationTimeout: how long the server may hold a Receive with no output."""
    command_timeout: float = 1800.0
    """How long the agent may run in all before casdesired gives up on it."""
    message_encryption: Literal["auto", "always", "never"] = "auto"
    """``auto``: NTLM/Kerberos/CredSSP encrypt messages over HTTP, as Windows requires."""
    cert_pem: str | None = None
    cert_key_pem: str | None = None
    proxy: str | None = None
    """An explicit proxy URL; None: no proxy, whatever HTTP(S)_PROXY says."""
    exchange: protocol.ExchangeSession = field(default_factory=protocol.ExchangeSession)
    """How the agent reaches the Exchange cmdlets on that host."""
    delivery: Delivery = "stdin"
    """How the agent and its request reach the host (:mod:`casdesired.agent.delivery`)."""
    start_timeout: float = 120.0
    """stdin delivery: how long powershell.exe may take to say it read its stdin."""
    credential_source: str | None = field(default=None, compare=False)
    """Where the credentials came from (variable NAMES), for error messages."""

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self.password,)

    @property
    def credential(self) -> protocol.Credential | None:
        """What the agent uses for its second hops (the Exchange /PowerShell session, PSSessions
        to NLB nodes): the connection's own user and password, passed inside the session —
        what works without delegation (field §1c). None without a password (a Kerberos ticket
        only): then only a logon that can delegate reaches a second machine."""
        if self.username and self.password:
            return protocol.Credential(self.username, self.password)
        return None


def target_from_config(conn: Connection, environ: Mapping[str, str]) -> WinRMTarget:
    """The target an organisation file's ``connection`` describes, credentials from ``environ``.

    A missing variable is a :class:`ConfigError` naming the variable (never a value).
    """
    if conn.is_lab:
        raise ConfigError("endpoint 'lab' is served by the embedded lab, not a WinRM URL")
    if url_has_credentials(conn.endpoint):
        raise ConfigError(
            "connection.endpoint carries credentials (user:password@host); name environment "
            "variables under connection.credentials instead (the value was not printed)"
        )
    scheme = urlsplit(conn.endpoint).scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"connection.endpoint {display_url(conn.endpoint)!r} is not an http(s) WinRM URL"
        )
    if conn.transport not in TRANSPORTS:
        raise ConfigError(
            f"connection.transport {conn.transport!r} is not one of: {', '.join(TRANSPORTS)}"
        )
    transport: TransportName = conn.transport
    creds = conn.credentials
    username = password = cert_pem = cert_key = None
    if transport == "certificate":
        if scheme != "https":
            raise ConfigError("certificate authentication needs an https:// endpoint")
        cert_pem = credentials.existing_file(
            environ, creds.cert_pem_env, "cert_pem_env", "path of the client certificate (PEM)"
        )
        cert_key = credentials.existing_file(
            environ, creds.cert_key_env, "cert_key_env", "path of the client key (PEM)"
        )
    elif transport == "kerberos":
        # A ticket from kinit (or a keytab) is enough; a user name only picks the principal.
        username = credentials.optional(environ, creds.username_env)
        password = credentials.optional(environ, creds.password_env)
    else:
        username = credentials.required(environ, creds.username_env, "username_env", "user name")
        password = credentials.required(environ, creds.password_env, "password_env", "password")
    source = ", ".join(v for v in (creds.username_env, creds.password_env) if v) or None
    return WinRMTarget(
        url=conn.endpoint,
        transport=transport,
        username=username,
        password=password,
        ca_trust_path=str(conn.ca_bundle) if conn.ca_bundle else None,
        server_cert_validation=conn.tls_validate,
        connect_timeout=conn.connect_timeout,
        operation_timeout=conn.operation_timeout,
        read_timeout=conn.operation_timeout + READ_TIMEOUT_MARGIN_SECONDS,
        cert_pem=cert_pem,
        cert_key_pem=cert_key,
        exchange=_exchange_session(conn),
        delivery=delivery_of(conn),
        start_timeout=conn.agent_start_timeout,
        credential_source=source,
    )


def delivery_of(conn: Connection) -> Delivery:
    """``connection.agent.delivery``, checked."""
    for delivery in DELIVERIES:
        if conn.agent_delivery == delivery:
            return delivery
    raise ConfigError(
        f"connection.agent.delivery {conn.agent_delivery!r} is not one of: "
        f"{', '.join(DELIVERIES)}"
    )


def _exchange_session(conn: Connection) -> protocol.ExchangeSession:
    mode = conn.exchange_mode
    if mode not in ("snapin", "remote", "none"):
        raise ConfigError(f"connection.exchange.mode {mode!r} is not snapin, remote or none")
    if mode != "remote":
        return protocol.ExchangeSession(mode=cast(Literal["snapin", "none"], mode))
    # The request's credential (WinRMTarget.credential) opens it: no delegation needed. No uri:
    # the agent uses its own host's /PowerShell (the endpoint is an Exchange 2010 server).
    return protocol.ExchangeSession(mode="remote", uri=conn.exchange_uri, authentication="Kerberos")


class AgentClient:
    """Runs agent requests against one target; counts what it costs.

    ``requests``: WS-Man operations sent (Create, Command, Send, Receive, Signal, Delete);
    ``executions``: agent runs started (one per :meth:`run` that got that far); ``commands``:
    commands started (one per run with the stdin delivery; the file delivery's ``cmd.exe``
    lines too). ``warn`` receives one line for the user when something went wrong that is not
    the run's result (a shell that could not be closed); by default it is printed on stderr.
    """

    def __init__(
        self,
        target: WinRMTarget,
        *,
        warn: Callable[[str], None] | None = None,
        observe: Callable[[requests.Response], None] | None = None,
    ) -> None:
        self.target = target
        self.observe = observe
        """Shown every HTTP answer of the runs' sessions (see :class:`WinRMSession`)."""
        self.requests = 0
        self.executions = 0
        self.commands = 0
        self.last_host = ""
        self.warn = warn or _print_warning
        _check_extras(target.transport)

    def make_request(
        self, invocations: tuple[protocol.Invocation, ...], *, modules: tuple[str, ...] = ()
    ) -> protocol.Request:
        """A request for this target's Exchange session (snap-in or remote), carrying the
        credential for the agent's second hops."""
        return protocol.Request(
            invocations=invocations,
            exchange=self.target.exchange,
            modules=modules,
            credential=self.target.credential,
        )

    def run(
        self, request: protocol.Request, *, progress: ProgressCallback | None = None
    ) -> protocol.Response:
        """Run the agent once with ``request``; the agent's response. ``progress`` is shown
        the agent's progress lines (:class:`~casdesired.agent.framing.AgentProgress`: which
        invocation it started, the seconds left of a wait it polls) while it runs, as the
        Receives the run makes anyway bring them.

        Raises :class:`ConnectionFailed` (network, TLS, credentials, WS-Man faults; its
        subclass :class:`AgentNotStarted` when it failed before the agent could start),
        :class:`ProtocolError` (no or corrupt response), :class:`UnsupportedExchange`
        (Exchange 2013 or later) or :class:`ReadFailed` (the agent could not start).
        Failures of single invocations are not raised: they are in the response's results.
        """
        protocol.check_allowed(request)  # never send what the agent's allow-list refuses
        file = self.target.delivery == "file"
        environment = files.environment(request.credential) if file else {}
        shell = AgentShell(
            self.target, environment=environment, warn=self.warn, observe=self.observe
        )
        try:
            with shell:
                if file:
                    output = run_file(shell, request, progress)
                else:
                    output = run_stdin(shell, request, self.target.start_timeout, progress)
        finally:
            self.requests += shell.requests
            self.commands += shell.commands
            self.executions += 1 if shell.agent_commands else 0
        return self._response(output.stdout, output.stderr, output.exit_code)

    # --- the agent's answer -------------------------------------------------------------------

    def _response(self, stdout: bytes, stderr: bytes, exit_code: int) -> protocol.Response:
        out = stdout.decode("utf-8", errors="replace")
        raw_err = stderr.decode("utf-8", errors="replace")
        err = scrub(clean_stderr(raw_err), self.target.secrets)
        if framing.RESPONSE_BEGIN not in out:
            if ran_out_of_memory(raw_err):
                raise ProtocolError(out_of_memory_message(self.target.url, exit_code, err))
            said = f": {err}" if err else " and wrote nothing on stderr"
            raise ProtocolError(
                f"the agent on {self.target.url} returned no result (exit code {exit_code}){said}"
            )
        try:
            response = framing.decode_response(out)
        except ProtocolError as exc:
            said = f" (stderr: {err})" if err else ""
            raise ProtocolError(f"{exc}{said}") from None
        self.last_host = response.host
        if response.fatal:
            # The agent's words come from the host: only they are scrubbed, never ours around
            # them (and the marker is looked for before, so a secret cannot hide it).
            fatal = scrub(response.fatal, self.target.secrets)
            if EXCHANGE_2013_MARKER in response.fatal:
                raise UnsupportedExchange(fatal)
            where = scrub(response.host, self.target.secrets) if response.host else self.target.url
            raise ReadFailed(
                f"the agent on {where} could not start, so nothing was read or changed: {fatal}"
            )
        return response


def _print_warning(text: str) -> None:
    print(f"casdesired: warning: {text}", file=sys.stderr)


def _check_extras(transport: str) -> None:
    """Kerberos and CredSSP are optional extras, so the base install stays light."""
    missing = (transport == "kerberos" and not winrm.transport.HAVE_KERBEROS) or (
        transport == "credssp" and not winrm.transport.HAVE_CREDSSP
    )
    if missing:
        extra = "kerberos (and the system's Kerberos libraries)" if transport == "kerberos" else (
            "credssp"
        )
        raise ConnectionFailed(
            f"the {transport} transport needs an optional extra that is not installed: "
            f"pip install 'casdesired[{transport}]' — {extra}"
        )
