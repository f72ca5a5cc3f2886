"""``casdesired lab serve`` as a person runs it: a real subprocess, then pywinrm against it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import winrm
from winrm.exceptions import InvalidCredentialsError

from casdesired.cli import main


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "casdesired", "lab", "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def _banner(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    fields: dict[str, str] = {}
    for line in process.stdout:
        match = re.match(r"\s+([\w ]+?):\s+(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2)
        if line.startswith("Press Ctrl-C"):
            return fields
    raise AssertionError(f"no banner; stderr: {process.stderr.read() if process.stderr else ''}")


@pytest.fixture
def served(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    process = _serve(*getattr(request, "param", ()))
    try:
        yield process, _banner(process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_serve_prints_url_and_credentials_and_serves_the_seed(
    served: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, fields = served
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/wsman", fields["url"])
    session = winrm.Session(fields["url"], auth=(fields["username"], fields["password"]),
                            transport="ntlm", proxy=None, ca_trust_path=None)
    result = session.run_cmd("hostname")
    assert result.status_code == 0
    assert result.std_out.strip() == b"HQ-CAS01"  # the seed's endpoint host
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("served", [("--tls", "--auth", "basic")], indirect=True)
def test_serve_tls_prints_a_ca_file_clients_validate_with(
    served: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    _, fields = served
    assert fields["url"].startswith("https://127.0.0.1:")
    session = winrm.Session(fields["url"], auth=(fields["username"], fields["password"]),
                            transport="ssl", ca_trust_path=fields["CA file"], proxy=None)
    assert session.run_cmd("hostname").status_code == 0


def test_serve_with_a_state_file_creates_it(tmp_path: Path) -> None:
    state = tmp_path / "org.json"
    process = _serve("--state", str(state), "--auth", "basic",
                     env={"CASDESIRED_LAB_PASSWORD": "Known-Pa55"})
    try:
        fields = _banner(process)
        assert fields["password"] == "Known-Pa55"
        assert state.exists()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_port_in_use_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["lab", "serve", "--port", str(port), "--auth", "basic"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("casdesired: error: cannot listen on 127.0.0.1:")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("served", "accepted"),
    [(("--auth", "basic"), False), (("--auth", "basic", "--allow-unencrypted"), True)],
    indirect=["served"],
)
def test_basic_over_http_needs_allow_unencrypted(
    served: tuple[subprocess.Popen[str], dict[str, str]], accepted: bool,
) -> None:
    # As on a Windows host: Basic over HTTP works only with AllowUnencrypted=true.
    _, fields = served
    assert fields["encryption"].startswith("optional" if accepted else "required over HTTP")
    session = winrm.Session(fields["url"], auth=(fields["username"], fields["password"]),
                            transport="basic", proxy=None, ca_trust_path=None)
    if accepted:
        assert session.run_cmd("hostname").status_code == 0
    else:
        assert "Basic is refused" in fields["encryption"]
        with pytest.raises(InvalidCredentialsError):
            session.run_cmd("hostname")
