"""The embedded lab behind ``endpoint: lab``: same transport, state outside the repo, reset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from casdesired.agent import protocol
from casdesired.cli import main
from casdesired.desired.loader import load_desired
from casdesired.lab.embedded import (
    default_state_path,
    embedded_lab,
    reset_lab_state,
    running_lab,
)
from casdesired.live.reader import read_live
from casdesired.transport.winrm import AgentClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example organisation in sites/ (which targets the lab)."""
    directory = tmp_path / "sites"
    shutil.copytree(ROOT / "sites", directory)
    return directory


def test_default_state_path_is_outside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_state_path("contoso", {"XDG_STATE_HOME": "/var/state"}) == Path(
        "/var/state/casdesired/contoso-lab.json"
    )
    monkeypatch.setenv("HOME", "/home/admin")
    assert default_state_path("contoso", {}) == Path(
        "/home/admin/.local/state/casdesired/contoso-lab.json"
    )
    # A relative XDG_STATE_HOME is invalid per the spec and ignored.
    assert default_state_path("../x", {"XDG_STATE_HOME": "rel"}).name == ".._x-lab.json"


def test_embedded_lab_reads_through_the_same_transport_and_persists(
    example: Path, tmp_path: Path
) -> None:
    org = load_desired(example).organisation
    state = tmp_path / "state" / "contoso-lab.json"
    with running_lab(org, state) as (lab, target):
        assert target.url.startswith("http://127.0.0.1:") and target.transport == "ntlm"
        assert target.message_encryption == "auto"  # NTLM over HTTP: sealed messages
        client = AgentClient(target)
        live = read_live(client, nlb_hosts=["hq-cas01.contoso.local"])
        assert live.estate.databases["hq-db05"].rpc_client_access_server == (
            "hq-cas02.contoso.local"
        )
        assert lab.journal.count("command") == 1
        # Cmdlets and commands land in the same journal.
        assert "Get-MailboxDatabase" in [e["cmdlet"] for e in lab.journal.entries(["cmdlet"])]
        change = protocol.Invocation(
            "rebind",
            "Set-MailboxDatabase",
            {"Identity": "HQ-DB05", "RpcClientAccessServer": "outlook-hq.contoso.local"},
        )
        assert client.run(client.make_request((change,))).results[0].ok
    assert state.exists()
    saved = json.loads(state.read_text(encoding="utf-8"))
    hq_db05 = next(d for d in saved["databases"] if d["name"] == "HQ-DB05")
    assert hq_db05["rpc_client_access_server"]["shown"] == "outlook-hq.contoso.local"

    # The next run starts from what the last one left.
    with embedded_lab(org, state) as target:
        again = read_live(AgentClient(target), nlb_hosts=[])
        assert again.estate.databases["hq-db05"].rpc_client_access_server == (
            "outlook-hq.contoso.local"
        )

    reset_lab_state(state)
    with embedded_lab(org, state) as target:
        fresh = read_live(AgentClient(target), nlb_hosts=[])
        assert fresh.estate.databases["hq-db05"].rpc_client_access_server == (
            "hq-cas02.contoso.local"
        )


def test_lab_reset_command(
    example: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = tmp_path / "xdg" / "casdesired" / "contoso-lab.json"
    state.parent.mkdir(parents=True)
    state.write_text("{not json", encoding="utf-8")

    assert main(["lab", "reset", str(example)]) == 0
    assert str(state) in capsys.readouterr().out
    assert json.loads(state.read_text(encoding="utf-8"))["seed"] == "contoso"


def test_lab_reset_refuses_an_organisation_that_is_not_the_lab(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org_file = example / "organisation.yaml"
    text = org_file.read_text(encoding="utf-8")
    org_file.write_text(
        text.replace("endpoint: lab ", "endpoint: https://ex01.contoso.local:5986/wsman "),
        encoding="utf-8",
    )
    assert main(["lab", "reset", str(example)]) == 1
    err = capsys.readouterr().err
    assert "does not target the lab" in err and "Traceback" not in err


def test_an_embedded_lab_state_nested_too_deeply_is_one_error_and_reset_repairs_it(
    example: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = tmp_path / "xdg" / "casdesired" / "contoso-lab.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"organisation": ' + "[" * 100_000 + "]" * 100_000 + "}", "utf-8")

    assert main(["plan", str(example)]) == 1
    err = capsys.readouterr().err
    assert err == f"casdesired: error: {state}: JSON nested too deeply\n"
    assert main(["lab", "reset", str(example)]) == 0
    capsys.readouterr()
    assert main(["plan", str(example)]) == 0


def test_the_embedded_lab_keeps_the_file_deliverys_agent_between_runs(
    example: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The agent file lives in the lab's state file, as on the endpoint host's disk: the second
    # plan (a new process's worth of lab) finds it and writes only its request.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    yaml_path = example / "organisation.yaml"
    yaml_path.write_text(yaml_path.read_text().replace(
        "  credentials:", "  agent: {delivery: file}\n  credentials:", 1
    ))
    state = tmp_path / "xdg" / "casdesired" / "contoso-lab.json"
    for _ in range(2):
        assert main(["plan", str(example)]) == 0, capsys.readouterr().err
        files = json.loads(state.read_text(encoding="utf-8"))["files"]
        agents = [p for p in files if "\\casdesired\\agent\\agent-" in p]
        assert len(agents) == 1 and not [p for p in files if "request-" in p or "upload-" in p]
    org = load_desired(example).organisation
    with running_lab(org, state) as (_lab, target):
        client = AgentClient(target)
        assert target.delivery == "file"
        read_live(client, nlb_hosts=[])
        assert client.commands == 2  # the request's echo line, the bootstrap: the agent reused
    capsys.readouterr()
