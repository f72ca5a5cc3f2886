"""The control API on the lab's port: token-protected state, reset, faults and journal."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from casdesired.lab.control import is_loopback
from casdesired.lab.server import Lab

from .conftest import FakeOrganisation, protocol, run


def call(lab: Lab, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"X-Lab-Token": lab.token if token is None else token}
    return requests.request(
        method, lab.control_url + path, json=body, headers=headers, timeout=5,
        proxies={"http": "", "https": ""},
    )


def test_token_is_required(basic_lab: Lab) -> None:
    assert call(basic_lab, "GET", "/state", token="").status_code == 403
    assert call(basic_lab, "GET", "/state", token="guess").status_code == 403
    assert call(basic_lab, "GET", "/state").status_code == 200


def test_state_get_put_reset(basic_lab: Lab, organisation: FakeOrganisation) -> None:
    assert call(basic_lab, "GET", "/state").json() == {"sites": ["HQ"], "arrays": []}
    changed = {"sites": ["HQ", "BRANCH"], "arrays": ["outlook.contoso.com"]}
    assert call(basic_lab, "PUT", "/state", changed).json() == changed
    assert organisation.state == changed
    assert call(basic_lab, "POST", "/reset").status_code == 200
    assert call(basic_lab, "GET", "/state").json() == {"sites": ["HQ"], "arrays": []}


def test_put_state_needs_an_object(basic_lab: Lab) -> None:
    answer = call(basic_lab, "PUT", "/state", ["not", "an", "object"])
    assert answer.status_code == 400
    assert "JSON object" in answer.json()["error"]


def test_faults_put_takes_effect_on_the_wire(basic_lab: Lab) -> None:
    answer = call(basic_lab, "PUT", "/faults", {"reject_credentials": True})
    assert answer.json()["reject_credentials"] is True
    from winrm.exceptions import InvalidCredentialsError

    with pytest.raises(InvalidCredentialsError):
        protocol(basic_lab).open_shell()
    call(basic_lab, "POST", "/reset")
    assert call(basic_lab, "GET", "/faults").json()["reject_credentials"] is False
    assert run(protocol(basic_lab), "hostname")[2] == 0


def test_bad_fault_settings_are_rejected(basic_lab: Lab) -> None:
    answer = call(basic_lab, "PUT", "/faults", {"wire": [{"kind": "http500", "bogus": 1}]})
    assert answer.status_code == 400


def test_journal_records_http_wsman_and_commands(basic_lab: Lab) -> None:
    call(basic_lab, "DELETE", "/journal")
    run(protocol(basic_lab), "echo", ("probe",))
    entries = call(basic_lab, "GET", "/journal").json()
    kinds = [e["kind"] for e in entries]
    assert kinds.count("command") == 1
    command = next(e for e in entries if e["kind"] == "command")
    assert command["command_line"] == "echo probe"
    actions = [e["action"] for e in entries if e["kind"] == "wsman"]
    assert actions == ["Create", "Command", "Receive", "Signal", "Delete"]
    shell_ids = {e["shell_id"] for e in entries if e["kind"] == "wsman"}
    assert len(shell_ids) == 1
    assert any(e["kind"] == "http" and e["path"] == "/wsman" for e in entries)
    assert basic_lab.credentials.password not in str(entries)


def test_unknown_control_path(basic_lab: Lab) -> None:
    assert call(basic_lab, "GET", "/nothing").status_code == 404


def test_open_shells_are_counted_in_the_control_api(basic_lab: Lab) -> None:
    assert call(basic_lab, "GET", "/shells").json() == {"open": 0, "shells": []}
    proto = protocol(basic_lab)
    shell = proto.open_shell()
    proto.run_command(shell, "hostname")
    report = call(basic_lab, "GET", "/shells").json()
    assert report == {"open": 1, "shells": [{"id": shell, "commands": 1}]}
    assert basic_lab.open_shells == 1
    proto.close_shell(shell)
    assert call(basic_lab, "GET", "/shells").json()["open"] == 0
    assert basic_lab.open_shells == 0


def test_an_unknown_wire_fault_kind_is_rejected(basic_lab: Lab) -> None:
    answer = call(basic_lab, "PUT", "/faults", {"wire": [{"kind": "reset"}]})
    assert answer.status_code == 400
    assert "unknown wire fault kind 'reset'" in answer.json()["error"]
    assert call(basic_lab, "GET", "/faults").json()["wire"] == []
    # the 401 kind may come as a number from JSON or YAML
    answer = call(basic_lab, "PUT", "/faults", {"wire": [{"kind": 401, "action": "Create"}]})
    assert answer.json()["wire"][0]["kind"] == "401"


def test_reset_closes_open_shells(basic_lab: Lab) -> None:
    protocol(basic_lab).open_shell()
    assert basic_lab.open_shells == 1
    call(basic_lab, "POST", "/reset")
    assert basic_lab.open_shells == 0


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.5", False), ("192.168.1.1", False), ("nonsense", False)],
)
def test_only_loopback_clients_may_control(address: str, expected: bool) -> None:
    assert is_loopback(address) is expected


def test_a_body_nested_too_deeply_is_a_400_not_a_dropped_connection(basic_lab: Lab) -> None:
    body = '{"latency_ms": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = requests.put(
        basic_lab.control_url + "/faults", data=body, timeout=5,
        headers={"X-Lab-Token": basic_lab.token, "Content-Type": "application/json"},
        proxies={"http": "", "https": ""},
    )
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["error"]
    assert call(basic_lab, "GET", "/faults").status_code == 200
