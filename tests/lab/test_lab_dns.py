"""The lab's DNS server, asked through dnspython over real loopback sockets (UDP and TCP)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.update
import pytest
import requests

from casdesired.desired.loader import load_desired
from casdesired.dns import check_arrays, expectations_from_sites, resolve_a
from casdesired.lab.dns import LabDnsServer
from casdesired.lab.embedded import lab_dns, running_lab
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.server import Lab

from .serve_process import lab_serve

EXAMPLE = Path(__file__).resolve().parents[2] / "sites"


def ask(
    server: LabDnsServer, name: str, rdtype: str = "A", *, tcp: bool = False
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=3)
    return dns.query.udp(query, "127.0.0.1", port=server.port, timeout=3)


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rdata.to_text() for rrset in response.answer for rdata in rrset)


@pytest.fixture
def organisation() -> Organisation:
    return Organisation.from_seed()


@pytest.fixture
def server(organisation: Organisation) -> Iterator[LabDnsServer]:
    with LabDnsServer(organisation) as running:
        yield running


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_seed_records_answer_over_udp_and_tcp(server: LabDnsServer, tcp: bool) -> None:
    expected = {
        "outlook-hq.contoso.local": ["10.1.0.50"],
        "outlook-dr.contoso.local": ["10.3.0.50"],
        "outlook-branch.contoso.local": ["10.2.0.50"],
        "hq-cas01.contoso.local": ["10.1.0.11"],
        "hq-cas02.contoso.local": ["10.1.0.12"],
        "br-cas01.contoso.local": ["10.2.0.11"],
        "dr-cas01.contoso.local": ["10.3.0.11"],
        "dr-cas02.contoso.local": ["10.3.0.12"],
        "hq-mbx01.contoso.local": ["10.1.0.21"],
        "autodiscover.contoso.local": ["10.1.0.50"],
    }
    for name, wanted in expected.items():
        response = ask(server, name, tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AA  # authoritative, as a zone's server is
        assert addresses(response) == wanted, name
    # case does not matter in DNS
    assert addresses(ask(server, "OUTLOOK-HQ.Contoso.Local", tcp=tcp)) == ["10.1.0.50"]


def test_what_the_lab_does_not_hold(server: LabDnsServer) -> None:
    assert ask(server, "nosuch.contoso.local").rcode() == dns.rcode.NXDOMAIN
    other_zone = ask(server, "www.example.com")
    assert other_zone.rcode() == dns.rcode.REFUSED and not other_zone.answer
    no_aaaa = ask(server, "outlook-hq.contoso.local", "AAAA")
    assert no_aaaa.rcode() == dns.rcode.NOERROR and not no_aaaa.answer
    apex = ask(server, "contoso.local")
    assert apex.rcode() == dns.rcode.NOERROR and not apex.answer


def test_it_takes_no_updates_and_survives_garbage(server: LabDnsServer) -> None:
    update = dns.update.UpdateMessage("contoso.local")
    update.replace("outlook-hq", 300, "A", "10.9.9.9")
    assert dns.query.tcp(update, "127.0.0.1", port=server.port, timeout=3).rcode() == (
        dns.rcode.NOTIMP
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        # a header claiming one question, then bytes that are no question
        sock.sendto(b"\x12\x34\x01\x00\x00\x01" + b"\xff" * 10, ("127.0.0.1", server.port))
        reply, _ = sock.recvfrom(512)
    assert reply[:2] == b"\x12\x34" and reply[3] & 0x0F == dns.rcode.FORMERR
    # still answering afterwards, and the record is unchanged
    assert addresses(ask(server, "outlook-hq.contoso.local")) == ["10.1.0.50"]


def test_records_change_at_once_and_are_saved(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    org = Organisation.from_file(path)
    with LabDnsServer(org) as server:
        org.set_dns_records({**org.dns_records(), "outlook-hq.contoso.local": ["10.1.0.99"]})
        assert addresses(ask(server, "outlook-hq.contoso.local")) == ["10.1.0.99"]
    saved = json.loads(path.read_text("utf-8"))["dns_records"]
    assert saved["outlook-hq.contoso.local"] == ["10.1.0.99"]
    assert Organisation.from_file(path).dns_records()["outlook-hq.contoso.local"] == ["10.1.0.99"]
    with pytest.raises(ValueError, match="not an IPv4 address"):
        org.set_dns_records({"outlook-hq.contoso.local": ["10.1.0.300"]})
    assert org.dns_records()["outlook-hq.contoso.local"] == ["10.1.0.99"]  # nothing changed


def test_a_state_file_from_before_dns_gets_the_seed_records(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    data = Organisation.from_seed().snapshot()
    del data["dns_records"]
    path.write_text(json.dumps(data), "utf-8")
    assert Organisation.from_file(path).dns_records() == Organisation.from_seed().dns_records()


def test_control_api_reads_and_replaces_the_records(organisation: Organisation) -> None:
    with Lab(organisation) as lab, LabDnsServer(organisation) as server:
        def call(method: str, body: object = None) -> requests.Response:
            return requests.request(
                method, lab.control_url + "/dns", json=body, timeout=5,
                headers={"X-Lab-Token": lab.token}, proxies={"http": "", "https": ""},
            )

        assert call("GET").json()["outlook-dr.contoso.local"] == ["10.3.0.50"]
        records = {"outlook-dr.contoso.local": ["10.3.0.11"]}
        assert call("PUT", records).json() == records
        assert addresses(ask(server, "outlook-dr.contoso.local")) == ["10.3.0.11"]
        assert ask(server, "outlook-hq.contoso.local").rcode() == dns.rcode.NXDOMAIN
        bad = call("PUT", {"outlook-dr.contoso.local": ["not-an-ip"]})
        assert bad.status_code == 400 and "not an IPv4 address" in bad.json()["error"]
        assert call("GET").json() == records
        # reset brings the seed's records back
        requests.post(lab.control_url + "/reset", headers={"X-Lab-Token": lab.token},
                      timeout=5, proxies={"http": "", "https": ""})
        assert addresses(ask(server, "outlook-hq.contoso.local")) == ["10.1.0.50"]


def test_the_embedded_lab_runs_dns_and_stops_it(tmp_path: Path) -> None:
    org = load_desired(EXAMPLE).organisation
    state = tmp_path / "lab.json"
    with running_lab(org, state), lab_dns(org, state) as address:
        assert resolve_a("outlook-hq.contoso.local", resolvers=[address]) == {"10.1.0.50"}
        with lab_dns(org, state) as again:
            assert again == address  # the running lab's own server, not a second one
    # stopped: nothing answers on that port any more
    port = int(address.rsplit(":", 1)[1])
    query = dns.message.make_query("outlook-hq.contoso.local", "A")
    with pytest.raises((dns.exception.Timeout, ConnectionRefusedError, OSError)):
        dns.query.tcp(query, "127.0.0.1", port=port, timeout=1)


def test_the_example_arrays_resolve_to_their_vips_in_the_lab(tmp_path: Path) -> None:
    desired = load_desired(EXAMPLE)
    with lab_dns(desired.organisation, tmp_path / "lab.json") as address:
        findings = check_arrays(expectations_from_sites(desired.sites), resolvers=[address])
    assert findings == []


def test_lab_serve_announces_its_dns_server() -> None:
    with lab_serve() as served:
        match = re.fullmatch(r"(127\.0\.0\.1:\d+)\s+.*", served.fields["dns"])
        assert match, served.fields["dns"]
        assert resolve_a("outlook-branch.contoso.local", resolvers=[match.group(1)]) == {
            "10.2.0.50"
        }
        code, _ = served.stop()
    assert code == 0
