"""Servers, Autodiscover, mailbox databases and mailboxes against the contoso seed."""

from __future__ import annotations

from typing import Any

import pytest

from casdesired.agent.framing import decode_response
from casdesired.agent.protocol import Invocation, Request, Result
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.testing import call, run_request

AUTODISCOVER = "https://autodiscover.contoso.local/Autodiscover/Autodiscover.xml"


@pytest.fixture
def org() -> Organisation:
    return Organisation.from_seed()


def one(org: Organisation, cmdlet: str, params: dict[str, Any] | None = None,
        props: tuple[str, ...] = ("Name",)) -> Result:
    (result,) = call(org, Invocation("1", cmdlet, params or {}, props)).results
    return result


def by_name(result: Result) -> dict[str, dict[str, Any]]:
    assert result.ok, result.error
    return {str(o["Name"]): dict(o) for o in result.objects}


def test_exchange_servers_as_seeded(org: Organisation) -> None:
    props = ("Name", "Fqdn", "Site", "ServerRole", "AdminDisplayVersion",
             "IsClientAccessServer", "IsMailboxServer")
    servers = by_name(one(org, "Get-ExchangeServer", props=props))
    assert sorted(servers) == ["BR-CAS01", "DR-CAS01", "DR-CAS02", "DR-MBX01", "HQ-CAS01",
                               "HQ-CAS02", "HQ-MBX01", "HQ-MBX02"]
    assert servers["BR-CAS01"] == {
        "Name": "BR-CAS01",
        "Fqdn": "br-cas01.contoso.local",
        "Site": "contoso.local/Configuration/Sites/Branch",
        "ServerRole": "Mailbox, ClientAccess, HubTransport",
        "AdminDisplayVersion": "Version 14.3 (Build 123.4)",
        "IsClientAccessServer": True,
        "IsMailboxServer": True,
    }
    assert servers["HQ-MBX01"]["IsClientAccessServer"] is False


def test_exchange_server_by_fqdn_and_unknown(org: Organisation) -> None:
    found = one(org, "Get-ExchangeServer", {"Identity": "hq-cas02.contoso.local"})
    assert [o["Name"] for o in found.objects] == ["HQ-CAS02"]
    missing = one(org, "Get-ExchangeServer", {"Identity": "XX-CAS09"})
    assert missing.error is not None
    assert missing.error.category == "ManagementObjectNotFoundException"


def test_client_access_servers_and_autodiscover_drift(org: Organisation) -> None:
    props = ("Name", "Fqdn", "AutoDiscoverServiceInternalUri", "AutoDiscoverSiteScope")
    cas = by_name(one(org, "Get-ClientAccessServer", props=props))
    assert sorted(cas) == ["BR-CAS01", "DR-CAS01", "DR-CAS02", "HQ-CAS01", "HQ-CAS02"]
    assert cas["HQ-CAS01"]["AutoDiscoverSiteScope"] == ["HQ"]
    assert cas["HQ-CAS02"]["AutoDiscoverSiteScope"] == []
    assert {c["AutoDiscoverServiceInternalUri"] for c in cas.values()} == {AUTODISCOVER}
    mbx = one(org, "Get-ClientAccessServer", {"Identity": "HQ-MBX01"})
    assert mbx.error is not None and mbx.error.category == "ManagementObjectNotFoundException"


def test_set_client_access_server_scope_and_uri(org: Organisation) -> None:
    result = one(org, "Set-ClientAccessServer", {
        "Identity": "HQ-CAS02", "AutoDiscoverSiteScope": ["HQ", "Branch"],
        "AutoDiscoverServiceInternalUri": "https://ad.contoso.local/Autodiscover/Autodiscover.xml",
    })
    assert result.ok, result.error
    props = ("AutoDiscoverSiteScope", "AutoDiscoverServiceInternalUri")
    (after,) = one(org, "Get-ClientAccessServer", {"Identity": "HQ-CAS02"}, props).objects
    assert after["AutoDiscoverSiteScope"] == ["HQ", "Branch"]
    assert after["AutoDiscoverServiceInternalUri"].startswith("https://ad.contoso.local/")
    one(org, "Set-ClientAccessServer", {"Identity": "HQ-CAS02", "AutoDiscoverSiteScope": "HQ",
                                        "AutoDiscoverServiceInternalUri": None})
    (cleared,) = one(org, "Get-ClientAccessServer", {"Identity": "HQ-CAS02"}, props).objects
    assert cleared == {"AutoDiscoverSiteScope": ["HQ"], "AutoDiscoverServiceInternalUri": None}


def test_set_client_access_server_rejects_a_relative_uri(org: Organisation) -> None:
    result = one(org, "Set-ClientAccessServer", {"Identity": "HQ-CAS02",
                                                 "AutoDiscoverServiceInternalUri": "autodiscover"})
    assert result.error is not None
    assert "Invalid URI: The format of the URI could not be determined." in result.error.message


def test_mailbox_databases_as_seeded(org: Organisation) -> None:
    props = ("Name", "Server", "RpcClientAccessServer", "MasterServerOrAvailabilityGroup",
             "Recovery")
    dbs = by_name(one(org, "Get-MailboxDatabase", props=props))
    assert len(dbs) == 12
    assert dbs["HQ-DB01"] == {"Name": "HQ-DB01", "Server": "HQ-MBX01",
                              "RpcClientAccessServer": "outlook-hq.contoso.local",
                              "MasterServerOrAvailabilityGroup": "HQ-MBX01", "Recovery": False}
    assert dbs["HQ-DB05"]["RpcClientAccessServer"] == "hq-cas02.contoso.local"
    assert dbs["HQ-DB06"]["Server"] == "HQ-MBX02"
    assert dbs["BR-DB02"]["RpcClientAccessServer"] == "br-cas01.contoso.local"
    assert dbs["DR-DB03"]["RpcClientAccessServer"] == "outlook-dr.contoso.local"


@pytest.mark.parametrize("target", ["outlook-hq.contoso.local", "outlook-hq"])
def test_rebinding_a_database_to_the_array(org: Organisation, target: str) -> None:
    result = one(org, "Set-MailboxDatabase", {"Identity": "HQ-DB05",
                                              "RpcClientAccessServer": target})
    assert result.ok, result.error
    (db,) = one(org, "Get-MailboxDatabase", {"Identity": "HQ-DB05"},
                ("RpcClientAccessServer",)).objects
    assert db["RpcClientAccessServer"] == "outlook-hq.contoso.local"


@pytest.mark.parametrize("target", ["HQ-CAS01", "hq-cas01.contoso.local"])
def test_binding_to_a_cas_server_shows_its_fqdn(org: Organisation, target: str) -> None:
    assert one(org, "Set-MailboxDatabase", {"Identity": "HQ-DB01",
                                            "RpcClientAccessServer": target}).ok
    (db,) = one(org, "Get-MailboxDatabase", {"Identity": "HQ-DB01"},
                ("RpcClientAccessServer",)).objects
    assert db["RpcClientAccessServer"] == "hq-cas01.contoso.local"


def test_binding_to_a_non_cas_or_unknown_target_fails(org: Organisation) -> None:
    mbx = one(org, "Set-MailboxDatabase", {"Identity": "HQ-DB01",
                                           "RpcClientAccessServer": "HQ-MBX01"})
    assert mbx.error is not None and "Client Access server role" in mbx.error.message
    unknown = one(org, "Set-MailboxDatabase", {"Identity": "HQ-DB01",
                                               "RpcClientAccessServer": "nope.contoso.local"})
    assert unknown.error is not None
    assert unknown.error.category == "ManagementObjectNotFoundException"
    (hq_db01,) = [d for d in org.snapshot()["databases"] if d["name"] == "HQ-DB01"]
    assert hq_db01["rpc_client_access_server"]["kind"] == "array"  # unchanged


def test_bound_databases_follow_an_array_fqdn_change_unless_switched(org: Organisation) -> None:
    def shown() -> str:
        (db,) = one(org, "Get-MailboxDatabase", {"Identity": "DR-DB01"},
                    ("RpcClientAccessServer",)).objects
        return str(db["RpcClientAccessServer"])

    one(org, "Set-ClientAccessArray", {"Identity": "outlook-dr.contoso.local",
                                       "Fqdn": "mapi-dr.contoso.local"})
    assert shown() == "mapi-dr.contoso.local"
    org.configure(databases_follow_array_fqdn=False)
    one(org, "Set-ClientAccessArray", {"Identity": "mapi-dr.contoso.local",
                                       "Fqdn": "rpc-dr.contoso.local"})
    assert shown() == "outlook-dr.contoso.local"


def test_mailbox_counts_per_database_with_unlimited(org: Organisation) -> None:
    response = call(org, Invocation("m", "Get-Mailbox", {"ResultSize": "Unlimited"},
                                    group_by="Database"))
    (result,) = response.results
    assert result.groups is not None
    assert result.groups["HQ-DB03"] == 450
    assert result.groups["BR-DB02"] == 20
    # The agent views the whole forest: the child domain's mailboxes count too.
    assert sum(result.groups.values()) == sum(
        d["mailboxes"] + sum((d.get("child_mailboxes") or {}).values())
        for d in org.snapshot()["databases"]
    )


def test_the_recipient_scope_is_the_servers_own_domain_unless_the_session_views_the_forest(
    org: Organisation,
) -> None:
    # Field fact §3: Set-AdServerSettings lives in the session. Without it (a session that
    # never ran it), only the root domain's mailboxes are seen.
    from casdesired.lab.exchange.binding import Session

    output = org.invoke("Get-Mailbox", {"Database": "HQ-DB05", "ResultSize": "Unlimited"},
                        frozenset({"exchange"}), Session(org.hostname))
    assert len(list(output.objects)) == 164
    forest = Session(org.hostname, view_entire_forest=True)
    output = org.invoke("Get-Mailbox", {"Database": "HQ-DB05", "ResultSize": "Unlimited"},
                        frozenset({"exchange"}), forest)
    names = [str(o["Name"]) for o in output.objects]
    assert len(names) == 176 and names[-1] == "HQ-DB05 EMEA User 0012"


def test_get_mailbox_without_result_size_stops_at_1000_and_warns(org: Organisation) -> None:
    request = Request(invocations=(Invocation("m", "Get-Mailbox", {}, group_by="Database"),))
    run = run_request(org, request)
    assert "WARNING: By default, only the first 1000 items are returned." in run.stdout
    (result,) = decode_response(run.stdout).results
    assert result.groups is not None and sum(result.groups.values()) == 1000


def test_get_mailbox_for_one_database(org: Organisation) -> None:
    result = one(org, "Get-Mailbox", {"Database": "BR-DB02", "ResultSize": "Unlimited"},
                 ("Name", "Alias", "Database"))
    assert len(result.objects) == 20
    assert result.objects[0] == {"Name": "BR-DB02 User 0001", "Alias": "br-db02.user0001",
                                 "Database": "BR-DB02"}
    small = one(org, "Get-Mailbox", {"Database": "HQ-DB01", "ResultSize": 5})
    assert len(small.objects) == 5
    bad = one(org, "Get-Mailbox", {"ResultSize": "lots"})
    assert bad.error is not None and "Cannot bind parameter 'ResultSize'" in bad.error.message


def test_a_2010_tool_cannot_rebind_a_database_hosted_on_exchange_2013(org: Organisation) -> None:
    # Field fact (exchange2010-field.md §7): objects a newer version stamped are read only.
    data = org.snapshot()
    for server in data["servers"]:
        if server["name"] == "DR-MBX01":
            server["version"] = "Version 15.0 (Build 1497.2)"
    org.load(data)
    result = one(org, "Set-MailboxDatabase", {"Identity": "DR-DB01",
                                              "RpcClientAccessServer": "dr-cas01.contoso.local"})
    assert result.error is not None
    assert result.error.message.startswith(
        "Object is read only because it was created by a future version of Exchange"
    )
    (db,) = [d for d in org.snapshot()["databases"] if d["name"] == "DR-DB01"]
    assert db["rpc_client_access_server"]["kind"] == "array"  # unchanged
