"""The array and server checks, against a real BIND on loopback (see bind.py for its zones)."""

from __future__ import annotations

import re
import time

import pytest
from bind import BindServer, silent_port

from casdesired import model
from casdesired.changes.types import BindingChange
from casdesired.dns import (
    ArrayExpectation,
    DnsError,
    DnsLookupError,
    ServerExpectation,
    check_arrays,
    check_servers,
    expectations_from_sites,
    resolve_a,
)
from casdesired.dns.endpoints import Endpoint, parse_endpoint
from casdesired.errors import CasdesiredError
from casdesired.findings import Location, Severity, Source
from casdesired.plan.thresholds import dns_blocking, dns_gate_reason

HQ = ArrayExpectation(
    "outlook-hq.contoso.local",
    "10.1.0.50",
    ("hq-cas01.contoso.local", "hq-cas02.contoso.local"),
)


def test_array_resolving_to_its_vip_gives_no_finding(bind_server: BindServer) -> None:
    assert check_arrays([HQ], resolvers=[bind_server.address]) == []


def test_wrong_address_names_the_name_what_it_resolves_to_and_the_vip(
    bind_server: BindServer,
) -> None:
    branch = ArrayExpectation("outlook-br.contoso.local", "10.2.0.50", ("br-cas01.contoso.local",))

    [finding] = check_arrays([branch], resolvers=[bind_server.address])

    assert finding.severity == "error"
    assert finding.rule == "dns-array-wrong-address"
    assert finding.name == "outlook-br.contoso.local"
    assert "outlook-br.contoso.local resolves to 10.2.0.99" in finding.message
    assert "expected only its VIP 10.2.0.50" in finding.message
    assert bind_server.address in finding.message


def test_resolving_to_a_server_address_is_called_out(bind_server: BindServer) -> None:
    # The servers' addresses are learnt through the same resolvers.
    dr = ArrayExpectation("outlook-dr.contoso.local", "10.3.0.50", ("dr-cas01.contoso.local",))

    [finding] = check_arrays([dr], resolvers=[bind_server.address])

    assert finding.rule == "dns-array-resolves-to-server"
    assert "10.3.0.11 is server dr-cas01.contoso.local" in finding.message
    assert "VIP 10.3.0.50" in finding.message


def test_vip_plus_a_server_in_round_robin_is_an_error(bind_server: BindServer) -> None:
    rr = ArrayExpectation("outlook-rr.contoso.local", "10.1.0.50")
    owners = {"hq-cas02.contoso.local": {"10.1.0.12"}}

    [finding] = check_arrays([rr], resolvers=[bind_server.address], server_addresses=owners)

    assert finding.rule == "dns-array-resolves-to-server"
    assert "resolves to 10.1.0.12, 10.1.0.50" in finding.message


def test_nxdomain_has_its_own_message(bind_server: BindServer) -> None:
    missing = ArrayExpectation("outlook-new.contoso.local", "10.4.0.50")

    [finding] = check_arrays([missing], resolvers=[bind_server.address])

    assert finding.rule == "dns-array-nxdomain"
    assert "outlook-new.contoso.local does not exist (NXDOMAIN" in finding.message
    assert "expected it to resolve to its VIP 10.4.0.50" in finding.message


def test_servfail_has_its_own_message(bind_server: BindServer) -> None:
    broken = ArrayExpectation("outlook.broken.local", "10.5.0.50")

    [finding] = check_arrays([broken], resolvers=[bind_server.address])

    assert finding.rule == "dns-servfail"
    assert "SERVFAIL" in finding.message
    assert "outlook.broken.local" in finding.message


def test_refused_has_its_own_message(bind_server: BindServer) -> None:
    refused = ArrayExpectation("outlook.refused.local", "10.8.0.50")

    [finding] = check_arrays([refused], resolvers=[bind_server.address])

    assert finding.rule == "dns-refused"
    assert f"DNS server {bind_server.address} refused to answer" in finding.message


def test_silent_resolver_times_out_within_the_bound(bind_server: BindServer) -> None:
    arrays = [ArrayExpectation(f"outlook{n}.contoso.local", "10.2.0.50") for n in range(6)]
    with silent_port() as port:
        started = time.monotonic()
        findings = check_arrays(
            arrays, resolvers=[f"127.0.0.1:{port}"], server_addresses={}, timeout=1.0
        )
        elapsed = time.monotonic() - started

    assert [f.rule for f in findings] == ["dns-timeout"] * 6
    assert f"DNS server 127.0.0.1:{port} did not answer" in findings[0].message
    assert "within 1 s" in findings[0].message
    # Lookups run side by side: six silent names cost about one timeout, not six (6 s). The
    # margin is wide so that a busy machine cannot make this fail.
    assert elapsed < 4.0


def test_each_internal_resolver_is_asked_once(bind_server: BindServer) -> None:
    with silent_port() as port:
        silent = f"127.0.0.1:{port}"
        findings = check_arrays([HQ], resolvers=[bind_server.address, silent, silent], timeout=0.2)

    assert [f.rule for f in findings] == ["dns-timeout"]


def test_external_resolver_that_resolves_the_name_is_flagged(bind_server: BindServer) -> None:
    absent_outside = ArrayExpectation("outlook-new.contoso.local", "10.4.0.50")

    findings = check_arrays(
        [HQ, absent_outside],
        resolvers=[bind_server.address],
        external_resolvers=[bind_server.address],
    )

    external = [f for f in findings if f.rule == "dns-array-resolves-externally"]
    assert [f.name for f in external] == ["outlook-hq.contoso.local"]
    assert external[0].severity == "warning"
    assert "resolve internally only" in external[0].message


def test_external_resolver_that_cannot_be_asked_is_a_warning(bind_server: BindServer) -> None:
    with silent_port() as port:
        findings = check_arrays(
            [HQ],
            resolvers=[bind_server.address],
            external_resolvers=[f"127.0.0.1:{port}"],
            timeout=0.2,
        )

    [finding] = findings
    assert (finding.severity, finding.rule) == ("warning", "dns-external-unchecked")


def test_absent_arrays_are_not_checked(bind_server: BindServer) -> None:
    gone = ArrayExpectation("outlook-old.contoso.local", "10.6.0.50", ensure=model.Ensure.ABSENT)

    assert check_arrays([gone], resolvers=[bind_server.address]) == []


def test_separate_port_argument_applies_to_bare_addresses(bind_server: BindServer) -> None:
    assert check_arrays([HQ], resolvers=["127.0.0.1"], port=bind_server.port) == []


def test_cas_servers_must_resolve(bind_server: BindServer) -> None:
    where = Location("sites/hq.yaml", 9, 5)
    findings = check_servers(
        [
            ServerExpectation("hq-cas01.contoso.local", "HQ"),
            ServerExpectation("hq-cas09.contoso.local", "HQ", where),
        ],
        resolvers=[bind_server.address],
    )

    [finding] = findings
    assert finding.rule == "dns-server-unresolved"
    assert (finding.site, finding.location, finding.source) == ("HQ", where, Source.DNS)
    assert finding.message.startswith("CAS server hq-cas09.contoso.local does not exist")


def test_resolve_a_returns_the_addresses(bind_server: BindServer) -> None:
    assert resolve_a("outlook-rr.contoso.local", resolvers=[bind_server.address]) == {
        "10.1.0.50",
        "10.1.0.12",
    }


def test_resolve_a_moves_past_a_silent_resolver(bind_server: BindServer) -> None:
    with silent_port() as port:
        found = resolve_a(
            "hq-cas01.contoso.local",
            resolvers=[f"127.0.0.1:{port}", bind_server.address],
            timeout=0.2,
        )
    assert found == {"10.1.0.11"}


def test_resolve_a_errors_are_clear(bind_server: BindServer) -> None:
    with pytest.raises(DnsLookupError, match=r"nope\.contoso\.local does not exist \(NXDOMAIN"):
        resolve_a("nope.contoso.local", resolvers=[bind_server.address])
    with pytest.raises(DnsLookupError) as raised:
        resolve_a("x.broken.local", resolvers=[bind_server.address, bind_server.address])
    assert str(raised.value).count("SERVFAIL") == 2
    assert isinstance(raised.value, CasdesiredError)


@pytest.mark.parametrize(
    ("resolver", "says"),
    [
        ("dns1.contoso.local", "is not an IP address"),
        ("10.0.0.10:99999", "invalid port"),
        ("[fd00::1", "[IPv6]:port"),
    ],
)
def test_a_resolver_that_is_not_an_address_is_refused_clearly(resolver: str, says: str) -> None:
    with pytest.raises(DnsError, match=re.escape(says)):
        check_arrays([HQ], resolvers=[resolver])


def test_resolvers_may_be_ipv6_with_or_without_a_port() -> None:
    assert parse_endpoint("[::1]:5353") == Endpoint("::1", 5353)
    assert parse_endpoint("::1", default_port=5300) == Endpoint("::1", 5300)
    assert str(Endpoint("::1", 5353)) == "[::1]:5353"


def test_the_gate_blocks_until_dns_is_right(bind_server: BindServer) -> None:
    branch = ArrayExpectation("outlook-br.contoso.local", "10.2.0.50", site="Branch")
    findings = check_arrays([HQ, branch], resolvers=[bind_server.address])
    rebind = [BindingChange("Branch", "BR-DB01", "br-cas01.contoso.local",
                            "outlook-br.contoso.local")]

    blocking = dns_blocking(findings, rebind)
    reason = dns_gate_reason(blocking)
    assert "outlook-br.contoso.local resolves to 10.2.0.99" in reason
    assert "refusing to point databases at arrays whose names do not resolve" in reason
    assert dns_blocking(findings, []) == []  # nothing points databases at it: no gate
    assert dns_blocking(check_arrays([HQ], resolvers=[bind_server.address]), rebind) == []


def test_expectations_come_from_the_declared_sites() -> None:
    where = Location("sites/hq.yaml", 12, 3)
    site = model.Site(
        name="HQ",
        servers=(model.CasServer("HQ-CAS01", "hq-cas01.contoso.local", "HQ"),),
        array=model.CasArray(
            "outlook-hq.contoso.local",
            "outlook-hq",
            "HQ",
            load_balancer=model.LoadBalancer(model.LoadBalancerKind.EXTERNAL, "10.1.0.50"),
            source=where,
        ),
    )
    no_array = model.Site(name="Empty")

    [expected] = expectations_from_sites([site, no_array])

    assert expected == ArrayExpectation(
        "outlook-hq.contoso.local", "10.1.0.50", ("hq-cas01.contoso.local",), site="HQ"
    )
    assert expected.source == where


def test_findings_are_located_at_the_declaration(bind_server: BindServer) -> None:
    where = Location("sites/br.yaml", 20, 5)
    branch = ArrayExpectation(
        "outlook-br.contoso.local", "10.2.0.50", site="Branch", source=where
    )

    [finding] = check_arrays([branch], resolvers=[bind_server.address])

    assert finding.severity is Severity.ERROR
    assert (finding.site, finding.name, finding.source) == (
        "Branch", "outlook-br.contoso.local", Source.DNS
    )
    assert not finding.blocking  # a DNS error never withholds a site's changes
    assert str(finding).startswith("sites/br.yaml:20:5: error: outlook-br.contoso.local")
