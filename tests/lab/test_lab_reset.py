"""A reset returns a lab to its own organisation's seed, never to the example one.

A user's organisation (here Fabrikam, written by hand into the state file that
``connection.lab.state`` names) must survive ``casdesired lab reset`` and ``POST /lab/reset``;
the account ``lab serve`` prints is in that organisation's domain.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
import winrm

from casdesired.agent.protocol import Invocation
from casdesired.cli import main
from casdesired.lab.exchange import Organisation, seeds
from casdesired.lab.exchange.testing import call
from casdesired.lab.server import Lab

from .serve_process import lab_serve

EXAMPLE = Path(__file__).resolve().parents[2] / "sites"
NEW_BRANCH_ARRAY = Invocation("new", "New-ClientAccessArray",
                              {"Fqdn": "outlook-br.fabrikam.local", "Site": "Branch"}, ("Guid",))
NO_PROXY = {"http": "", "https": ""}


def fabrikam(seed_name: str = "fabrikam") -> dict[str, Any]:
    """Another organisation than the example: Contoso's layout renamed, as a user might."""
    text = json.dumps(Organisation.from_seed().snapshot())
    data: dict[str, Any] = json.loads(
        text.replace("contoso", "fabrikam").replace("Contoso", "Fabrikam")
    )
    data["seed"] = seed_name
    return data


def organisation_of(path: Path) -> dict[str, str]:
    organisation: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))["organisation"]
    return organisation


def arrays_of(path: Path) -> list[str]:
    return sorted(a["fqdn"] for a in json.loads(path.read_text(encoding="utf-8"))["arrays"])


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """The example organisation, its lab state moved to a file the user wrote (Fabrikam)."""
    sites = tmp_path / "sites"
    shutil.copytree(EXAMPLE, sites)
    org_file = sites / "organisation.yaml"
    text = org_file.read_text(encoding="utf-8")
    state = tmp_path / "fabrikam-lab.json"
    text = text.replace("  # lab:                        # endpoint: lab only\n",
                        f"  lab:\n    state: {state}\n")
    assert f"state: {state}" in text
    org_file.write_text(text, encoding="utf-8")
    state.write_text(json.dumps(fabrikam(), indent=2), encoding="utf-8")
    return sites


def test_lab_reset_restores_the_users_own_organisation(
    directory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "fabrikam-lab.json"
    written = arrays_of(state)
    org = Organisation.from_file(state)  # the lab opens it (lab serve, plan, apply)
    call(org, NEW_BRANCH_ARRAY)
    assert "outlook-br.fabrikam.local" in arrays_of(state)

    assert main(["lab", "reset", str(directory)]) == 0
    out = capsys.readouterr().out
    assert f"reset to its seed: {state}" in out
    assert str(tmp_path / "fabrikam-lab.seed.json") in out
    assert organisation_of(state)["domain"] == "fabrikam.local"
    assert arrays_of(state) == written  # the change is gone, the organisation is not


def test_lab_reset_of_a_state_the_lab_never_opened_keeps_it(
    directory: Path, tmp_path: Path
) -> None:
    state = tmp_path / "fabrikam-lab.json"
    before = Organisation(fabrikam()).snapshot()
    assert main(["lab", "reset", str(directory)]) == 0
    assert Organisation.from_file(state).snapshot() == before


def test_a_missing_state_file_is_recreated_from_its_own_seed(
    directory: Path, tmp_path: Path
) -> None:
    state = tmp_path / "fabrikam-lab.json"
    Organisation.from_file(state)  # keeps the seed beside it
    state.unlink()
    assert main(["lab", "reset", str(directory)]) == 0
    assert organisation_of(state)["name"] == "Fabrikam"
    state.unlink()
    assert Organisation.from_file(state).netbios_domain == "FABRIKAM"


def test_an_unreadable_state_file_is_kept_not_overwritten(
    directory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "fabrikam-lab.json"
    Organisation.from_file(state)
    state.write_text('{"format": "casdesired-lab-state", "organisation": {', encoding="utf-8")
    assert main(["lab", "reset", str(directory)]) == 0
    kept = tmp_path / "fabrikam-lab.json.unreadable"
    assert f"kept as {kept}" in capsys.readouterr().out
    assert kept.read_text(encoding="utf-8").endswith('"organisation": {')
    assert organisation_of(state)["domain"] == "fabrikam.local"  # from its seed file


def test_an_unusable_seed_file_stops_the_reset_and_changes_nothing(
    directory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "fabrikam-lab.json"
    Organisation.from_file(state)
    seed = tmp_path / "fabrikam-lab.seed.json"
    seed.write_text("{not json", encoding="utf-8")
    before = state.read_text(encoding="utf-8")
    assert main(["lab", "reset", str(directory)]) == 1
    err = capsys.readouterr().err
    assert f"{seed}:1:2: " in err and "Traceback" not in err
    assert state.read_text(encoding="utf-8") == before


def test_a_copied_example_state_that_still_names_the_example_seed_is_kept(
    tmp_path: Path,
) -> None:
    # The user copied the example's state and changed the organisation, not the "seed" field.
    state = tmp_path / "lab.json"
    state.write_text(json.dumps(fabrikam(seed_name="contoso")), encoding="utf-8")
    org = Organisation.from_file(state)
    call(org, NEW_BRANCH_ARRAY)
    org.reset()
    assert org.snapshot()["organisation"]["name"] == "Fabrikam"
    assert "outlook-br.fabrikam.local" not in arrays_of(state)


def test_the_example_state_still_resets_to_the_example_seed(tmp_path: Path) -> None:
    state = tmp_path / "lab.json"
    org = Organisation.from_file(state)
    call(org, Invocation("new", "New-ClientAccessArray",
                         {"Fqdn": "outlook-br.contoso.local", "Site": "Branch"}, ("Guid",)))
    Organisation.from_file(state).reset()
    assert Organisation.from_file(state).snapshot() == Organisation.from_seed().snapshot()


def an_older_example(seed_file: Path, *, untouched: bool) -> None:
    """Make the example's seed file look as an older casdesired wrote it (one array fewer) --
    still an untouched copy of what that version shipped, or edited by a person."""
    data = json.loads(seed_file.read_text(encoding="utf-8"))
    data["arrays"] = [a for a in data["arrays"] if a["site"] != "DR"]
    if untouched:
        data[seeds.SHIPPED_MARK] = seeds.digest(data)
    seed_file.write_text(json.dumps(data), encoding="utf-8")


def test_an_upgrade_brings_the_new_example_seed_at_the_next_reset(tmp_path: Path) -> None:
    state = tmp_path / "lab.json"
    org = Organisation.from_file(state)
    assert org.seed_file is not None
    an_older_example(org.seed_file, untouched=True)
    Organisation.from_file(state).reset()
    assert Organisation.from_file(state).snapshot() == Organisation.from_seed().snapshot()
    assert "outlook-dr.contoso.local" in arrays_of(org.seed_file)  # it follows the shipped one


def test_a_seed_file_the_user_edited_is_what_a_reset_returns_to(tmp_path: Path) -> None:
    state = tmp_path / "lab.json"
    org = Organisation.from_file(state)
    assert org.seed_file is not None
    an_older_example(org.seed_file, untouched=False)
    Organisation.from_file(state).reset()
    assert "outlook-dr.contoso.local" not in arrays_of(state)
    assert "outlook-dr.contoso.local" not in arrays_of(org.seed_file)


def control(lab_url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    return requests.request(method, lab_url + path, json=body, timeout=10,
                            headers={"X-Lab-Token": token}, proxies=NO_PROXY)


def test_control_reset_after_loading_another_organisation_keeps_it() -> None:
    with Lab(Organisation.from_seed(), auth="ntlm") as lab:
        assert control(lab.control_url, lab.token, "PUT", "/state", fabrikam()).status_code == 200
        control(lab.control_url, lab.token, "PUT", "/dns", {"extra.fabrikam.local": ["10.9.9.9"]})
        answer = control(lab.control_url, lab.token, "POST", "/reset")
        assert answer.status_code == 200, answer.text
        now = control(lab.control_url, lab.token, "GET", "/state").json()
    assert now["organisation"]["domain"] == "fabrikam.local"
    assert "extra.fabrikam.local" not in now["dns_records"]


def test_lab_serve_of_a_users_organisation_resets_to_it_and_uses_its_domain(
    tmp_path: Path,
) -> None:
    state = tmp_path / "fabrikam-lab.json"
    state.write_text(json.dumps(fabrikam()), encoding="utf-8")
    with lab_serve("--state", str(state)) as served:
        fields = served.fields
        assert fields["username"] == "FABRIKAM\\casadmin"
        session = winrm.Session(fields["url"], auth=(fields["username"], fields["password"]),
                                transport="ntlm", proxy=None, ca_trust_path=None)
        assert session.run_cmd("hostname").status_code == 0
        match = re.fullmatch(r"(\S+)\s+\(header X-Lab-Token: (\S+)\)", fields["control"])
        assert match, fields["control"]
        url, token = match.groups()
        records = control(url, token, "GET", "/dns").json()
        control(url, token, "PUT", "/dns", {})
        answer = control(url, token, "POST", "/reset")
        assert answer.status_code == 200, answer.text
        assert control(url, token, "GET", "/dns").json() == records
    assert organisation_of(state)["name"] == "Fabrikam"
