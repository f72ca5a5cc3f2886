"""DNS record changes in apply: registered and renewed on the endpoint before they are written.

A DNS-only plan (the DR site: its array's A record points at a server instead of the VIP, and
nothing else in DR differs) against the loopback WinRM lab and a real BIND 9 that takes
TSIG-signed updates. BIND is this module's own (the DNS tests' shared one must keep its
records), started in well under a second.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apply.labenv import Env, cli
from casdesired.dns import resolve_a
from casdesired.plan.plan import Plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dns"))
from bind import BindServer, find_named, running_bind  # tests/dns is no package

SECRET_ENV = "CASDESIRED_A2_TSIG_SECRET"  # the variable's name, not a secret
DR_ARRAY = "outlook-dr.contoso.local"
DR_VIP = "10.3.0.50"
DR_SERVER = "10.3.0.11"  # what BIND's zone starts with: the server dr-cas01, not the VIP


@pytest.fixture(scope="module")
def bind_server() -> Iterator[BindServer]:
    named = find_named()
    if named is None:
        pytest.skip("BIND 9 (`named`) is not installed: apt-get install bind9")
    with running_bind(named) as server:
        yield server


@pytest.fixture
def managed(env: Env, bind_server: BindServer, monkeypatch: pytest.MonkeyPatch) -> Env:
    """The lab organisation with DNS managed in BIND (and BIND as its resolver)."""
    path = env.org_dir / "organisation.yaml"
    block = (
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
    text, count = re.subn(r"\ndns:\n(?:  .*\n)+", "\n" + block, path.read_text("utf-8"))
    assert count == 1
    path.write_text(text, "utf-8")
    monkeypatch.setenv(SECRET_ENV, bind_server.key_secret)
    _set_record(bind_server, [DR_SERVER])
    return env


def _set_record(bind_server: BindServer, addresses: list[str]) -> None:
    """Put outlook-dr back to ``addresses`` (BIND is shared by this module's tests)."""
    import dns.query
    import dns.tsigkeyring
    import dns.update

    keyring = dns.tsigkeyring.from_text({bind_server.key_name: bind_server.key_secret})
    update = dns.update.UpdateMessage(
        "contoso.local", keyring=keyring, keyalgorithm=bind_server.key_algorithm
    )
    update.replace("outlook-dr", 120, "A", *addresses)
    answer = dns.query.tcp(update, bind_server.host, port=bind_server.port, timeout=5)
    assert answer.rcode() == 0


def _dns_only_plan(env: Env, capsys: pytest.CaptureFixture[str]) -> Path:
    saved = env.tmp / "dr-plan.json"
    code, _out, err = cli(capsys, "plan", str(env.org_dir), "--site", "DR", "--out", str(saved))
    assert code == 0, err
    kinds = [c.kind for c in Plan.load(saved).changes]
    assert kinds == ["dns_record_update"]  # nothing for the agent to run
    return saved


def _lock_cmdlets(env: Env, since: int = 0) -> list[str]:
    return [
        str(e["cmdlet"]) for e in env.cmdlets(since)
        if str(e["cmdlet"]) in ("Update-CasdesiredLock", "Register-CasdesiredPlan")
    ]


def test_a_dns_only_plan_is_registered_on_the_endpoint_so_another_runner_cannot_reapply_it(
    managed: Env, bind_server: BindServer, capsys: pytest.CaptureFixture[str]
) -> None:
    env = managed
    saved = _dns_only_plan(env, capsys)
    args = ["apply", str(saved), "--config", str(env.org_dir), "--auto-approve"]
    code, out, err = cli(capsys, *args, "--audit-log", str(env.audit))
    assert code == 0, out + err
    assert f"applied: update DNS A record {DR_ARRAY}" in out
    assert resolve_a(DR_ARRAY, resolvers=[bind_server.address]) == {DR_VIP}
    # Renewed and registered before the record was written: one renewal, one registration.
    assert _lock_cmdlets(env) == ["Update-CasdesiredLock", "Register-CasdesiredPlan"]
    # Someone puts the record back; another runner (another audit log) tries the same plan.
    _set_record(bind_server, [DR_SERVER])
    code, _out, err = cli(capsys, *args, "--audit-log", str(env.tmp / "other-runner.jsonl"))
    assert code == 1
    assert f"plan {Plan.load(saved).plan_id} was already applied here" in err
    assert resolve_a(DR_ARRAY, resolvers=[bind_server.address]) == {DR_SERVER}  # not redone


def test_a_refused_registration_stops_before_the_dns_record_is_written(
    managed: Env, bind_server: BindServer, capsys: pytest.CaptureFixture[str]
) -> None:
    env = managed
    env.lab.faults.update({"cmdlets": [{"cmdlet": "Register-CasdesiredPlan"}]})
    code, out, _err = cli(capsys, "apply", str(env.org_dir), "--site", "DR", "--auto-approve",
                          "--audit-log", str(env.audit))
    assert code == 1
    assert "Applied 0 of 1 change(s)." in out and "Register-CasdesiredPlan failed" in out
    assert f"not attempted: update DNS A record {DR_ARRAY}" in out
    assert resolve_a(DR_ARRAY, resolvers=[bind_server.address]) == {DR_SERVER}
    assert env.current_lock() is None


def test_a_dns_step_after_agent_batches_renews_the_lease_first(
    managed: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # The whole organisation: agent batches, then DR's record update, each preceded by a
    # renewal; the plan id is registered once, with the first write.
    env = managed
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, out + err
    finished = [json.loads(x) for x in env.audit.read_text().splitlines()][-1]
    kinds = [c["kind"] for c in finished["changes"]]
    assert "dns_record_update" in kinds
    writes_by_agent = [k for k in kinds if not k.startswith("dns_")]
    assert writes_by_agent  # the agent batches ran too
    lock_steps = _lock_cmdlets(env)
    assert lock_steps.count("Register-CasdesiredPlan") == 1
    dns_steps = sum(1 for k in kinds if k.startswith("dns_"))
    # At least one agent batch renewed, and each DNS step its own renewal besides.
    assert lock_steps.count("Update-CasdesiredLock") >= dns_steps + 1


def test_a_dns_server_error_is_labelled_as_the_dns_servers(
    managed: Env, bind_server: BindServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = managed
    monkeypatch.setenv(SECRET_ENV, "d3Jvbmcgc2VjcmV0IGZvciB0ZXN0cw==")  # not the key's secret
    code, out, _err = cli(capsys, "apply", str(env.org_dir), "--site", "DR", "--auto-approve",
                          "--audit-log", str(env.audit))
    assert code == 1
    assert f"failed: update DNS A record {DR_ARRAY}" in out
    said = [line.strip() for line in out.splitlines() if " said: " in line]
    assert len(said) == 1 and said[0].startswith("DNS server said: ") and "BADSIG" in said[0]
    assert "Exchange said" not in out
