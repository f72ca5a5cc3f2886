"""Fixtures for the lab's wire tests: a tiny fake organisation and labs to drive with pywinrm.

The fake organisation is a PowerShellHost with a toy script language, enough to prove what
the wire carries (stdin, large output, non-ASCII text, CLIXML errors). It is NOT the Exchange
side; only wire tests use it.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
import requests
import winrm

from casdesired.lab.process import ProcessResult
from casdesired.lab.server import Lab, LabCredentials
from casdesired.lab.wsman.shells import clixml_error


class FakeOrganisation:
    """Scripts it understands (one per run):

    ``say TEXT`` (stdout TEXT), ``echo-stdin`` (stdout = stdin as UTF-8),
    ``bytes N`` (N bytes of a counting pattern), ``sleep SECONDS then TEXT``, ``stderr TEXT``
    (plain stderr, exit 2). Anything else fails with a CLIXML error, like PowerShell.
    """

    hostname = "HQ-CAS01"

    def __init__(self) -> None:
        self.seed: dict[str, Any] = {"sites": ["HQ"], "arrays": []}
        self.state = copy.deepcopy(self.seed)
        self.runs: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()

    def run(self, script: str, stdin: bytes) -> ProcessResult:
        with self._lock:
            self.runs.append((script, stdin))
        verb, _, rest = script.partition(" ")
        if verb == "say":
            return ProcessResult(stdout=rest + "\n")
        if verb == "echo-stdin":
            return ProcessResult(stdout=stdin.decode("utf-8"))
        if verb == "bytes":
            return ProcessResult(stdout=pattern(int(rest)))
        if verb == "sleep":
            seconds, _, text = rest.partition(" then ")
            time.sleep(float(seconds))
            return ProcessResult(stdout=text + "\n")
        if verb == "stderr":
            return ProcessResult(stderr=rest + "\n", exit_code=2)
        message = (
            f"The term '{verb}' is not recognized as the name of a cmdlet, function, script "
            "file, or operable program."
        )
        return ProcessResult(stderr=clixml_error(message), exit_code=1)

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    def load(self, data: dict[str, Any]) -> None:
        self.state = copy.deepcopy(data)

    def reset(self) -> None:
        self.state = copy.deepcopy(self.seed)


def pattern(size: int) -> str:
    """``size`` characters of numbered ASCII lines (no line breaks to translate)."""
    text = "".join(f"{i:07d}|" for i in range(size // 8 + 1))
    return text[:size]


@pytest.fixture
def organisation() -> FakeOrganisation:
    return FakeOrganisation()


@pytest.fixture
def basic_lab(organisation: FakeOrganisation) -> Iterator[Lab]:
    # Basic over plain HTTP works only where the service allows unencrypted messages.
    with Lab(organisation, auth="basic", allow_unencrypted=True) as lab:
        yield lab


@pytest.fixture
def ntlm_lab(organisation: FakeOrganisation) -> Iterator[Lab]:
    with Lab(organisation, auth="ntlm") as lab:
        yield lab


def _default_transport(lab: Lab) -> str:
    if lab.auth == "ntlm":
        return "ntlm"
    return "ssl" if lab.tls else "basic"  # pywinrm's "ssl" is Basic over HTTPS


def protocol(
    lab: Lab, *, transport: str | None = None, password: str | None = None,
    username: str | None = None, **kwargs: Any,
) -> winrm.Protocol:
    """An unmodified pywinrm Protocol pointed at ``lab`` (proxies from the env ignored).

    Over HTTPS it trusts the lab's CA; otherwise no CA file (not REQUESTS_CA_BUNDLE either).
    """
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("ca_trust_path", str(lab.ca_file) if lab.ca_file else None)
    if transport is None:
        transport = _default_transport(lab)
    return winrm.Protocol(
        lab.url,
        transport=transport,
        username=username or lab.credentials.username,
        password=lab.credentials.password if password is None else password,
        **kwargs,
    )


def session(lab: Lab, **kwargs: Any) -> winrm.Session:
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("ca_trust_path", None)
    kwargs.setdefault("transport", _default_transport(lab))
    return winrm.Session(
        lab.url, auth=(lab.credentials.username, lab.credentials.password), **kwargs
    )


# The wires every fault, stdin and large-output test runs over -------------------------------
SEALED_PROTOCOL = 'protocol="application/HTTP-SPNEGO-session-encrypted"'


@dataclass(frozen=True)
class Wire:
    """One way pywinrm reaches the lab: the lab's settings and the client's."""

    name: str
    auth: Literal["basic", "ntlm"]
    tls: bool = False
    allow_unencrypted: bool = False
    client: tuple[tuple[str, str], ...] = ()

    def lab(self, organisation: Any, **options: Any) -> Lab:
        return Lab(organisation, auth=self.auth, tls=self.tls,
                   allow_unencrypted=self.allow_unencrypted, **options)

    @property
    def sealed(self) -> bool:
        """NTLM-encrypted messages over plain HTTP."""
        return self.auth == "ntlm" and not self.tls


WIRES = (
    # Basic over plain HTTP: only where the service allows unencrypted messages.
    Wire("basic-http", "basic", allow_unencrypted=True),
    # NTLM with message encryption over HTTP, against Windows' default AllowUnencrypted=false.
    Wire("ntlm-sealed-http", "ntlm", client=(("message_encryption", "always"),)),
    # Basic over HTTPS (pywinrm's "ssl"), validated with the lab's CA file.
    Wire("basic-https", "basic", tls=True),
)


def observe_replies(proto: winrm.Protocol) -> list[requests.Response]:
    """Every HTTP reply the client accepts after authentication, as it came off the wire.

    A requests response hook on each session pywinrm builds (sessions are rebuilt after
    ``close_shell``); requests_ntlm's own hook runs first, so the hook sees the reply that
    follows the handshake, not the 401s within it. pywinrm itself is unchanged.
    """
    replies: list[requests.Response] = []
    transport = proto.transport

    def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        replies.append(response)

    def hooked(session: requests.Session) -> requests.Session:
        if keep not in session.hooks["response"]:
            session.hooks["response"].append(keep)
        return session

    build, setup = transport.build_session, transport.setup_encryption

    def build_session() -> requests.Session:
        return hooked(build())

    def setup_encryption(session: requests.Session) -> None:
        setup(hooked(session))  # before the blank POST that runs the NTLM handshake

    transport.build_session = build_session  # type: ignore[method-assign]
    transport.setup_encryption = setup_encryption  # type: ignore[method-assign]
    return replies


def assert_wire(wire: Wire, replies: list[requests.Response]) -> None:
    """The replies really travelled as ``wire`` says: sealed, over TLS, or in the clear."""
    assert replies, "no reply observed"
    for reply in replies:
        assert reply.url.startswith("https://" if wire.tls else "http://")
        if not reply.content:
            continue  # the blank POST's answer, an injected bare HTTP 500
        content_type = reply.headers["Content-Type"]
        if wire.sealed:
            assert content_type.startswith("multipart/encrypted;"), content_type
            assert SEALED_PROTOCOL in content_type, content_type
        else:
            assert content_type.startswith("application/soap+xml"), content_type


@pytest.fixture(params=WIRES, ids=[w.name for w in WIRES])
def wire(request: pytest.FixtureRequest) -> Wire:
    chosen: Wire = request.param
    return chosen


@pytest.fixture
def connect(wire: Wire) -> Iterator[Callable[..., winrm.Protocol]]:
    """``connect(lab, **client_options)`` → a Protocol over ``wire``; at the end of the test,
    every reply it got is checked to have travelled as the wire says. ``answered=False`` for
    a client whose requests are all meant to go unanswered (hung, dropped)."""
    made: list[tuple[bool, list[requests.Response]]] = []

    def make(lab: Lab, *, answered: bool = True, **kwargs: Any) -> winrm.Protocol:
        proto = protocol(lab, **{**dict(wire.client), **kwargs})
        made.append((answered, observe_replies(proto)))
        return proto

    yield make
    for answered, replies in made:
        if answered or replies:
            assert_wire(wire, replies)


def run(proto: winrm.Protocol, command: str, args: tuple[str, ...] = (),
        codepage: int = 437) -> tuple[bytes, bytes, int]:
    shell = proto.open_shell(codepage=codepage)
    command_id = proto.run_command(shell, command, args)
    out, err, code = proto.get_command_output(shell, command_id)
    proto.cleanup_command(shell, command_id)
    proto.close_shell(shell)
    return out, err, code


__all__ = [
    "WIRES", "FakeOrganisation", "LabCredentials", "Wire", "assert_wire", "observe_replies",
    "pattern", "protocol", "run", "session",
]
