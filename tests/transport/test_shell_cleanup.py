"""Nothing leaked: whatever breaks a run, the shell it opened is closed.

On Windows every open shell counts against the account's MaxShellsPerUser (5 on WinRM 2.0)
until WinRM's idle timeout: five runs that each leak one lock the account out of the sixth.
After a dropped, hung or refused exchange the run's NTLM session is broken (its sealing keys
died with the connection), so the client must close the shell on a freshly authenticated one,
quickly, and only when it opened one; a shell it cannot close is one line for the user.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from casdesired.errors import ConnectionFailed
from casdesired.lab.faults import WireFault
from casdesired.lab.server import Lab, LabCredentials
from casdesired.transport.winrm import AgentClient

from .conftest import OrgDir, cli, target_of

PASSWORD = "Cleanup-S3cret-4411"
ONE_CALL_KINDS = ("drop", "hang", "http500", "wsman_fault", "401")
AFTER_THE_SHELL = ("Command", "Send", "Receive")


@pytest.fixture
def lab(scripted_lab: Callable[..., Lab]) -> Lab:
    """NTLM with sealed messages over HTTP: casdesired's default wire, where a broken
    connection takes the session's keys with it."""
    return scripted_lab(credentials=LabCredentials(password=PASSWORD))


def _client(lab: Lab, notices: list[str]) -> AgentClient:
    # A hung request is given up after 2 s; the cleanup's own bound is shorter than its default.
    return AgentClient(target_of(lab, operation_timeout=1.0, read_timeout=2.0), warn=notices.append)


def _run_fails(client: AgentClient) -> str:
    with pytest.raises(ConnectionFailed) as raised:
        client.run(client.make_request(()))
    message = str(raised.value)
    assert PASSWORD not in message and "Traceback" not in message
    return message


def _wsman(lab: Lab) -> list[tuple[str, object]]:
    """(action, HTTP status or injected fault) of each WS-Man operation the lab received."""
    entries = lab.journal.entries(["wsman"])
    return [(str(e["action"]), e.get("status", e.get("fault"))) for e in entries]


@pytest.mark.parametrize("action", AFTER_THE_SHELL)
@pytest.mark.parametrize("kind", ONE_CALL_KINDS)
def test_a_failed_run_closes_its_shell(lab: Lab, kind: str, action: str) -> None:
    lab.faults.wire.append(WireFault(kind, action=action))  # type: ignore[arg-type]
    notices: list[str] = []
    _run_fails(_client(lab, notices))
    assert lab.open_shells == 0
    assert notices == []
    assert _wsman(lab)[-1] == ("Delete", 200)


def test_five_failed_runs_leave_no_shell_for_the_quota(lab: Lab) -> None:
    lab.faults.wire.append(WireFault("drop", action="Receive", times=5))
    notices: list[str] = []
    for _ in range(5):
        assert "closed without an answer while reading the agent's output" in _run_fails(
            _client(lab, notices)
        )
        assert lab.open_shells == 0
    assert notices == []
    client = _client(lab, notices)
    assert client.run(client.make_request(())).results == ()
    assert lab.open_shells == 0


@pytest.mark.parametrize("kind", ONE_CALL_KINDS)
def test_no_cleanup_is_sent_when_no_shell_was_opened(lab: Lab, kind: str) -> None:
    lab.faults.wire.append(WireFault(kind, action="Create"))  # type: ignore[arg-type]
    notices: list[str] = []
    client = _client(lab, notices)
    _run_fails(client)
    assert [action for action, _ in _wsman(lab)] == ["Create"]
    assert client.requests == 1
    assert lab.open_shells == 0 and notices == []


def test_a_shell_that_cannot_be_closed_is_one_line_and_the_error_stays_whole(lab: Lab) -> None:
    lab.faults.wire.extend([
        WireFault("drop", action="Receive"),
        WireFault("http500", action="Delete", times=0),
    ])
    notices: list[str] = []
    message = _run_fails(_client(lab, notices))
    assert message.startswith(f"The connection to {lab.url} was closed without an answer while "
                              "reading the agent's output.")
    assert notices == [
        "the shell casdesired opened on 127.0.0.1 could not be closed (HTTP 500); WinRM closes "
        "it after its idle timeout (Shell IdleTimeout), and until then it counts against the "
        "account's limit of concurrent shells (MaxShellsPerUser)"
    ]
    assert lab.open_shells == 1  # honestly reported: it is still open


def test_a_cleanup_that_gets_no_answer_is_given_up_after_one_bounded_try(lab: Lab) -> None:
    lab.faults.wire.extend([
        WireFault("drop", action="Receive"),
        WireFault("hang", action="Delete", times=0),
    ])
    notices: list[str] = []
    _run_fails(_client(lab, notices))
    assert len(notices) == 1
    assert "could not be closed (no answer within 2 s)" in notices[0]
    # One Delete, not a retry per session: a host that does not answer holds nobody's exit.
    assert [a for a, _ in _wsman(lab)].count("Delete") == 1
    lab.faults.clear()
    assert lab.open_shells == 1


def test_a_successful_run_whose_shell_cannot_be_closed_still_returns_its_answer(
    lab: Lab,
) -> None:
    lab.faults.wire.append(WireFault("http500", action="Delete", times=0))
    notices: list[str] = []
    client = _client(lab, notices)
    assert client.run(client.make_request(())).results == ()
    assert len(notices) == 1 and "could not be closed (HTTP 500)" in notices[0]
    # the run's own session first, then a fresh one: two Deletes, both refused
    assert [a for a, _ in _wsman(lab)][-3:] == ["Signal", "Delete", "Delete"]


@pytest.mark.parametrize("kind", ["http500", "wsman_fault"])
def test_a_refused_delete_on_a_healthy_session_is_retried_on_a_fresh_one(
    lab: Lab, kind: str
) -> None:
    # A WS-Management fault is a refusal too (say the service's internal error), not a
    # timeout: one more Delete, on a new connection, closes the shell.
    lab.faults.wire.append(WireFault(kind, action="Delete"))  # type: ignore[arg-type]
    notices: list[str] = []
    client = _client(lab, notices)
    client.run(client.make_request(()))
    assert notices == [] and lab.open_shells == 0
    assert _wsman(lab)[-2:] == [("Delete", kind), ("Delete", 200)]


def test_a_delete_refused_on_both_connections_is_one_line(lab: Lab) -> None:
    lab.faults.wire.append(WireFault("wsman_fault", action="Delete", times=0))
    notices: list[str] = []
    client = _client(lab, notices)
    assert client.run(client.make_request(())).results == ()
    assert [a for a, _ in _wsman(lab)][-3:] == ["Signal", "Delete", "Delete"]
    assert len(notices) == 1
    assert "could not be closed (WS-Management fault 2150858770)" in notices[0]
    assert lab.open_shells == 1


# --- through the CLI ------------------------------------------------------------------------


@pytest.fixture
def org(org_dir: Callable[..., OrgDir]) -> Iterator[OrgDir]:
    yield org_dir(password=PASSWORD)


def test_plan_after_a_dropped_connection_leaves_no_shell_and_one_clear_error(
    org: OrgDir, capsys: pytest.CaptureFixture[str]
) -> None:
    org.lab.faults.wire.append(WireFault("drop", action="Receive", times=0))
    for _ in range(2):
        code, _out, err = cli(capsys, "plan", str(org.path))
        assert code == 1
        assert err.count("casdesired: error: The connection to") == 1
        assert "casdesired: warning" not in err and "Traceback" not in err
        assert org.lab.open_shells == 0


def test_plan_says_in_one_line_when_its_shell_stays_open(
    org: OrgDir, capsys: pytest.CaptureFixture[str]
) -> None:
    org.lab.faults.wire.append(WireFault("http500", action="Delete", times=0))
    # DR rebinds nothing: one command execution, one shell.
    code, out, err = cli(capsys, "plan", str(org.path), "--site", "DR")
    assert code == 0 and out, err  # the plan itself is made and shown
    warnings = [line for line in err.splitlines() if "could not be closed" in line]
    assert warnings == [
        "casdesired: warning: the shell casdesired opened on 127.0.0.1 could not be closed "
        "(HTTP 500); WinRM closes it after its idle timeout (Shell IdleTimeout), and until then "
        "it counts against the account's limit of concurrent shells (MaxShellsPerUser)"
    ]
    assert "Traceback" not in err


def test_ctrl_c_during_a_plan_closes_its_shell(org: OrgDir) -> None:
    """SIGINT arrives while a Receive waits for the agent: the request is cut off half-way,
    so the shell is closed on a fresh session before casdesired exits."""
    lab = org.lab
    lab.faults.update({"cmdlets": [{"cmdlet": "Get-ExchangeServer", "fail": False,
                                    "gate": "plan-reading"}]})
    gate = lab.faults.gate("plan-reading")
    process = subprocess.Popen(
        [sys.executable, "-m", "casdesired", "plan", str(org.path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert gate.wait_reached(60), "the plan never started reading"
        assert lab.open_shells == 1
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
    finally:
        gate.open()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "casdesired: interrupted" in err and "Traceback" not in err
    assert lab.open_shells == 0
    assert [a for a, _ in _wsman(lab)][-1] == "Delete"
