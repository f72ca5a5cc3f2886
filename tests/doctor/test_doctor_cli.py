"""``casdesired doctor`` end to end: the example passes, nothing changes, one execution, every
format, the schema, and no secret in any output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from apply.labenv import ROOT, SECRET, SITES, Env, cli
from jsonschema import Draft202012Validator
from markdown_it import MarkdownIt

from casdesired.agent import protocol
from casdesired.lab.faults import CmdletFault
from doctor.helpers import Doctor, find, statuses

SCHEMA = json.loads((ROOT / "schemas" / "doctor.schema.json").read_text("utf-8"))
TSIG_SECRET = "c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ1Ng=="
EXPECTED_SKIPPED = {
    "connection.tls": "the endpoint is http://",
    "dns.external": "no dns.external_resolvers configured",
    "dns.tsig": "dns.management is not configured",
}


def test_the_example_against_the_embedded_lab_passes_every_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    shutil.copytree(SITES, tmp_path / "sites")
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "doctor", "sites/", "--format", "json")
    report = json.loads(out)
    assert code == 0, out
    assert report["endpoint"].startswith("lab (http://127.0.0.1:")
    assert report["executions"] == 1
    skipped = {c["id"]: c["evidence"][0] for c in report["checks"] if c["status"] == "SKIPPED"}
    assert {c["status"] for c in report["checks"]} == {"PASS", "SKIPPED"}, statuses(report)
    assert set(skipped) == set(EXPECTED_SKIPPED)
    for check_id, why in EXPECTED_SKIPPED.items():
        assert why in skipped[check_id]
    # Every family is there, every site's array, every NLB array and its nodes.
    assert {c["family"] for c in report["checks"]} == {
        "connection", "host", "winrm", "exchange", "nlb", "lock", "dns", "ports", "clock"
    }
    assert {c["subject"] for c in report["checks"] if c["id"] == "ports.static-rpc"} == {
        "HQ", "DR", "Branch"
    }
    assert {c["subject"] for c in report["checks"] if c["id"] == "nlb.nodes"} == {"HQ", "Branch"}
    # The text form says the same, and exits the same.
    code, text, _ = cli(capsys, "doctor", "sites/")
    assert code == 0
    assert "1 command execution on the endpoint; nothing was changed." in text
    assert text.rstrip().endswith(
        f"Summary: {report['summary']['pass']} PASS, 0 WARN, 0 FAIL, {len(skipped)} SKIPPED"
    )


def test_the_first_step_an_organisation_file_alone_fails_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # README's first step: doctor on a directory holding only organisation.yaml. No array or
    # server is declared; the resolver is asked for a host the read saw, not the org's name.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / "only").mkdir()
    shutil.copy(SITES / "organisation.yaml", tmp_path / "only")
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "doctor", "only/", "--format", "json")
    report = json.loads(out)
    assert code == 0, statuses(report)
    resolver = find(report, "dns.resolver")
    assert resolver["status"] == "PASS"
    assert re.match(r"\S+\.contoso\.local resolves to 10\.", resolver["evidence"][0])


def test_doctor_changes_nothing_and_runs_one_command_with_read_cmdlets_only(
    doctor: Doctor, env: Env
) -> None:
    before = env.organisation.snapshot()
    env.lab.journal.clear()
    code, report, _ = doctor.run()
    assert code == 0, statuses(report)
    after = env.organisation.snapshot()
    # The one trace: Exchange's admin audit log records the session's Set-AdServerSettings, as
    # it does for every casdesired run (and every Exchange Management Shell).
    logged = after["admin_audit_log"].pop("entries")
    before["admin_audit_log"].pop("entries")
    assert after == before
    assert {e["cmdlet"] for e in logged} == {"Set-AdServerSettings"}
    assert len(env.lab.journal.entries(["command"])) == 1
    ran = {str(e["cmdlet"]) for e in env.lab.journal.entries(["cmdlet"])}
    # The agent's own session setup (Get-ExchangeServer for the version, the recipient scope)
    # and the read allow-list: no write, no lock taken.
    assert ran - {"Set-AdServerSettings"} <= set(protocol.READ_CMDLETS)
    assert "Get-CasdesiredStaticPort" in ran and "Get-NlbClusterNode" in ran
    assert not env.lab.journal.entries(["fence"])
    assert env.organisation.exchange_sessions() == 0 and env.lab.open_shells == 0


def test_the_json_report_validates_against_its_schema_passing_and_failing(
    doctor: Doctor, env: Env
) -> None:
    validator = Draft202012Validator(SCHEMA)
    Draft202012Validator.check_schema(SCHEMA)
    _, passing, _ = doctor.run()
    assert list(validator.iter_errors(passing)) == []
    env.organisation.configure(host_powershell_version="3.0", host_clock_skew_seconds=900.0)
    env.lab.limits.update({"MaxShellsPerUser": 1})
    code, failing, _ = doctor.run()
    assert code == 1 and failing["summary"]["fail"] >= 3
    assert list(validator.iter_errors(failing)) == []
    # And the schema is not a rubber stamp: a FAIL without a remedy is refused.
    broken = json.loads(json.dumps(failing))
    next(c for c in broken["checks"] if c["status"] == "FAIL")["remedy"] = None
    assert list(validator.iter_errors(broken))


def test_markdown_is_one_table_and_the_remedies_of_what_to_change(
    doctor: Doctor, env: Env
) -> None:
    env.organisation.configure(host_powershell_version="3.0")
    code, text, _ = doctor.run(fmt="markdown")
    assert code == 1
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows = [t for t in tokens if t.type == "tr_open"]
    _, report, _ = doctor.run()
    assert len(rows) == len(report["checks"]) + 1  # the header row
    assert "#### What to change" in text
    assert "Uninstall Windows Management Framework 3.0" in text


def test_a_hostile_value_from_the_host_renders_as_plain_text(doctor: Doctor, env: Env) -> None:
    env.organisation.configure(host_os="Windows | <b>bold</b> @team [x](http://evil) \x1b[31m")
    _, text, _ = doctor.run(fmt="text")
    assert "\x1b" not in text and "\\x1b[31m" in text
    _, markdown, _ = doctor.run(fmt="markdown")
    assert not re.search(r"(?<!\\)<b>", markdown) and "\\<b>bold\\</b>" in markdown
    assert "@\u200bteam" in markdown and "\\[x\\](http://evil)" in markdown


def test_no_password_or_tsig_secret_appears_in_any_output(
    doctor: Doctor, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    yaml_path = env.org_dir / "organisation.yaml"
    text = yaml_path.read_text()
    # The lab's DNS server as the zone's primary: it takes no TSIG, so the check fails fast.
    resolver = re.search(r"resolvers: \[([0-9.:]+)\]", text).group(1)  # type: ignore[union-attr]
    yaml_path.write_text(text.replace("  external_resolvers: []", f"""  external_resolvers: []
  management:
    zone: contoso.local
    server: {resolver}
    key_name: casdesired
    algorithm: hmac-sha256
    secret_env: CASDESIRED_TSIG_SECRET"""))
    monkeypatch.setenv("CASDESIRED_TSIG_SECRET", TSIG_SECRET)
    outputs = []
    for fmt in ("text", "json", "markdown"):
        _, out, err = doctor.run(fmt=fmt)
        outputs.append(json.dumps(out) + err)
    _, report, _ = doctor.run()
    assert find(report, "dns.tsig")["status"] == "FAIL"
    # A host whose error quotes the password: doctor quotes the error, masked.
    env.lab.faults.cmdlets.append(CmdletFault(
        "Get-Mailbox", message=f"Logon failure for CONTOSO\\casadmin ({SECRET})"))
    for fmt in ("text", "json", "markdown"):
        _, out, err = doctor.run(fmt=fmt)
        outputs.append(json.dumps(out) + err)
    _, quoted, _ = doctor.run()
    assert any("Logon failure for CONTOSO\\casadmin (***)" in e
               for e in find(quoted, "exchange.read")["evidence"])
    # A wrong password: the service's refusal is reported, the password is not.
    monkeypatch.setenv("CASDESIRED_PASSWORD", SECRET + "-wrong")
    for fmt in ("text", "json", "markdown"):
        _, out, err = doctor.run(fmt=fmt)
        outputs.append(json.dumps(out) + err)
    for output in outputs:
        assert SECRET not in output and TSIG_SECRET not in output
        assert "c2VjcmV0LXRza" not in output


def test_invalid_desired_state_is_refused_like_plan_with_exit_1(
    doctor: Doctor, env: Env
) -> None:
    (env.org_dir / "hq.yaml").write_text("casdesired: 1\nkind: site\nsite: [\n")
    code, out, err = doctor.run()
    assert code == 1 and out == ""
    assert "hq.yaml:4:1" in err and "doctor needs a valid organisation file" in err


def test_doctor_help_ends_with_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli(capsys, "doctor", "--help")
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "exit codes:" in out and "a check failed" in out and "--format" in out
