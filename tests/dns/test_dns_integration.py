"""DNS through the real CLI: validate --online, plan (every format) and apply, against the
embedded lab's DNS server and against a real BIND 9 with TSIG-signed updates.

Every resolver here is on loopback: the lab's DNS server or the test BIND.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
from bind import BindServer
from jsonschema import Draft202012Validator

from casdesired.cli import main
from casdesired.dns import resolve_a
from casdesired.lab.exchange.organisation import Organisation
from casdesired.plan.plan import Plan

SITES = Path(__file__).resolve().parents[2] / "sites"
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text("utf-8")
)
SECRET_ENV = "CASDESIRED_TEST_TSIG_SECRET"  # the variable's name, not a secret


def make_org(tmp_path: Path, dns_block: str, *, branch_fqdn: str | None = None) -> Path:
    """The example organisation, its lab state in tmp_path, with this ``dns:`` block."""
    org = tmp_path / "org"
    shutil.copytree(SITES, org)
    path = org / "organisation.yaml"
    text = path.read_text("utf-8")
    text = text.replace("connection:\n", f"connection:\n  lab: {{state: {tmp_path}/lab.json}}\n")
    text, count = re.subn(r"\ndns:\n(?:  .*\n)+", "\n" + dns_block, text)
    assert count == 1
    path.write_text(text, "utf-8")
    if branch_fqdn is not None:
        branch = org / "branch.yaml"
        branch.write_text(
            branch.read_text("utf-8").replace("outlook-branch.contoso.local", branch_fqdn),
            "utf-8",
        )
    return org


def lab_records(tmp_path: Path, **changes: list[str]) -> None:
    """Change A records in the lab's DNS (the state file the embedded lab starts from)."""
    org = Organisation.from_file(tmp_path / "lab.json")
    org.set_dns_records({**org.dns_records(), **changes})


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


LAB_DNS = "dns:\n  resolvers: [lab]\n"


# --- validate --online -------------------------------------------------------------------------


def test_validate_online_against_the_lab_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = make_org(tmp_path, LAB_DNS)
    code, out, err = run(capsys, "validate", "--online", str(org))
    assert code == 0, out + err
    assert "error" not in out and "0 errors" in err


def test_validate_online_locates_a_wrong_record_at_the_array(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = make_org(tmp_path, LAB_DNS)
    lab_records(tmp_path, **{"outlook-hq.contoso.local": ["10.1.0.11"]})
    code, out, _err = run(capsys, "validate", "--online", str(org))
    assert code == 1
    line = next(x for x in out.splitlines() if "outlook-hq" in x)
    assert re.fullmatch(
        rf"{re.escape(str(org / 'hq.yaml'))}:20:3: error: outlook-hq\.contoso\.local resolves to "
        r"10\.1\.0\.11 \(10\.1\.0\.11 is server hq-cas01\.contoso\.local\) instead of only its "
        r"load balancer VIP 10\.1\.0\.50 \(DNS server 127\.0\.0\.1:\d+\); .*",
        line,
    ), line
    code, out, _err = run(capsys, "validate", "--online", "--format", "json", str(org))
    document = json.loads(out)
    assert code == 1 and not document["ok"]
    [found] = [d for d in document["diagnostics"] if d["rule"] == "dns-array-resolves-to-server"]
    assert found["severity"] == "error" and found["line"] == 20


def test_validate_online_against_real_bind(
    bind_server: BindServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = make_org(tmp_path, f"dns:\n  resolvers: ['{bind_server.address}']\n")
    code, out, _err = run(capsys, "validate", "--online", "--format", "json", str(org))
    assert code == 1
    # BIND's contoso.local: outlook-dr points at the server dr-cas01, outlook-branch and
    # dr-cas02 do not exist; outlook-hq and the other servers are right.
    rules = {
        (d["rule"], d["message"].split()[0])
        for d in json.loads(out)["diagnostics"]
        if d["rule"].startswith("dns-")
    }
    assert rules == {
        ("dns-array-resolves-to-server", "outlook-dr.contoso.local"),
        ("dns-array-nxdomain", "outlook-branch.contoso.local"),
        ("dns-server-unresolved", "CAS"),
    }
    text_code, text, _ = run(capsys, "validate", "--online", str(org))
    assert text_code == 1
    assert "dr-cas02.contoso.local does not exist (NXDOMAIN" in text
    assert f"{org / 'dr.yaml'}:9:5: error: CAS server dr-cas02" in text


def test_lab_resolver_needs_the_lab_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = make_org(tmp_path, LAB_DNS)
    path = org / "organisation.yaml"
    path.write_text(
        path.read_text("utf-8").replace(
            "endpoint: lab", "endpoint: https://ex01.contoso.local:5986/wsman"
        ),
        "utf-8",
    )
    code, out, _ = run(capsys, "validate", str(org))
    assert code == 1
    lines = path.read_text("utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.strip().startswith("resolvers:"))
    assert (
        f"{path}:{line}:15: error: dns.resolvers[0] 'lab' means the embedded lab's DNS server, "
        "and it needs connection.endpoint: lab" in out
    )


# --- plan --------------------------------------------------------------------------------------


def test_the_example_plan_is_unchanged_and_has_no_dns_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = make_org(tmp_path, LAB_DNS)
    code, out, err = run(capsys, "plan", "--format", "json", str(org))
    assert code == 0, err
    document = json.loads(out)
    Draft202012Validator(SCHEMA).validate(document)
    assert document["dns"] == []
    # 561 in the root domain and 12 of HQ-DB05's in the child domain (the whole forest).
    assert document["summary"] == (
        "Plan: 2 to create, 6 to change, 0 to destroy; 573 mailboxes affected"
    )
    assert not any(c["kind"].startswith("dns_") for c in document["changes"])
    code, text, _ = run(capsys, "plan", str(org))
    assert code == 0 and "DNS" not in text


WRONG = (
    r"outlook-branch\.contoso\.local resolves to 10\.2\.0\.99, expected only its VIP "
    r"10\.2\.0\.50 \(DNS server 127\.0\.0\.1:\d+\)"
)


def test_a_wrong_record_shows_in_every_format_and_blocks_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = make_org(tmp_path, LAB_DNS)
    lab_records(tmp_path, **{"outlook-branch.contoso.local": ["10.2.0.99"]})
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--out",
                         str(tmp_path / "plan.json"))
    assert code == 0  # the plan is made; it is apply that refuses
    assert "1 DNS finding(s) block apply (fix DNS, or apply with --force)" in err
    document = json.loads(out)
    Draft202012Validator(SCHEMA).validate(document)
    [note] = document["dns"]
    assert note["blocks_apply"] and note["rule"] == "dns-array-wrong-address"
    assert re.fullmatch(WRONG, note["message"])
    assert note["location"] == f"{org / 'branch.yaml'}:13:3" and note["site"] == "Branch"
    assert document["summary"].endswith("; 1 DNS finding(s) block apply")
    assert Plan.load(tmp_path / "plan.json").dns_blocking_apply[0].message == note["message"]
    _, text, _ = run(capsys, "plan", str(org))
    assert re.search(r"BLOCKS APPLY \(unless --force\) \[dns-array-wrong-address\] .*" + WRONG,
                     text)
    _, markdown, _ = run(capsys, "plan", "--format", "markdown", str(org))
    assert "#### DNS" in markdown and "**BLOCKS APPLY (unless --force)**" in markdown
    # apply refuses before any write, naming the name, what it resolves to and the VIP
    audit = ["--audit-log", str(tmp_path / "audit.jsonl")]
    code, _, err = run(capsys, "apply", str(org), "--auto-approve", "--site", "Branch", *audit)
    assert code == 1
    assert "refusing to point databases at arrays whose names do not resolve to their VIP" in err
    assert re.search(WRONG, err)
    assert "outlook-branch.contoso.local" not in json.dumps(
        Organisation.from_file(tmp_path / "lab.json").snapshot()["arrays"]
    )  # nothing was written
    code, out, err = run(capsys, "apply", str(org), "--auto-approve", "--site", "Branch",
                         "--force", *audit)
    assert code == 0, out + err


def test_the_dns_gate_is_listed_as_needing_force_identically_in_every_format_and_in_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def same(text: str) -> str:  # each run's embedded lab serves DNS on a port of its own
        return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)

    org = make_org(tmp_path, LAB_DNS)
    lab_records(tmp_path, **{"outlook-branch.contoso.local": ["10.2.0.99"]})
    _, out, _ = run(capsys, "plan", "--format", "json", str(org), "--site", "Branch")
    [gate] = [same(r) for r in json.loads(out)["needs_force"] if r.startswith("DNS gate: ")]
    assert re.search(WRONG, gate.replace("PORT", "53"))
    _, text, _ = run(capsys, "plan", str(org), "--site", "Branch")
    assert f"! needs --force: {gate}\n" in same(text)
    _, markdown, _ = run(capsys, "plan", "--format", "markdown", str(org), "--site", "Branch")
    safety = markdown.split("#### Safety decisions")[1].split("####")[0]
    assert "**needs `--force`**: DNS gate: refusing to point databases at arrays" in safety
    assert "outlook-branch.contoso.local resolves to 10.2.0.99" in safety
    audit = ["--audit-log", str(tmp_path / "audit.jsonl")]
    code, _, err = run(capsys, "apply", str(org), "--auto-approve", "--site", "Branch", *audit)
    assert code == 1 and gate in same(err)  # apply refuses with the reason the plan listed


def test_a_server_address_for_an_array_untouched_by_the_plan_does_not_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = make_org(tmp_path, LAB_DNS)
    lab_records(tmp_path, **{"outlook-dr.contoso.local": ["10.3.0.11"]})
    code, out, err = run(capsys, "plan", "--format", "json", str(org))
    assert code == 0, err
    [note] = json.loads(out)["dns"]
    assert note["rule"] == "dns-array-resolves-to-server" and not note["blocks_apply"]
    assert "block apply" not in err


# --- management against a real BIND -----------------------------------------------------------


def managed(bind_server: BindServer) -> str:
    return (
        "dns:\n"
        f"  resolvers: ['{bind_server.address}']\n"
        "  management:\n"
        "    zone: contoso.local\n"
        f"    server: '{bind_server.address}'\n"
        f"    key_name: {bind_server.key_name}\n"
        f"    algorithm: {bind_server.key_algorithm}\n"
        f"    secret_env: {SECRET_ENV}\n"
        "    ttl: 120\n"
    )


def test_a_plan_for_a_new_array_shows_the_dns_record_and_apply_creates_it_first(
    bind_server: BindServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fqdn = f"outlook-br-{uuid.uuid4().hex[:8]}.contoso.local"  # new in the lab and in BIND
    org = make_org(tmp_path, managed(bind_server), branch_fqdn=fqdn)
    monkeypatch.setenv(SECRET_ENV, bind_server.key_secret)
    saved = tmp_path / "plan.json"
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--site", "Branch",
                         "--out", str(saved))
    assert code == 0, err
    document = json.loads(out)
    Draft202012Validator(SCHEMA).validate(document)
    kinds = [c["kind"] for c in document["changes"]]
    assert kinds == ["array_create", "dns_record_create", "binding", "binding", "binding"]
    record = document["changes"][1]
    assert record["identity"] == fqdn and record["after"] == {"A": ["10.2.0.50"], "ttl": 120}
    assert record["invocations"] == [] and record["data"]["secret_env"] == SECRET_ENV
    assert bind_server.key_secret not in out and bind_server.key_secret not in saved.read_text()
    [note] = document["dns"]  # BIND has no such name yet: found, but fixed by this plan
    assert note["rule"] == "dns-array-nxdomain" and note["fixed_by_plan"]
    assert not note["blocks_apply"]
    _, text, _ = run(capsys, "plan", str(org), "--site", "Branch")
    assert f"+ create DNS A record {fqdn} -> 10.2.0.50, TTL 120 (zone contoso.local at DNS " \
        f"server {bind_server.address})" in text
    _, markdown, _ = run(capsys, "plan", "--format", "markdown", str(org), "--site", "Branch")
    assert "create DNS A record" in markdown
    # apply the saved plan: the record first (verified through BIND), then the bindings
    code, out, err = run(capsys, "apply", str(saved), "--config", str(org), "--auto-approve",
                         "--audit-log", str(tmp_path / "audit.jsonl"),
                         "--rollback-out", str(tmp_path / "rollback.json"))
    assert code == 0, out + err
    applied = [line.strip() for line in out.splitlines() if line.strip().startswith("applied:")]
    assert applied[1].startswith(f"applied: create DNS A record {fqdn}")
    assert all("rebind database" in line for line in applied[2:])
    assert resolve_a(fqdn, resolvers=[bind_server.address]) == {"10.2.0.50"}
    assert bind_server.key_secret not in out + err
    # the next plan has nothing left, DNS included; the rollback deletes the record again
    code, out, err = run(capsys, "plan", "--format", "json", str(org), "--site", "Branch")
    assert code == 0 and json.loads(out)["changes"] == [] and json.loads(out)["dns"] == []
    rollback = Plan.load(tmp_path / "rollback.json")
    assert [c.kind for c in rollback.changes][-1] == "dns_record_delete"


def test_apply_stops_at_a_refused_dns_update_before_any_binding(
    bind_server: BindServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fqdn = f"outlook-br-{uuid.uuid4().hex[:8]}.contoso.local"
    org = make_org(tmp_path, managed(bind_server), branch_fqdn=fqdn)
    monkeypatch.setenv(SECRET_ENV, "d3Jvbmcgc2VjcmV0IGZvciB0ZXN0cw==")  # not the key's secret
    code, out, _err = run(capsys, "apply", str(org), "--auto-approve", "--site", "Branch",
                          "--audit-log", str(tmp_path / "audit.jsonl"))
    assert code == 1
    assert "BADSIG" in out and SECRET_ENV in out
    assert "not attempted: rebind database BR-DB01" in out
    state = Organisation.from_file(tmp_path / "lab.json").snapshot()
    assert all(
        db["rpc_client_access_server"]["shown"] == "br-cas01.contoso.local"
        for db in state["databases"] if db["name"].startswith("BR-")
    )
