"""The lab's state file: round trip, readable form, reset, bad files, and kill -9 safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from casdesired.agent.protocol import Invocation
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.errors import LabStateError
from casdesired.lab.exchange.testing import call

NEW_BRANCH_ARRAY = Invocation("new", "New-ClientAccessArray",
                              {"Fqdn": "outlook-br.contoso.local", "Site": "Branch"}, ("Guid",))


def test_missing_file_is_created_from_the_seed_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    org = Organisation.from_file(path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data == org.snapshot() == Organisation.from_seed().snapshot()
    assert org.hostname == "HQ-CAS01"


def test_every_change_is_saved_and_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    org = Organisation.from_file(path)
    (created,) = call(org, NEW_BRANCH_ARRAY).results
    reloaded = Organisation.from_file(path)
    assert reloaded.snapshot() == org.snapshot()
    (found,) = call(reloaded, Invocation("get", "Get-ClientAccessArray",
                                         {"Identity": created.objects[0]["Guid"]},
                                         ("Fqdn",))).results
    assert found.objects == ({"Fqdn": "outlook-br.contoso.local"},)


def test_guids_are_seeded_and_never_repeat_after_a_reload(tmp_path: Path) -> None:
    first = call(Organisation.from_seed(seed=7), NEW_BRANCH_ARRAY).results[0].objects[0]["Guid"]
    again = call(Organisation.from_seed(seed=7), NEW_BRANCH_ARRAY).results[0].objects[0]["Guid"]
    other = call(Organisation.from_seed(seed=8), NEW_BRANCH_ARRAY).results[0].objects[0]["Guid"]
    assert first == again != other
    path = tmp_path / "lab.json"
    org = Organisation.from_file(path)
    call(org, NEW_BRANCH_ARRAY)
    call(org, Invocation("rm", "Remove-ClientAccessArray",
                         {"Identity": "outlook-br.contoso.local", "Confirm": False}))
    guid_a = call(org, NEW_BRANCH_ARRAY).results[0].objects[0]["Guid"]
    call(org, Invocation("rm", "Remove-ClientAccessArray",
                         {"Identity": "outlook-br.contoso.local", "Confirm": False}))
    guid_b = call(Organisation.from_file(path), NEW_BRANCH_ARRAY).results[0].objects[0]["Guid"]
    assert guid_a != guid_b


def test_reset_returns_to_the_seed_and_saves(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    org = Organisation.from_file(path)
    call(org, NEW_BRANCH_ARRAY)
    assert "outlook-br.contoso.local" in path.read_text(encoding="utf-8")
    org.reset()
    assert org.snapshot() == Organisation.from_seed().snapshot()
    assert "outlook-br.contoso.local" not in path.read_text(encoding="utf-8")


def test_load_validates_before_replacing(tmp_path: Path) -> None:
    org = Organisation.from_seed()
    before = org.snapshot()
    broken = org.snapshot()
    broken["databases"][0]["server"] = "NO-SUCH-SERVER"
    with pytest.raises(LabStateError, match="unknown server 'NO-SUCH-SERVER'"):
        org.load(broken)
    assert org.snapshot() == before


@pytest.mark.parametrize(("content", "message"), [
    ('{"format": "casdesired-lab-state",\n  "version": 1,,}', r"lab\.json:2:16: "),
    ('[1, 2]', "must hold a JSON object"),
    ('{"format": "casdesired-lab-state", "version": 99}', "version 99 is not supported"),
    ('{"format": "something-else"}', "not a casdesired-lab-state document"),
])
def test_bad_state_files_give_one_clear_error(tmp_path: Path, content: str,
                                              message: str) -> None:
    path = tmp_path / "lab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabStateError, match=message):
        Organisation.from_file(path)


def test_add_databases_binds_like_exchange() -> None:
    # (How fast this is belongs to bench/plan_bench.py, not to a unit test.)
    org = Organisation.from_seed()
    org.add_databases(10_000, "HQ", "BENCH-DB")
    (groups,) = call(org, Invocation("g", "Get-MailboxDatabase", {},
                                     group_by="RpcClientAccessServer")).results
    assert groups.groups is not None
    assert groups.groups["outlook-hq.contoso.local"] == 10_004
    org.add_databases(2, "Branch", "BR-NEW")  # no array in Branch: bound to its CAS
    (br,) = call(org, Invocation("1", "Get-MailboxDatabase", {"Identity": "BR-NEW01"},
                                 ("RpcClientAccessServer", "Server"))).results
    assert br.objects == ({"RpcClientAccessServer": "br-cas01.contoso.local",
                           "Server": "BR-CAS01"},)


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from casdesired.lab.exchange import Organisation
    org = Organisation.from_file(Path(sys.argv[1]))
    org.add_databases(3000, "HQ", "BIG-DB")  # about 1 MB: each write takes tens of ms
    n = 0
    while True:
        n += 1
        org.configure(nlb_drain_seconds=n)  # every call rewrites the whole file
        print(f"wrote {n}", flush=True)
""")


def test_kill_9_during_writes_never_leaves_a_half_written_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed_mid_write = 0
    for round_ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline().strip()
            assert first == "wrote 1", first
            time.sleep(0.007 * round_)  # land at different points of later writes
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        killed_mid_write += bool(leftovers)
        snapshot = Organisation.from_file(path).snapshot()  # parses and validates it all
        assert len(snapshot["databases"]) == 12 + 3000
        assert snapshot["settings"]["nlb_drain_seconds"] >= 1
        for leftover in leftovers:
            leftover.unlink()
        path.unlink()
    # The kills really landed inside writes (a temp file was left behind), not between them.
    assert killed_mid_write >= 1
