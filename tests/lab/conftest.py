"""Fixtures for the lab's wire tests: a tiny fake organisation and labs to drive with pywinrm.

The fake organisation is a PowerShellHost with a toy script language, enough to prove what
the wire carries (stdin, large output, non-ASCII text, CLIXML errors). It is NOT the Exchange
side; only wire tests use it.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
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
    with Lab(organisation, auth="basic") as lab:
        yield lab


@pytest.fixture
def ntlm_lab(organisation: FakeOrganisation) -> Iterator[Lab]:
    with Lab(organisation, auth="ntlm") as lab:
        yield lab


def protocol(
    lab: Lab, *, transport: str | None = None, password: str | None = None,
    username: str | None = None, **kwargs: Any,
) -> winrm.Protocol:
    """An unmodified pywinrm Protocol pointed at ``lab`` (proxies from the env ignored)."""
    kwargs.setdefault("proxy", None)
    kwargs.setdefault("ca_trust_path", None)  # not REQUESTS_CA_BUNDLE from the environment
    if transport is None:
        transport = "ntlm" if lab.auth == "ntlm" else "basic"
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
    kwargs.setdefault("transport", "ntlm" if lab.auth == "ntlm" else "basic")
    return winrm.Session(
        lab.url, auth=(lab.credentials.username, lab.credentials.password), **kwargs
    )


def run(proto: winrm.Protocol, command: str, args: tuple[str, ...] = (),
        codepage: int = 437) -> tuple[bytes, bytes, int]:
    shell = proto.open_shell(codepage=codepage)
    command_id = proto.run_command(shell, command, args)
    out, err, code = proto.get_command_output(shell, command_id)
    proto.cleanup_command(shell, command_id)
    proto.close_shell(shell)
    return out, err, code


__all__ = ["FakeOrganisation", "LabCredentials", "pattern", "protocol", "run", "session"]
