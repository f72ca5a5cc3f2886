"""The example organisation in sites/: it validates and maps onto the shared estate model."""

from __future__ import annotations

import shutil
from pathlib import Path

from casdesired import model
from casdesired.desired.loader import load_desired
from desired.helpers import EXAMPLE


def test_the_example_has_no_errors_and_only_the_single_member_warning() -> None:
    desired = load_desired(EXAMPLE)
    assert not desired.has_errors()
    assert [(str(d.location), d.rule) for d in desired.diagnostics] == [
        ("sites/branch.yaml:13:9", "array-single-member")
    ]


def test_the_example_agrees_with_the_lab_seed_facts() -> None:
    estate = load_desired(EXAMPLE).estate()
    assert sorted(s.name for s in estate.sites.values()) == ["Branch", "DR", "HQ"]
    hq = estate.arrays["outlook-hq.contoso.local"]
    assert (hq.name, hq.site) == ("outlook-hq", "HQ")
    assert hq.load_balancer == model.LoadBalancer(
        kind=model.LoadBalancerKind.NLB,
        vip="10.1.0.50",
        cluster_host="hq-cas01.contoso.local",
        interface="NLB",
        nodes=(model.NlbNode("HQ-CAS01", "NLB"), model.NlbNode("HQ-CAS02", "NLB")),
    )
    branch = estate.arrays["outlook-branch.contoso.local"]
    assert branch.name == "outlook-branch"  # defaulted from the FQDN's host label
    assert [n.server for n in branch.load_balancer.nodes] == ["BR-CAS01"]  # type: ignore[union-attr]
    dr = estate.arrays["outlook-dr.contoso.local"]
    assert dr.load_balancer is not None and dr.load_balancer.kind is model.LoadBalancerKind.EXTERNAL
    assert dr.load_balancer.vip == "10.3.0.50" and dr.load_balancer.nodes == ()
    assert estate.servers["dr-cas02"].fqdn == "dr-cas02.contoso.local"
    hq_cas01 = estate.servers["hq-cas01"]
    assert hq_cas01.autodiscover_internal_uri == (
        "https://autodiscover.contoso.local/Autodiscover/Autodiscover.xml"
    )
    assert hq_cas01.autodiscover_site_scope == ("HQ",)
    assert estate.servers["br-cas01"].autodiscover_site_scope is None  # not managed


def test_every_object_knows_where_it_was_declared() -> None:
    estate = load_desired(EXAMPLE).estate()
    assert str(estate.sites["hq"].source) == "sites/hq.yaml:4:7"
    assert str(estate.servers["hq-cas02"].source) == "sites/hq.yaml:13:5"
    assert str(estate.arrays["outlook-hq.contoso.local"].source) == "sites/hq.yaml:20:3"
    lb = estate.arrays["outlook-hq.contoso.local"].load_balancer
    assert lb is not None and str(lb.nodes[1].source) == "sites/hq.yaml:28:25"


def test_the_organisation_settings() -> None:
    org = load_desired(EXAMPLE).organisation
    assert org.name == "contoso"
    assert org.connection.is_lab and org.connection.transport == "ntlm"
    assert org.connection.credentials.password_env == "CASDESIRED_PASSWORD"
    assert (org.connection.connect_timeout, org.connection.operation_timeout) == (10.0, 120.0)
    assert org.connection.tls_validate and org.connection.lab_state is None
    assert org.dns.resolvers == ("lab",) and org.dns.external_resolvers == ()
    assert org.dns.management is None
    assert (org.policy.max_rebind_percent, org.policy.allow_prune) == (30.0, False)
    assert org.path == EXAMPLE


def test_relative_paths_are_relative_to_the_organisation_directory(tmp_path: Path) -> None:
    copy = Path(shutil.copytree(EXAMPLE, tmp_path / "org"))
    text = (copy / "organisation.yaml").read_text("utf-8")
    text = text.replace("    validate: true\n", "    validate: true\n    ca_bundle: certs/ca.pem\n")
    text = text.replace("  # lab:   ", "  lab:\n    state: state/lab.json\n  #")
    (copy / "organisation.yaml").write_text(text, "utf-8")
    desired = load_desired(copy)
    assert not desired.has_errors(), desired.diagnostics
    assert desired.organisation.connection.ca_bundle == copy / "certs" / "ca.pem"
    assert desired.organisation.connection.lab_state == copy / "state" / "lab.json"


def test_the_digest_changes_with_any_byte_and_only_then(tmp_path: Path) -> None:
    copy = Path(shutil.copytree(EXAMPLE, tmp_path / "org"))
    first = load_desired(copy).digest()
    assert load_desired(copy).digest() == first
    dr = copy / "dr.yaml"
    dr.write_text(dr.read_text("utf-8").replace("10.3.0.50", "10.3.0.51"), "utf-8")
    assert load_desired(copy).digest() != first
