"""``casdesired lab serve`` as a person runs it: a real subprocess, then pywinrm against it."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import winrm
from winrm.exceptions import InvalidCredentialsError, WSManFaultError

from casdesired.cli import main

from .serve_process import Served, lab_serve


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    with lab_serve(*getattr(request, "param", ())) as running:
        yield running


def test_serve_prints_url_and_credentials_and_serves_the_seed(served: Served) -> None:
    fields = served.fields
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/wsman", fields["url"])
    session = winrm.Session(fields["url"], auth=(fields["username"], fields["password"]),
                            transport="ntlm", proxy=None, ca_trust_path=None)
    result = session.run_cmd("hostname")
    assert result.status_code == 0
    assert result.std_out.strip() == b"HQ-CAS01"  # the seed's endpoint host
    code, err = served.stop(signal.SIGINT)
    assert code == 0
    assert "lab stopped (SIGINT)" in err


@pytest.mark.parametrize("served", [("--tls", "--auth", "basic")], indirect=True)
def test_serve_tls_prints_a_ca_file_clients_validate_with(served: Served) -> None:
    fields = served.fields
    assert fields["url"].startswith("https://127.0.0.1:")
    session = winrm.Session(fields["url"], auth=(fields["username"], fields["password"]),
                            transport="ssl", ca_trust_path=fields["CA file"], proxy=None)
    assert session.run_cmd("hostname").status_code == 0


def test_serve_with_a_state_file_creates_it(tmp_path: Path) -> None:
    state = tmp_path / "org.json"
    with lab_serve("--state", str(state), "--auth", "basic",
                   env={"CASDESIRED_LAB_PASSWORD": "Known-Pa55"}) as served:
        assert served.fields["password"] == "Known-Pa55"
        assert state.exists()


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
def test_basic_over_http_needs_allow_unencrypted(served: Served, accepted: bool) -> None:
    # As on a Windows host: Basic over HTTP works only with AllowUnencrypted=true.
    fields = served.fields
    assert fields["encryption"].startswith("optional" if accepted else "required over HTTP")
    session = winrm.Session(fields["url"], auth=(fields["username"], fields["password"]),
                            transport="basic", proxy=None, ca_trust_path=None)
    if accepted:
        assert session.run_cmd("hostname").status_code == 0
    else:
        assert "Basic is refused" in fields["encryption"]
        with pytest.raises(InvalidCredentialsError):
            session.run_cmd("hostname")


def test_serve_stops_on_ctrl_c_when_started_with_sigint_ignored() -> None:
    # A background job of a non-interactive shell (`casdesired lab serve &` in a script, CI)
    # inherits SIGINT ignored; Ctrl-C (or `kill -INT`) must still stop the lab.
    with lab_serve("--auth", "basic", "--allow-unencrypted", ignore_sigint=True) as served:
        url = served.fields["url"]
        code, err = served.stop(signal.SIGINT)
    assert code == 0
    assert "lab stopped (SIGINT)" in err
    session = winrm.Session(url, auth=(served.fields["username"], served.fields["password"]),
                            transport="basic", proxy=None, ca_trust_path=None)
    with pytest.raises(requests.ConnectionError):
        session.run_cmd("hostname")  # nothing listens there any more


def test_serve_stops_on_sigterm_and_removes_its_files() -> None:
    # `kill PID` and service managers send SIGTERM: the lab stops as on Ctrl-C and removes
    # what it wrote (the generated CA and key, the NTLM account file).
    with lab_serve("--tls", "--auth", "basic") as served:
        ca_file = Path(served.fields["CA file"])
        assert ca_file.exists()
        code, err = served.stop(signal.SIGTERM)
    assert code == 0
    assert "lab stopped (SIGTERM)" in err
    assert not ca_file.exists()


@pytest.mark.parametrize(
    "served", [("--winrm", "MaxShellsPerUser=1", "--winrm", "maxmemorypershellmb=1024")],
    indirect=True,
)
def test_serve_sets_winrm_quotas_by_windows_names(served: Served) -> None:
    assert served.fields["winrm"] == (
        "MaxEnvelopeSizekb=150, MaxTimeoutms=60000, MaxShellsPerUser=1, "
        "MaxMemoryPerShellMB=1024, IdleTimeout=180000"
    )
    proto = winrm.Protocol(served.fields["url"], transport="ntlm", proxy=None, ca_trust_path=None,
                           username=served.fields["username"], password=served.fields["password"])
    shell = proto.open_shell()
    with pytest.raises(WSManFaultError) as refused:
        proto.open_shell()  # MaxShellsPerUser=1
    assert refused.value.wsman_fault_code == 2150859173
    proto.close_shell(shell)


def test_serve_defaults_to_windows_server_2008_r2s_quotas(served: Served) -> None:
    assert served.fields["winrm"] == (
        "MaxEnvelopeSizekb=150, MaxTimeoutms=60000, MaxShellsPerUser=5, "
        "MaxMemoryPerShellMB=150, IdleTimeout=180000"
    )


@pytest.mark.parametrize("setting", ["MaxShells=3", "MaxShellsPerUser", "MaxTimeoutms=1"])
def test_a_bad_winrm_setting_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], setting: str
) -> None:
    assert main(["lab", "serve", "--winrm", setting]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"casdesired: error: --winrm {setting}: ")
    assert "Traceback" not in err and err.count("\n") == 1
