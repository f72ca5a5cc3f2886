"""The connection checks, each seen failing as a real endpoint would make it fail."""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from apply.labenv import SECRET, SITES, Env

from casdesired.desired.loader import load_desired
from casdesired.doctor.connection import Certificate, _tls, delegation
from casdesired.doctor.model import Status
from casdesired.lab.server import Lab, LabCredentials
from casdesired.transport.winrm import WinRMTarget
from doctor.helpers import Doctor, find

ON_HOST = ("host.json", "winrm.memory", "exchange.session", "lock.held", "clock.skew")


def set_yaml(env: Env, old: str, new: str) -> None:
    path = env.org_dir / "organisation.yaml"
    text = path.read_text()
    assert re.search(old, text), old
    path.write_text(re.sub(old, new, text))


def point_at(env: Env, url: str) -> None:
    set_yaml(env, r"endpoint: \S+", f"endpoint: {url}")


@contextmanager
def other_lab(env: Env, **options: object) -> Iterator[Lab]:
    """A second endpoint on the same organisation (its account and password the same)."""
    with Lab(env.organisation, credentials=LabCredentials(password=SECRET),  # type: ignore[arg-type]
             faults=env.lab.faults, journal=env.lab.journal, **options) as lab:
        yield lab


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_listening_fails_wsman_and_skips_the_rest(doctor: Doctor, env: Env) -> None:
    point_at(env, f"http://127.0.0.1:{free_port()}/wsman")
    code, report, _ = doctor.run()
    assert code == 1 and report["executions"] == 0
    wsman = find(report, "connection.wsman")
    assert wsman["status"] == "FAIL" and "connection refused" in wsman["evidence"][0]
    assert "winrm quickconfig" in wsman["remedy"]
    assert find(report, "connection.auth")["status"] == "SKIPPED"
    for check_id in ON_HOST:
        skipped = find(report, check_id)
        assert skipped["status"] == "SKIPPED"
        assert "see connection.wsman" in skipped["evidence"][0]
    assert find(report, "dns.array", "HQ")["status"] == "PASS"  # the runner's own checks run


def test_a_url_that_is_another_web_service_is_not_winrm(doctor: Doctor, env: Env) -> None:
    point_at(env, env.lab.control_url + "/state")
    _, report, _ = doctor.run()
    wsman = find(report, "connection.wsman")
    assert wsman["status"] == "FAIL"
    assert "HTTP 403" in wsman["evidence"][0] and "not as WinRM does" in wsman["evidence"][0]


def test_a_certificate_from_an_untrusted_ca_fails_tls_with_its_names(
    doctor: Doctor, env: Env
) -> None:
    with other_lab(env, tls=True) as lab:
        point_at(env, lab.url)
        code, report, _ = doctor.run()
    tls = find(report, "connection.tls")
    assert code == 1 and tls["status"] == "FAIL"
    assert "not signed by a CA casdesired trusts" in tls["evidence"][0]
    names = next(e for e in tls["evidence"] if e.startswith("the certificate names "))
    assert "localhost" in names and "127.0.0.1" in names
    assert "ca_bundle" in tls["remedy"]
    assert find(report, "connection.wsman")["status"] == "PASS"
    assert "see connection.tls" in find(report, "host.json")["evidence"][0]


def test_the_ca_bundle_validates_the_certificate_and_tls_encrypts(
    doctor: Doctor, env: Env
) -> None:
    with other_lab(env, tls=True) as lab:
        assert lab.ca_file is not None
        point_at(env, lab.url)
        set_yaml(env, r"    validate: true", f"    validate: true\n    ca_bundle: {lab.ca_file}")
        code, report, _ = doctor.run()
        set_yaml(env, r"    validate: true", "    validate: false")
        _, unvalidated, _ = doctor.run()
    tls = find(report, "connection.tls")
    assert code == 0 and tls["status"] == "PASS"
    assert tls["evidence"][0] == "the certificate validated"
    assert any(e.startswith("valid until ") for e in tls["evidence"])
    assert find(report, "connection.encryption")["evidence"] == [
        "https://: TLS encrypts every message"
    ]
    off = find(unvalidated, "connection.tls")
    assert off["status"] == "WARN" and "validate is false" in off["evidence"][0]


def test_a_wrong_password_fails_the_logon_with_its_causes(
    doctor: Doctor, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASDESIRED_PASSWORD", "not-the-password")
    code, report, _ = doctor.run()
    auth = find(report, "connection.auth")
    assert code == 1 and auth["status"] == "FAIL"
    assert "rejected the credentials (ntlm authentication)" in auth["evidence"][0]
    assert find(report, "connection.wsman")["status"] == "PASS"
    assert "see connection.auth" in find(report, "lock.held")["evidence"][0]


def test_a_missing_variable_fails_the_logon_naming_the_variable(
    doctor: Doctor, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASDESIRED_PASSWORD")
    code, report, _ = doctor.run()
    auth = find(report, "connection.auth")
    assert code == 1 and auth["status"] == "FAIL"
    assert "CASDESIRED_PASSWORD is not set" in auth["evidence"][0]
    assert "connection.credentials" in auth["remedy"]


def test_basic_over_http_sends_messages_in_clear_text(doctor: Doctor, env: Env) -> None:
    with other_lab(env, auth="basic", allow_unencrypted=True) as lab:
        point_at(env, lab.url)
        set_yaml(env, r"transport: ntlm", "transport: basic")
        code, report, _ = doctor.run()
    encryption = find(report, "connection.encryption")
    assert code == 1 and encryption["status"] == "FAIL"
    assert "answers came in clear text (application/soap+xml" in encryption["evidence"][0]
    assert "AllowUnencrypted" in encryption["remedy"]
    assert find(report, "connection.auth")["status"] == "PASS"
    assert find(report, "connection.auth")["evidence"][0].startswith(
        "the service accepted the Basic logon"
    )


def test_basic_over_http_is_refused_by_a_default_service_and_offered_methods_are_shown(
    doctor: Doctor, env: Env
) -> None:
    set_yaml(env, r"transport: ntlm", "transport: basic")
    _, report, _ = doctor.run()
    auth = find(report, "connection.auth")
    assert auth["status"] == "FAIL"
    assert "the service offers Negotiate, Kerberos; basic needs Basic" in auth["evidence"]
    assert "@{Basic=\"true\"}" in auth["remedy"]
    assert find(report, "connection.encryption")["status"] == "FAIL"


def test_a_certificate_near_its_end_is_a_warning_to_renew_it() -> None:
    target = WinRMTarget(url="https://ex01.contoso.local:5986/wsman")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    soon = Certificate(True, None, ("ex01.contoso.local",), now + timedelta(days=10))
    later = Certificate(True, None, ("ex01.contoso.local",), now + timedelta(days=200))
    warned = _tls(target, soon, now)
    assert warned.status is Status.WARN and "expires in 10 day(s)" in warned.evidence[0]
    assert "CertificateThumbprint" in (warned.remedy or "")
    assert _tls(target, later, now).status is Status.PASS


@pytest.mark.parametrize(
    "transport, mode, status",
    [("ntlm", "remote", "PASS"), ("ntlm", "snapin", "FAIL"), ("credssp", "snapin", "PASS"),
     ("kerberos", "remote", "PASS")],
)
def test_delegation_is_what_the_transport_gives_and_the_mode_needs(
    tmp_path: Path, transport: str, mode: str, status: str
) -> None:
    # validate refuses the failing combination (rule exchange-snapin-double-hop) before doctor
    # would run; the check still says why, from the organisation file alone.
    org_dir = tmp_path / "org"
    shutil.copytree(SITES, org_dir)
    path = org_dir / "organisation.yaml"
    path.write_text(path.read_text().replace("transport: ntlm", f"transport: {transport}")
                    .replace("mode: remote", f"mode: {mode}"))
    organisation = load_desired(org_dir).organisation
    target = WinRMTarget(url="http://ex/wsman", username="u", password="p")
    found = delegation(organisation, None if mode == "snapin" else target)
    assert found.status.value == status
    can = "can" if transport == "credssp" else "cannot"
    assert f"{can} reach a third machine as you" in found.evidence[0]
