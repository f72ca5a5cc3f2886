"""Renaming an array with dns.management: the new name resolves before the array takes it, and
the old name goes afterwards only when it is provably this array's.

Through the real CLI against the embedded lab and a real BIND 9 (TSIG-signed updates). Each
test uses names no other test touches, so the session's BIND stays shared safely.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from bind import ZONE, BindServer

from casdesired.cli import main
from casdesired.dns import (
    DnsLookupError,
    TsigConfig,
    apply_record_change,
    record_change,
    resolve_a,
)
from casdesired.lab.exchange.organisation import Organisation

SITES = Path(__file__).resolve().parents[2] / "sites"
SECRET_ENV = "CASDESIRED_TEST_TSIG_SECRET"  # the variable's name, not a secret
HQ_VIP = "10.1.0.50"


def managed(bind: BindServer) -> str:
    return (
        "dns:\n"
        f"  resolvers: ['{bind.address}']\n"
        "  management:\n"
        f"    zone: {ZONE}\n"
        f"    server: '{bind.address}'\n"
        f"    key_name: {bind.key_name}\n"
        f"    algorithm: {bind.key_algorithm}\n"
        f"    secret_env: {SECRET_ENV}\n"
        "    ttl: 120\n"
    )


def set_record(bind: BindServer, name: str, addresses: tuple[str, ...]) -> None:
    tsig = TsigConfig(
        key_name=bind.key_name,
        algorithm=bind.key_algorithm,
        secret_env=SECRET_ENV,
        server=bind.address,
        zone=ZONE,
    )
    change = record_change("create", name, ZONE, (), addresses, 300, management=tsig)
    apply_record_change(change, environ={SECRET_ENV: bind.key_secret})


def renamed(tmp_path: Path, bind: BindServer, old: str, new: str) -> Path:
    """The example organisation, HQ's live array at ``old``, the YAML renaming it to ``new``."""
    org = tmp_path / "org"
    shutil.copytree(SITES, org)
    path = org / "organisation.yaml"
    text = path.read_text("utf-8")
    text = text.replace("connection:\n", f"connection:\n  lab: {{state: {tmp_path}/lab.json}}\n")
    head, _, _ = text.partition("\ndns:\n")
    _, _, policy = text.partition("\npolicy:\n")
    path.write_text(f"{head}\n{managed(bind)}\npolicy:\n{policy}", "utf-8")
    hq = org / "hq.yaml"
    hq.write_text(
        hq.read_text("utf-8").replace("fqdn: outlook-hq.contoso.local", f"fqdn: {new}"), "utf-8"
    )
    lab = Organisation.from_file(tmp_path / "lab.json")
    state = lab.snapshot()
    [array] = [a for a in state["arrays"] if a["site"] == "HQ"]
    array["fqdn"] = old
    for db in state["databases"]:
        if db["rpc_client_access_server"]["kind"] == "array" and db["name"].startswith("HQ-"):
            db["rpc_client_access_server"]["shown"] = old
    lab.load(state)
    return org


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def fresh() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"old-hq-{tag}.{ZONE}", f"new-hq-{tag}.{ZONE}"


def test_new_name_first_rename_then_bindings_then_old_name_deleted(
    bind_server: BindServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, bind_server.key_secret)
    old, new = fresh()
    set_record(bind_server, old, (HQ_VIP,))
    org = renamed(tmp_path, bind_server, old, new)
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--site", "HQ")
    assert code == 0, err
    document = json.loads(out)
    order = [(c["kind"], c["identity"]) for c in document["changes"]]
    create = order.index(("dns_record_create", new))
    update = order.index(("array_update", old))
    delete = order.index(("dns_record_delete", old))
    bindings = [i for i, (kind, _) in enumerate(order) if kind == "binding"]
    # The name resolves before the array (and the databases that follow it) takes it; the old
    # name goes only after the rename and every rebinding.
    assert create < update < min(bindings) and max(bindings) < delete
    assert document["changes"][delete]["before"] == {"A": [HQ_VIP]}
    [note] = [n for n in document["dns"] if n["name"] == new]
    assert note["fixed_by_plan"] and not note["blocks_apply"]

    audit = ["--audit-log", str(tmp_path / "audit.jsonl")]
    code, out, err = run(capsys, "apply", str(org), "--auto-approve", "--site", "HQ", *audit)
    assert code == 1 and "deletes need --force" in err  # the old name's delete is a delete
    code, out, err = run(
        capsys, "apply", str(org), "--auto-approve", "--site", "HQ", "--force", *audit
    )
    assert code == 0, out + err
    applied = [line.strip() for line in out.splitlines() if line.strip().startswith("applied:")]
    ran = [line.split(":", 1)[1].strip().split(" (")[0] for line in applied]
    assert ran.index(f"create DNS A record {new} -> {HQ_VIP}, TTL 120") < ran.index(
        f"update CAS array {old}: FQDN {old} -> {new}"
    )
    assert ran[-1] == f"delete DNS A record {old}"
    assert resolve_a(new, resolvers=[bind_server.address]) == {HQ_VIP}
    with pytest.raises(DnsLookupError):
        resolve_a(old, resolvers=[bind_server.address])


def test_old_name_pointing_elsewhere_is_kept_and_noted(
    bind_server: BindServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, bind_server.key_secret)
    old, new = fresh()
    set_record(bind_server, old, ("10.1.0.77",))  # someone else's now
    org = renamed(tmp_path, bind_server, old, new)
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--site", "HQ")
    assert code == 0, err
    document = json.loads(out)
    kinds = [(c["kind"], c["identity"]) for c in document["changes"]]
    assert ("dns_record_create", new) in kinds
    assert not [k for k in kinds if k[0] == "dns_record_delete"]
    [kept] = [n for n in document["dns"] if n["name"] == old]
    assert kept["rule"] == "dns-old-name-kept" and kept["severity"] == "warning"
    assert "10.1.0.77" in kept["message"] and HQ_VIP in kept["message"]
    assert not kept["blocks_apply"]
    _, text, _ = run(capsys, "plan", str(org), "--site", "HQ")
    assert "[dns-old-name-kept]" in text
