"""The rules across files: a broken organisation yields every expected problem, in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from casdesired.desired.loader import load_desired
from casdesired.desired.rules import SITE_RULES
from casdesired.desired.syntax import is_fqdn, is_resolver
from desired.helpers import FIXTURES, ORGANISATION, org_dir

BROKEN = FIXTURES / "broken"

# (file, line, column, severity, rule): the whole expected report for tests/fixtures/desired/broken.
EXPECTED = {
    ("alpha-again.yaml", 4, 7, "warning", "site-without-array"),
    ("alpha.yaml", 4, 7, "error", "site-duplicate"),
    ("alpha.yaml", 6, 5, "error", "server-duplicate"),  # the name AL-CAS01 ...
    ("alpha.yaml", 12, 11, "error", "fqdn-syntax"),
    ("alpha.yaml", 14, 9, "error", "array-name-invalid"),
    ("alpha.yaml", 15, 9, "error", "array-fqdn-is-server"),
    ("alpha.yaml", 18, 10, "error", "ip-syntax"),
    ("alpha.yaml", 19, 19, "error", "nlb-cluster-host-not-member"),
    ("alpha.yaml", 21, 25, "error", "nlb-member-unknown"),
    ("alpha.yaml", 21, 35, "error", "nlb-member-duplicate"),
    ("alpha.yaml", 25, 7, "error", "binding-unknown-server"),
    ("alpha.yaml", 25, 7, "warning", "database-bound-to-server"),
    ("beta.yaml", 10, 9, "warning", "array-single-member"),
    ("beta.yaml", 10, 9, "error", "array-fqdn-is-autodiscover"),
    ("beta.yaml", 14, 5, "error", "lb-external-nlb-keys"),
    ("beta.yaml", 16, 11, "error", "database-bound-twice"),
    ("delta.yaml", 9, 9, "error", "array-name-duplicate"),
    ("delta.yaml", 11, 3, "error", "lb-nlb-incomplete"),
    ("epsilon.yaml", 4, 7, "warning", "site-without-array"),
    ("epsilon.yaml", 9, 3, "error", "binding-without-array"),
    ("gamma.yaml", 10, 1, "error", "lb-missing"),
    ("gamma.yaml", 11, 9, "error", "array-fqdn-duplicate"),
    ("gamma.yaml", 11, 9, "error", "array-name-is-server"),
    ("organisation.yaml", 5, 1, "error", "credentials-incomplete"),
    ("organisation.yaml", 6, 13, "error", "endpoint-invalid"),
    ("organisation.yaml", 9, 11, "error", "exchange-snapin-double-hop"),
    ("organisation.yaml", 11, 15, "warning", "tls-validation-off"),
    ("organisation.yaml", 13, 15, "error", "ip-syntax"),
    ("organisation.yaml", 15, 23, "error", "bad-value"),
    ("zeta.yaml", 1, 1, "warning", "schema-comment-missing"),
    ("zeta.yaml", 8, 3, "error", "binding-to-absent-array"),
}


def test_the_broken_organisation_yields_every_expected_problem_in_place() -> None:
    desired = load_desired(BROKEN)
    prefix = "tests/fixtures/desired/broken/"
    found = {
        (
            d.location.path.removeprefix(prefix),
            d.location.line,
            d.location.column,
            d.severity.value,
            d.rule,
        )
        for d in desired.diagnostics
    }
    assert found == EXPECTED
    assert desired.has_errors()
    # server-duplicate fires for the name and for the FQDN, both at the second declaration.
    assert [d.message for d in desired.diagnostics if d.rule == "server-duplicate"] == [
        "server FQDN 'al-cas01.fabrikam.local' is already declared at "
        "tests/fixtures/desired/broken/alpha-again.yaml:6:5",
        "server name 'AL-CAS01' is already declared at "
        "tests/fixtures/desired/broken/alpha-again.yaml:6:5",
    ]


def test_diagnostics_come_sorted_by_path_then_line() -> None:
    diagnostics = load_desired(BROKEN).diagnostics
    keys = [(d.location.path, d.location.line, d.location.column) for d in diagnostics]
    assert keys == sorted(keys)


def test_every_rule_has_a_stable_id_in_its_summary() -> None:
    for summary, _rule in SITE_RULES:
        rule_id = summary.split(":")[0].split(" ")[0]
        assert rule_id and rule_id == rule_id.lower()


def _site(body: str) -> str:
    return "casdesired: 1\nkind: site\n" + body


def _rules(tmp_path: Path, **sites: str) -> list[tuple[str, int, int, str]]:
    files = {"organisation.yaml": ORGANISATION} | {f"{n}.yaml": _site(b) for n, b in sites.items()}
    desired = load_desired(org_dir(tmp_path, files))
    return [
        (Path(d.location.path).name, d.location.line, d.location.column, d.rule)
        for d in desired.diagnostics
        if d.rule != "schema-comment-missing"
    ]


def test_an_array_name_over_64_characters_is_refused(tmp_path: Path) -> None:
    name = "a" * 65
    body = f"""site: HQ
servers: [{{name: CAS1, fqdn: cas1.x.local}}, {{name: CAS2, fqdn: cas2.x.local}}]
array:
  name: {name}
  fqdn: outlook.x.local
  load_balancer: {{type: external, vip: 10.0.0.1}}
"""
    assert _rules(tmp_path, hq=body) == [("hq.yaml", 6, 9, "array-name-invalid")]


def test_an_unknown_site_in_autodiscover_scope_is_a_warning(tmp_path: Path) -> None:
    body = """site: HQ
servers:
  - name: CAS1
    fqdn: cas1.x.local
    autodiscover: {internal_uri: "https://ad.x.local/a.xml", site_scope: [HQ, Elsewhere]}
"""
    found = _rules(tmp_path, hq=body)
    assert ("hq.yaml", 7, 79, "autodiscover-scope-unknown-site") in found


def test_a_database_named_twice_in_one_site_is_an_error(tmp_path: Path) -> None:
    body = """site: HQ
servers: [{name: CAS1, fqdn: cas1.x.local}]
array: {fqdn: o.x.local, load_balancer: {type: external, vip: 10.0.0.1}}
databases:
  names: [DB1]
  server_bindings: [{database: db1, server: CAS1}]
"""
    found = _rules(tmp_path, hq=body)
    assert ("hq.yaml", 8, 32, "database-bound-twice") in found


def test_a_certificate_transport_needs_its_certificate_variables(tmp_path: Path) -> None:
    org = ORGANISATION.replace("endpoint: lab", "endpoint: https://ex.x.local:5986/wsman")
    org = (
        org.replace("transport: ntlm", "transport: certificate")
        + "  credentials: {cert_pem_env: P}\n"
    )
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": org}))
    [problem] = [d for d in desired.diagnostics if d.rule == "credentials-incomplete"]
    assert "cert_key_env" in problem.message and "cert_pem_env" not in problem.message


def test_credentials_in_the_remote_powershell_uri_are_refused_unprinted(tmp_path: Path) -> None:
    org = ORGANISATION.replace("endpoint: lab", "endpoint: https://ex.x.local:5986/wsman")
    org += (
        "  exchange: {mode: remote, uri: 'http://u:Sekr1tPw@ex.x.local/PowerShell/'}\n"
        "  credentials: {username_env: U, password_env: P}\n"
    )
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": org}))
    [problem] = [d for d in desired.diagnostics if d.rule == "endpoint-has-credentials"]
    assert "exchange.uri" in problem.message and "Sekr1tPw" not in str(problem)


@pytest.mark.parametrize(
    ("endpoint", "transport", "warned"),
    [
        ("http://ex.x.local:5985/wsman", "basic", True),
        ("https://ex.x.local:5986/wsman", "basic", False),
        ("http://ex.x.local:5985/wsman", "ntlm", False),
    ],
)
def test_basic_over_plain_http_is_a_warning(
    tmp_path: Path, endpoint: str, transport: str, warned: bool
) -> None:
    org = ORGANISATION.replace("endpoint: lab", f"endpoint: {endpoint}")
    org = org.replace("transport: ntlm", f"transport: {transport}")
    org += "  credentials: {username_env: U, password_env: P}\n"
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": org}))
    found = [(d.location.line, d.severity.value) for d in desired.diagnostics
             if d.rule == "basic-over-http"]
    assert found == ([(7, "warning")] if warned else [])


def test_the_lab_endpoint_needs_no_credentials(tmp_path: Path) -> None:
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": ORGANISATION}))
    assert desired.diagnostics == ()


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("outlook.contoso.local", True),
        ("outlook.contoso.local.", True),
        ("outlook", False),
        ("out_look.contoso.local", False),
        ("-bad.contoso.local", False),
        ("a" * 64 + ".local", False),
    ],
)
def test_fqdn_syntax(text: str, ok: bool) -> None:
    assert is_fqdn(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("10.0.0.10", True),
        ("127.0.0.1:5353", True),
        ("::1", True),
        ("[::1]:5353", True),
        ("10.0.0.300", False),
        ("127.0.0.1:99999", False),
        ("dns.contoso.local", False),
    ],
)
def test_resolver_syntax(text: str, ok: bool) -> None:
    assert is_resolver(text) is ok


@pytest.mark.parametrize(
    ("connection_extra", "rule", "severity"),
    [
        (
            "  exchange: {mode: snapin, uri: 'http://ex.x.local/PowerShell/'}\n",
            "exchange-uri-unused",
            "warning",
        ),
        ("  exchange: {mode: remote, uri: 'ex.x.local/PowerShell'}\n", "uri-syntax", "error"),
    ],
)
def test_exchange_session_settings(
    tmp_path: Path, connection_extra: str, rule: str, severity: str
) -> None:
    # CredSSP can delegate: the snap-in works there (the double hop is tested below).
    organisation = ORGANISATION.replace("transport: ntlm", "transport: credssp")
    desired = load_desired(
        org_dir(tmp_path, {"organisation.yaml": organisation + connection_extra})
    )
    assert [(d.rule, d.severity.value, d.location.line) for d in desired.diagnostics] == [
        (rule, severity, 8)
    ]


def test_lab_settings_with_a_url_endpoint_are_flagged(tmp_path: Path) -> None:
    org = ORGANISATION.replace("endpoint: lab", "endpoint: https://ex.x.local:5986/wsman")
    org = org.replace("transport: ntlm", "transport: kerberos") + "  lab: {state: x.json}\n"
    org += "  credentials: {password_env: EX_PASSWORD}\n"
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": org}))
    assert [(d.rule, d.location.line, d.location.column) for d in desired.diagnostics] == [
        ("lab-settings-unused", 8, 3)
    ]


@pytest.mark.parametrize(
    ("transport", "mode", "rules"),
    [
        ("ntlm", "snapin", ["exchange-snapin-double-hop"]),
        ("kerberos", "snapin", ["exchange-snapin-double-hop", "kerberos-needs-password"]),
        ("basic", "snapin", ["exchange-snapin-double-hop"]),
        ("credssp", "snapin", []),
        ("ntlm", "remote", []),
        ("kerberos", "remote", ["kerberos-needs-password"]),
    ],
)
def test_the_double_hop_is_refused_at_its_line(
    tmp_path: Path, transport: str, mode: str, rules: list[str]
) -> None:
    # Field fact (exchange2010-field.md §1): a logon that cannot delegate cannot reach a
    # domain controller as the user, so the snap-in fails inside WinRM unless CredSSP.
    org = ORGANISATION.replace("transport: ntlm", f"transport: {transport}")
    org += f"  exchange:\n    mode: {mode}\n"
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": org}))
    found = sorted((d.rule, d.severity.value) for d in desired.diagnostics)
    assert found == sorted((rule, "error") for rule in rules)
    snapin = [d for d in desired.diagnostics if d.rule == "exchange-snapin-double-hop"]
    if snapin:
        assert (snapin[0].location.line, snapin[0].location.column) == (9, 11)
        assert f"authenticated with {transport}" in snapin[0].message


def test_a_control_character_is_located(tmp_path: Path) -> None:
    desired = load_desired(org_dir(tmp_path, {"organisation.yaml": ORGANISATION + "# \x07 bell\n"}))
    [problem] = [d for d in desired.diagnostics if d.rule == "yaml"]
    assert (problem.rule, problem.location.line, problem.location.column) == ("yaml", 8, 3)
    assert "U+0007" in problem.message
    [missing] = [d for d in desired.diagnostics if d.rule == "organisation-missing"]
    assert missing.message.endswith("among the files that could be read")
