"""The host and WinRM quota checks, each seen failing (or warning) on a lab host set up so."""

from __future__ import annotations

from typing import Any

import pytest
from apply.labenv import Env

from doctor.helpers import Doctor, find

HOST_CASES: list[tuple[dict[str, Any], str, str, str, str]] = [
    # (switches, check, status, evidence, remedy)
    ({"host_powershell_version": "3.0", "host_clr_version": "4.0.30319.18444"},
     "host.powershell", "FAIL", "WMF 3.0 is not supported next to Exchange 2010",
     "Uninstall Windows Management Framework 3.0"),
    ({"host_powershell_version": "5.1.14409.1005", "host_clr_version": "4.0.30319.42000"},
     "host.powershell", "WARN", "WMF 4.0 only from SP3 RU5", "SP3 RU5 or later"),
    ({"host_clr_version": "4.0.30319.1"},
     "host.clr", "FAIL", "PowerShell 2.0 on CLR 4.0.30319.1", "powershell.exe.config"),
    ({"host_os": "Microsoft Windows Server 2016 Standard", "host_os_version": "10.0.14393"},
     "host.windows", "WARN", "not a Windows that Exchange 2010 runs on",
     "Point connection.endpoint at an Exchange 2010 server"),
    ({"host_execution_policy_gpo": "AllSigned"},
     "host.execution-policy", "FAIL", "Group Policy (MachinePolicy=AllSigned) beats",
     "Turn on Script Execution"),
    ({"host_execution_policy_gpo": "RemoteSigned"},
     "host.execution-policy", "PASS", "Group Policy sets a policy that lets local scripts run",
     ""),
    ({"host_gzip_round_trip": False},
     "host.gzip", "FAIL", "GZipStream gave back other bytes", "repair it"),
]


@pytest.mark.parametrize(("switches", "check_id", "status", "evidence", "remedy"), HOST_CASES)
def test_a_host_unlike_exchange_2010s_is_reported_with_its_remedy(
    doctor: Doctor, env: Env, switches: dict[str, Any], check_id: str, status: str,
    evidence: str, remedy: str,
) -> None:
    env.organisation.configure(**switches)
    code, report, _ = doctor.run()
    found = find(report, check_id)
    assert found["status"] == status, found
    assert any(evidence in e for e in found["evidence"]), found["evidence"]
    assert remedy in (found["remedy"] or "")
    assert found["doc"].startswith("docs/first-contact.md#host-")
    assert code == (1 if status == "FAIL" else 0)


def test_a_group_policy_allsigned_refuses_the_exchange_sessions_generated_module(
    doctor: Doctor, env: Env
) -> None:
    env.organisation.configure(host_execution_policy_gpo="AllSigned")
    _, report, _ = doctor.run()
    session = find(report, "exchange.session")
    assert session["status"] == "FAIL"
    assert any("tmp_9f1b2c3d.q4e.psm1 is not digitally signed" in e
               for e in session["evidence"]), session["evidence"]
    # The rest of the host is still checked in the same run.
    assert find(report, "ports.static-rpc", "HQ")["status"] == "PASS"


def test_without_dotnet_35_the_serializer_fails_and_nothing_else_on_the_host_is_checked(
    doctor: Doctor, env: Env
) -> None:
    env.organisation.configure(host_dotnet35=False)
    code, report, _ = doctor.run()
    json_check = find(report, "host.json")
    assert code == 1 and json_check["status"] == "FAIL"
    assert "Could not load file or assembly 'System.Web.Extensions" in json_check["evidence"][0]
    assert "Add-WindowsFeature NET-Framework-Core" in json_check["remedy"]
    for check_id in ("host.powershell", "winrm.shells", "exchange.rbac", "ports.static-rpc"):
        for found in (c for c in report["checks"] if c["id"] == check_id):
            assert found["status"] == "SKIPPED"
            assert "see host.json" in found["evidence"][0]
    # The connection worked: the logon was accepted, the agent ran and said why it stopped.
    assert find(report, "connection.auth")["status"] == "PASS"


QUOTA_CASES: list[tuple[dict[str, int], str, str, str, str]] = [
    ({"MaxShellsPerUser": 1}, "winrm.shells", "FAIL", "MaxShellsPerUser is 1",
     'winrm set winrm/config/winrs @{MaxShellsPerUser="10"}'),
    ({"IdleTimeout": 60000}, "winrm.idle", "FAIL", "no longer than the 60 s a Receive may wait",
     '@{IdleTimeout="180000"}'),
    ({"IdleTimeout": 7200000}, "winrm.idle", "WARN", "counts against MaxShellsPerUser",
     '@{IdleTimeout="180000"}'),
    ({"MaxTimeoutms": 5000}, "winrm.timeout", "WARN", "more round trips",
     '@{MaxTimeoutms="60000"}'),
]


@pytest.mark.parametrize(("limits", "check_id", "status", "evidence", "remedy"), QUOTA_CASES)
def test_a_winrm_quota_below_what_casdesired_needs_is_reported_with_the_command(
    doctor: Doctor, env: Env, limits: dict[str, int], check_id: str, status: str,
    evidence: str, remedy: str,
) -> None:
    env.lab.limits.update(limits)
    code, report, _ = doctor.run()
    found = find(report, check_id)
    assert found["status"] == status, found
    assert any(evidence in e for e in found["evidence"]), found["evidence"]
    assert remedy in found["remedy"]
    assert code == (1 if status == "FAIL" else 0)


def test_the_memory_estimate_is_this_organisations_and_a_low_quota_fails_it(
    doctor: Doctor, env: Env
) -> None:
    _, report, _ = doctor.run()
    memory = find(report, "winrm.memory")
    assert memory["status"] == "PASS"
    estimate = next(e for e in memory["evidence"] if "is estimated at" in e)
    assert "12 databases, 8 servers, 2 arrays, 2 NLB clusters" in estimate
    peak = int(estimate.split("is estimated at ")[1].split(" MB")[0])
    # The same estimate grows with the organisation: 3,000 more databases.
    env.organisation.add_databases(3000, "HQ", "BIG-DB")
    _, bigger, _ = doctor.run()
    grown = next(e for e in find(bigger, "winrm.memory")["evidence"] if "estimated at" in e)
    assert "3012 databases" in grown
    assert int(grown.split("is estimated at ")[1].split(" MB")[0]) > peak
    # doctor's own run reads what plan reads and a little more (about 80 MB here), so it fits
    # a quota of 90; plan's read would leave less than a fifth of it: a warning, not a pass.
    env.lab.limits.update({"MaxMemoryPerShellMB": 90})
    code, tight, _ = doctor.run()
    warned = find(tight, "winrm.memory")
    assert code == 0 and warned["status"] == "WARN"
    assert any("over 80% of the quota" in e for e in warned["evidence"])
    assert '@{MaxMemoryPerShellMB="1024"}' in warned["remedy"]


def test_a_host_whose_quota_kills_the_run_fails_the_memory_check_with_the_command(
    doctor: Doctor, env: Env
) -> None:
    env.lab.limits.update({"MaxMemoryPerShellMB": 40})
    code, report, _ = doctor.run()
    memory = find(report, "winrm.memory")
    assert code == 1 and memory["status"] == "FAIL"
    assert "ran out of memory" in memory["evidence"][0]
    assert 'winrm set winrm/config/winrs @{MaxMemoryPerShellMB="1024"}' in memory["remedy"]
    assert "see winrm.memory" in find(report, "host.powershell")["evidence"][0]


def test_an_envelope_too_small_for_casdesireds_requests_fails(doctor: Doctor, env: Env) -> None:
    env.lab.limits.update({"MaxEnvelopeSizekb": 64})
    code, report, _ = doctor.run()
    envelope = find(report, "winrm.envelope")
    assert code == 1 and envelope["status"] == "FAIL"
    assert 'winrm set winrm/config @{MaxEnvelopeSizekb="500"}' in envelope["remedy"]


def _set_agent(env: Env, agent: str) -> None:
    """connection.agent as ``agent``; Receives of 1 s, so a hung start is seen at once."""
    path = env.org_dir / "organisation.yaml"
    text = path.read_text().replace("  credentials:", f"  agent: {agent}\n  credentials:", 1)
    path.write_text(text.replace("operation_seconds: 120", "operation_seconds: 1"))


@pytest.mark.parametrize("reading", ["hangs", "empty"])
def test_a_stdin_powershell_20_cannot_read_fails_the_delivery_and_names_the_file_one(
    doctor: Doctor, env: Env, reading: str
) -> None:
    env.organisation.configure(powershell_stdin=reading)
    _set_agent(env, "{delivery: stdin, start_timeout_seconds: 2}")
    code, report, _ = doctor.run()
    delivery = find(report, "host.delivery")
    assert code == 1 and delivery["status"] == "FAIL"
    assert delivery["evidence"][0].startswith("stdin: ")
    assert "connection.agent.delivery: file" in delivery["remedy"]
    assert "see host.delivery" in find(report, "winrm.memory")["evidence"][0]
    assert env.lab.open_shells == 0


def test_the_file_delivery_passes_the_same_echo(doctor: Doctor, env: Env) -> None:
    env.organisation.configure(powershell_stdin="hangs")
    _set_agent(env, "{delivery: file}")
    code, report, _ = doctor.run()
    delivery = find(report, "host.delivery")
    assert code == 0, [c for c in report["checks"] if c["status"] == "FAIL"]
    assert delivery["status"] == "PASS" and delivery["evidence"][0].startswith("file: ")
    assert report["executions"] == 1
