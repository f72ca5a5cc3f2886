"""Reading the live organisation through the lab over loopback, with unmodified pywinrm."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from casdesired.agent import protocol
from casdesired.errors import ReadFailed, UnsupportedExchange
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import CmdletFault
from casdesired.lab.server import Lab
from casdesired.live.convert import live_state_from_response
from casdesired.live.invocations import read_invocations
from casdesired.live.reader import read_live
from casdesired.transport.winrm import AgentClient

from .conftest import NLB_HOSTS


def _commands(lab: Lab) -> int:
    return lab.journal.count("command")


def _operations(lab: Lab) -> Counter[str]:
    """The WS-Man operations in the lab's journal, by action."""
    return Counter(str(e["action"]) for e in lab.journal.entries(["wsman"]))


def _cmdlets(lab: Lab) -> list[str]:
    return [e["cmdlet"] for e in lab.journal.entries(["cmdlet"])]


def test_full_read_of_the_seed_in_one_command_execution(
    lab: Lab, client: AgentClient, organisation: Organisation
) -> None:
    messages: list[str] = []
    state = read_live(client, nlb_hosts=NLB_HOSTS, progress=messages.append)

    assert _commands(lab) == 1 and client.executions == 1
    assert state.host == "HQ-CAS01"
    assert state.exchange_version == "Version 14.3 (Build 123.4)"
    estate = state.estate
    assert sorted(s.name for s in estate.sites.values()) == ["Branch", "DR", "HQ"]

    hq = estate.sites["hq"]
    assert [s.name for s in hq.servers] == ["HQ-CAS01", "HQ-CAS02"]  # CAS only, no MBX
    assert hq.array is not None and hq.array.fqdn == "outlook-hq.contoso.local"
    assert hq.array.name == "outlook-hq" and hq.array.members == ("HQ-CAS01", "HQ-CAS02")
    assert estate.sites["branch"].array is None  # no array in Branch yet
    assert estate.arrays["outlook-dr.contoso.local"].site == "DR"

    cas02 = estate.servers["hq-cas02"]
    assert cas02.site == "HQ" and cas02.autodiscover_site_scope == ()  # the seed's drift
    assert cas02.autodiscover_internal_uri == (
        "https://autodiscover.contoso.local/Autodiscover/Autodiscover.xml"
    )
    assert estate.servers["br-cas01"].autodiscover_site_scope == ("Branch",)
    assert estate.servers["hq-cas01"].version == "Version 14.3 (Build 123.4)"

    # Bindings, against what the organisation itself holds. Mailboxes are not counted by the
    # read: a plan counts only the databases it moves (casdesired.live.mailboxes).
    seeded = {d["name"]: d for d in organisation.snapshot()["databases"]}
    assert set(estate.databases) == {name.lower() for name in seeded}
    for db in estate.databases.values():
        seed = seeded[db.database]
        assert db.rpc_client_access_server == seed["rpc_client_access_server"]["shown"]
        assert db.mailbox_count is None
        assert db.server == seed["server"]
    assert estate.databases["hq-db05"].rpc_client_access_server == "hq-cas02.contoso.local"
    assert estate.databases["hq-db01"].rpc_client_access_server == "outlook-hq.contoso.local"

    hq_nlb = state.nlb["hq-cas01.contoso.local"]
    assert hq_nlb.vip == "10.1.0.50" and hq_nlb.interface == "NLB"
    assert [(n.server, n.state) for n in hq_nlb.nodes] == [("HQ-CAS01", "Converged")]
    assert hq_nlb.nodes[0].converged
    assert state.nlb["br-cas01.contoso.local"].vip == "10.2.0.50"
    assert hq.array.load_balancer == hq_nlb  # the array's balancer is its site's cluster

    assert messages and "12 databases" in messages[-1]
    # No whole-organisation mailbox count (minutes on 100,000 mailboxes over remote PowerShell).
    assert _cmdlets(lab).count("Get-Mailbox") == 0


def test_nlb_module_is_only_requested_when_clusters_are_read(client: AgentClient) -> None:
    state = read_live(client, nlb_hosts=[])
    assert state.nlb == {}
    assert all(not i.cmdlet.endswith("Nlb") and "Nlb" not in i.cmdlet for i in read_invocations())
    assert all(i.on_error == "stop" for i in read_invocations(NLB_HOSTS))


def test_ten_thousand_databases_still_take_one_command_execution(
    lab: Lab, client: AgentClient, organisation: Organisation
) -> None:
    read_live(client, nlb_hosts=NLB_HOSTS)
    seed_requests = client.requests
    seed = _operations(lab)
    organisation.add_databases(10_000, "HQ", "BULK-DB")
    lab.journal.clear()
    started = time.perf_counter()
    state = read_live(client, nlb_hosts=NLB_HOSTS)
    elapsed = time.perf_counter() - started
    large_requests = client.requests - seed_requests
    large = _operations(lab)

    assert len(state.estate.databases) == 10_012
    assert _commands(lab) == 1 and client.executions == 2  # the seed's read, then this one
    bulk = [db for db in state.estate.databases.values() if db.database.startswith("BULK-DB")]
    assert len(bulk) == 10_000 and all(db.mailbox_count is None for db in bulk)
    # The same WS-Man operations as for the 12-database seed: the agent gzips its answer, so
    # 10,000 databases still fit the same Receives (docs/performance.md). The one difference
    # timing can make: the bootstrap's "stdin read" line comes in a Receive of its own while
    # the agent works, or together with the answer when the agent is already done.
    others = {k: v for k, v in large.items() if k != "Receive"}
    assert others == {k: v for k, v in seed.items() if k != "Receive"}
    assert seed["Receive"] <= large["Receive"] <= seed["Receive"] + 1 and large["Receive"] <= 2
    assert large_requests == sum(large.values()), (seed_requests, large_requests)
    print(f"\n10,012 databases read in {elapsed:.2f} s, {large_requests} WS-Man requests")


def test_fingerprint_is_stable_and_moves_with_the_organisation(
    client: AgentClient,
) -> None:
    first = read_live(client, nlb_hosts=NLB_HOSTS)
    again = read_live(client, nlb_hosts=list(reversed(NLB_HOSTS)))
    assert first.fingerprint() == again.fingerprint()
    response = client.run(
        client.make_request(
            (
                protocol.Invocation(
                    "rebind",
                    "Set-MailboxDatabase",
                    {"Identity": "HQ-DB05", "RpcClientAccessServer": "outlook-hq.contoso.local"},
                ),
            )
        )
    )
    assert response.results[0].ok, response.results[0].error
    after = read_live(client, nlb_hosts=NLB_HOSTS)
    assert after.fingerprint() != first.fingerprint()
    assert after.estate.databases["hq-db05"].rpc_client_access_server == "outlook-hq.contoso.local"


@pytest.mark.parametrize(
    ("cmdlet", "what"),
    [
        ("Get-MailboxDatabase", "mailbox databases"),
        ("Get-ClientAccessArray", "Client Access arrays"),
        ("Get-NlbClusterNode", "NLB nodes of hq-cas01.contoso.local"),
    ],
)
def test_a_failed_read_is_refused_never_an_empty_estate(
    lab: Lab, client: AgentClient, cmdlet: str, what: str
) -> None:
    lab.faults.cmdlets.append(CmdletFault(cmdlet=cmdlet))
    with pytest.raises(ReadFailed) as raised:
        read_live(client, nlb_hosts=NLB_HOSTS)
    message = str(raised.value)
    assert what in message
    assert "Active Directory operation failed on DC01.contoso.local" in message
    # Nothing ran after the failure: on_error "stop" for every read invocation.
    ran = _cmdlets(lab)
    assert ran[-1] == cmdlet
    assert _commands(lab) == 1


def test_exchange_2013_endpoint_is_refused(
    lab: Lab, client: AgentClient, organisation: Organisation
) -> None:
    data = organisation.snapshot()
    for server in data["servers"]:
        if server["name"] == "HQ-CAS01":
            server["version"] = "Version 15.0 (Build 1497.2)"
    organisation.load(data)
    with pytest.raises(UnsupportedExchange) as raised:
        read_live(client, nlb_hosts=NLB_HOSTS)
    message = str(raised.value)
    assert "Exchange Server 2013 or later detected on HQ-CAS01" in message
    assert "Version 15.0 (Build 1497.2)" in message and "Exchange 2010 only" in message
    assert "Get-MailboxDatabase" not in _cmdlets(lab)  # refused before reading anything


def test_a_2013_server_elsewhere_stays_visible_with_its_version(
    client: AgentClient, organisation: Organisation
) -> None:
    data = organisation.snapshot()
    for server in data["servers"]:
        if server["name"] in ("DR-CAS02", "DR-MBX01"):
            server["version"] = "Version 15.0 (Build 1497.2)"
    organisation.load(data)
    state = read_live(client, nlb_hosts=NLB_HOSTS)
    assert state.estate.servers["dr-cas02"].version == "Version 15.0 (Build 1497.2)"
    # A 2013 mailbox server is not a CAS, but it stays visible so the plan can refuse it.
    assert state.estate.servers["dr-mbx01"].version == "Version 15.0 (Build 1497.2)"


HOSTILE = (
    "Q'uo\"te $(Remove-Item C:\\) `back`tick; semi | pipe\nnew line "
    "\u00c5ngstr\u00f6m \u0416\u0443\u043a \u65e5\u672c"
)


def test_a_hostile_database_name_arrives_byte_for_byte(
    lab: Lab, client: AgentClient, organisation: Organisation
) -> None:
    data = organisation.snapshot()
    copy = dict(next(d for d in data["databases"] if d["name"] == "HQ-DB05"))
    copy["name"] = HOSTILE
    data["databases"].append(copy)
    organisation.load(data)

    response = client.run(
        client.make_request(
            (
                protocol.Invocation(
                    "rebind",
                    "Set-MailboxDatabase",
                    {"Identity": HOSTILE, "RpcClientAccessServer": "outlook-hq.contoso.local"},
                ),
            )
        )
    )
    assert response.results[0].ok, response.results[0].error

    call = next(e for e in lab.journal.entries(["cmdlet"]) if e["cmdlet"] == "Set-MailboxDatabase")
    assert call["parameters"]["Identity"].encode("utf-8") == HOSTILE.encode("utf-8")
    stored = next(d for d in organisation.snapshot()["databases"] if d["name"] == HOSTILE)
    assert stored["rpc_client_access_server"]["shown"] == "outlook-hq.contoso.local"

    state = read_live(client, nlb_hosts=NLB_HOSTS)
    names = [db.database for db in state.estate.databases.values()]
    assert HOSTILE in names
    read_back = next(db for db in state.estate.databases.values() if db.database == HOSTILE)
    assert read_back.rpc_client_access_server == "outlook-hq.contoso.local"


# --- malformed answers: the conversion refuses what it cannot trust -------------------------


def _response(**overrides: Any) -> protocol.Response:
    objects: dict[str, tuple[dict[str, Any], ...]] = {
        "read:servers": (
            {
                "Name": "HQ-CAS01",
                "Fqdn": "hq-cas01.contoso.local",
                "Site": "contoso.local/Configuration/Sites/HQ",
                "AdminDisplayVersion": "Version 14.3 (Build 123.4)",
                "ServerRole": "ClientAccess",
            },
        ),
        "read:client-access": (
            {
                "Name": "HQ-CAS01",
                "Fqdn": "hq-cas01.contoso.local",
                "AutoDiscoverServiceInternalUri": None,
                "AutoDiscoverSiteScope": ["HQ"],
            },
        ),
        "read:arrays": (),
        "read:databases": ({"Name": "DB1", "Server": "HQ-MBX01", "RpcClientAccessServer": "x"},),
    }
    objects.update(overrides)
    results = [protocol.Result(id=k, ok=True, objects=v) for k, v in objects.items()]
    return protocol.Response(results=tuple(results), host="HQ-CAS01")


def test_a_well_formed_answer_converts() -> None:
    state = live_state_from_response(_response())
    assert state.estate.databases["db1"].rpc_client_access_server == "x"
    assert state.estate.servers["hq-cas01"].autodiscover_internal_uri is None


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"read:arrays": ({"Name": "a", "Site": "x/HQ", "Members": []},)}, "has no Fqdn"),
        (
            {"read:databases": ({"Name": 5, "Server": "S", "RpcClientAccessServer": "x"},)},
            "Name that is not text",
        ),
        (
            {
                "read:client-access": (
                    {
                        "Name": "HQ-CAS01",
                        "Fqdn": "hq-cas01.contoso.local",
                        "AutoDiscoverServiceInternalUri": None,
                        "AutoDiscoverSiteScope": [1, 2],
                    },
                )
            },
            "not a list of text",
        ),
        (
            {
                "read:client-access": (
                    {
                        "Name": "GHOST",
                        "Fqdn": "ghost.contoso.local",
                        "AutoDiscoverServiceInternalUri": None,
                        "AutoDiscoverSiteScope": [],
                    },
                )
            },
            "not among the Exchange servers",
        ),
    ],
)
def test_a_malformed_object_is_a_read_failure(override: dict[str, Any], expected: str) -> None:
    with pytest.raises(ReadFailed, match=expected):
        live_state_from_response(_response(**override))


def test_a_missing_result_is_a_read_failure_not_absence() -> None:
    response = _response()
    cut = protocol.Response(
        results=tuple(r for r in response.results if r.id != "read:databases"), host="HQ-CAS01"
    )
    with pytest.raises(ReadFailed, match=r"mailbox databases.*no result"):
        live_state_from_response(cut)
