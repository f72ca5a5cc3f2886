"""Renaming an in-use array moves its databases to the new name at once: the DNS gate counts it.

Through the real CLI against the embedded lab and its DNS server (loopback only).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from casdesired.cli import main
from casdesired.lab.exchange.organisation import Organisation

SITES = Path(__file__).resolve().parents[2] / "sites"


def renamed_org(tmp_path: Path) -> Path:
    """The example organisation with HQ's array renamed and only HQ-DB01/02 bound by HQ.

    HQ-DB01/02 already use the array, so no binding change names the new FQDN: only the rename
    moves them.
    """
    org = tmp_path / "org"
    shutil.copytree(SITES, org)
    path = org / "organisation.yaml"
    text = path.read_text("utf-8")
    path.write_text(
        text.replace("connection:\n", f"connection:\n  lab: {{state: {tmp_path}/lab.json}}\n"),
        "utf-8",
    )
    hq = org / "hq.yaml"
    text = hq.read_text("utf-8")
    assert "fqdn: outlook-hq.contoso.local" in text and '  patterns: ["HQ-DB0[3-6]"]\n' in text
    text = text.replace("fqdn: outlook-hq.contoso.local", "fqdn: rpc-hq.contoso.local")
    hq.write_text(text.replace('  patterns: ["HQ-DB0[3-6]"]\n', ""), "utf-8")
    return org


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_renaming_an_in_use_array_to_a_name_that_does_not_resolve_blocks_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = renamed_org(tmp_path)
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--site", "HQ")
    assert code == 0, err
    document = json.loads(out)
    kinds = [c["kind"] for c in document["changes"]]
    assert "array_update" in kinds and "binding" not in kinds
    [note] = [n for n in document["dns"] if n["name"] == "rpc-hq.contoso.local"]
    assert note["rule"] == "dns-array-nxdomain"
    assert note["blocks_apply"], "HQ-DB01/02 follow the array onto a name that does not exist"
    assert "1 DNS finding(s) block apply" in err
    _, text, _ = run(capsys, "plan", str(org), "--site", "HQ")
    assert "BLOCKS APPLY (unless --force) [dns-array-nxdomain]" in text

    audit = ["--audit-log", str(tmp_path / "audit.jsonl")]
    code, out, err = run(capsys, "apply", str(org), "--auto-approve", "--site", "HQ", *audit)
    assert code == 1, out + err
    assert "refusing to point databases at arrays whose names do not resolve to their VIP" in err
    assert "rpc-hq.contoso.local does not exist" in err
    arrays = Organisation.from_file(tmp_path / "lab.json").snapshot()["arrays"]
    assert "outlook-hq.contoso.local" in [a["fqdn"] for a in arrays]  # nothing was renamed
    assert "rpc-hq.contoso.local" not in json.dumps(arrays)


def test_a_rename_no_database_uses_does_not_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = renamed_org(tmp_path)
    lab = Organisation.from_file(tmp_path / "lab.json")
    state = lab.snapshot()
    for db in state["databases"]:
        if db["name"] in ("HQ-DB01", "HQ-DB02", "HQ-DB03", "HQ-DB04"):
            db["rpc_client_access_server"] = {
                "kind": "server", "shown": "hq-cas01.contoso.local", "target": "HQ-CAS01"
            }
    lab.load(state)
    hq = org / "hq.yaml"
    hq.write_text(
        hq.read_text("utf-8").replace("names: [HQ-DB01, HQ-DB02]", "names: []"), "utf-8"
    )
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--site", "HQ")
    assert code == 0, err
    document = json.loads(out)
    assert "array_update" in [c["kind"] for c in document["changes"]]
    [note] = [n for n in document["dns"] if n["name"] == "rpc-hq.contoso.local"]
    assert not note["blocks_apply"]  # no database moves with it
    assert "block apply" not in err
