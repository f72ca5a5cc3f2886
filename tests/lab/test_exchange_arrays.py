"""CAS array cmdlets against the contoso seed: identities, defaults, rules and error texts."""

from __future__ import annotations

from typing import Any

import pytest

from casdesired.agent.protocol import Invocation, Request, Result
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.testing import call, run_request

PROPS = ("Name", "Fqdn", "Site", "SiteName", "Members", "Guid", "ExchangeLegacyDN",
         "DistinguishedName")


@pytest.fixture
def org() -> Organisation:
    return Organisation.from_seed()


def without_log(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The organisation without its admin audit log (which records even a failed attempt)."""
    return {k: v for k, v in snapshot.items() if k != "admin_audit_log"}


def logged_since(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, bool]]:
    """The audit entries written between two snapshots: (cmdlet, succeeded)."""
    old = len(before["admin_audit_log"]["entries"])
    return [(e["cmdlet"], e["succeeded"]) for e in after["admin_audit_log"]["entries"][old:]]


def one(org: Organisation, cmdlet: str, params: dict[str, Any] | None = None,
        props: tuple[str, ...] = PROPS) -> Result:
    response = call(org, Invocation("1", cmdlet, params or {}, props))
    assert response.fatal is None
    assert len(response.results) == 1
    return response.results[0]


def arrays(org: Organisation) -> dict[str, dict[str, Any]]:
    result = one(org, "Get-ClientAccessArray")
    assert result.ok
    return {str(o["Fqdn"]): dict(o) for o in result.objects}


def test_seed_arrays_with_computed_members_and_canonical_site(org: Organisation) -> None:
    found = arrays(org)
    assert set(found) == {"outlook-hq.contoso.local", "outlook-dr.contoso.local"}
    hq = found["outlook-hq.contoso.local"]
    assert hq["Name"] == "outlook-hq"
    assert hq["Site"] == "contoso.local/Configuration/Sites/HQ"
    assert hq["SiteName"] == "HQ"
    assert hq["Members"] == ["HQ-CAS01", "HQ-CAS02"]  # computed: the site's CAS, not MBX
    assert str(hq["DistinguishedName"]).startswith(
        "CN=outlook-hq,CN=Arrays,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
    )
    assert str(hq["DistinguishedName"]).endswith(",DC=contoso,DC=local")
    assert hq["ExchangeLegacyDN"] == (
        "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration"
        "/cn=Servers/cn=outlook-hq"
    )


@pytest.mark.parametrize("form", ["fqdn", "FQDN-upper", "name", "guid", "braced-guid", "dn",
                                  "legacydn"])
def test_every_identity_form_finds_the_array(org: Organisation, form: str) -> None:
    hq = arrays(org)["outlook-hq.contoso.local"]
    identity = {
        "fqdn": "outlook-hq.contoso.local",
        "FQDN-upper": "OUTLOOK-HQ.CONTOSO.LOCAL",
        "name": "outlook-hq",
        "guid": hq["Guid"],
        "braced-guid": "{" + str(hq["Guid"]) + "}",
        "dn": hq["DistinguishedName"],
        "legacydn": hq["ExchangeLegacyDN"],
    }[form]
    result = one(org, "Get-ClientAccessArray", {"Identity": identity})
    assert result.ok, result.error
    assert [o["Fqdn"] for o in result.objects] == ["outlook-hq.contoso.local"]


def test_name_with_spaces_is_not_a_valid_identity(org: Organisation) -> None:
    created = one(org, "New-ClientAccessArray",
                  {"Name": "Branch Array", "Fqdn": "outlook-br.contoso.local", "Site": "Branch"})
    assert created.ok, created.error
    by_name = one(org, "Get-ClientAccessArray", {"Identity": "Branch Array"})
    assert not by_name.ok and by_name.error is not None
    assert "'Branch Array' is not a valid value for the identity." in by_name.error.message
    assert by_name.error.category == "ParameterBindingException"
    by_fqdn = one(org, "Get-ClientAccessArray", {"Identity": "outlook-br.contoso.local"})
    assert [o["Name"] for o in by_fqdn.objects] == ["Branch Array"]


def test_unknown_array_is_not_found_with_exchanges_text(org: Organisation) -> None:
    result = one(org, "Get-ClientAccessArray", {"Identity": "nowhere.contoso.local"})
    assert result.error is not None
    assert result.error.message == (
        "The operation couldn't be performed because object 'nowhere.contoso.local' couldn't "
        "be found on 'DC01.contoso.local'."
    )
    assert result.error.category == "ManagementObjectNotFoundException"
    assert result.error.target == "nowhere.contoso.local"


def test_new_array_defaults_name_to_host_label_and_gets_members(org: Organisation) -> None:
    result = one(org, "New-ClientAccessArray", {"Fqdn": "outlook-br.contoso.local",
                                                "Site": "Branch"})
    assert result.ok, result.error
    (created,) = result.objects
    assert created["Name"] == "outlook-br"
    assert created["Members"] == ["BR-CAS01"]
    assert created["Site"] == "contoso.local/Configuration/Sites/Branch"
    assert "outlook-br.contoso.local" in arrays(org)


def test_new_array_accepts_site_by_dn_and_guid(org: Organisation) -> None:
    sites = {s["name"]: s for s in org.snapshot()["sites"]}
    by_dn = one(org, "New-ClientAccessArray", {
        "Fqdn": "outlook-br.contoso.local",
        "Site": "CN=Branch,CN=Sites,CN=Configuration,DC=contoso,DC=local"})
    assert by_dn.ok, by_dn.error
    one(org, "Remove-ClientAccessArray", {"Identity": "outlook-br.contoso.local",
                                          "Confirm": False})
    by_guid = one(org, "New-ClientAccessArray", {"Fqdn": "outlook-br.contoso.local",
                                                 "Site": sites["Branch"]["guid"]})
    assert by_guid.ok, by_guid.error


def test_new_array_requires_fqdn_and_site(org: Organisation) -> None:
    result = one(org, "New-ClientAccessArray", {"Name": "x"})
    assert result.error is not None
    assert result.error.message == (
        "Cannot process command because of one or more missing mandatory parameters: Fqdn Site."
    )


def test_new_array_in_unknown_site_fails_and_changes_nothing(org: Organisation) -> None:
    before = org.snapshot()
    result = one(org, "New-ClientAccessArray", {"Fqdn": "x.contoso.local", "Site": "Mars"})
    assert result.error is not None
    assert result.error.category == "ManagementObjectNotFoundException"
    assert "'Mars'" in result.error.message
    after = org.snapshot()
    # Only the admin audit log changed: the agent's session setting, and the failed attempt.
    assert logged_since(before, after) == [
        ("Set-AdServerSettings", True), ("New-ClientAccessArray", False)
    ]
    assert without_log(after) == without_log(before)


@pytest.mark.parametrize("name", ["HQ-CAS01", "hq-mbx01", "OUTLOOK-DR"])
def test_name_colliding_with_a_server_or_array_is_rejected(org: Organisation, name: str) -> None:
    result = one(org, "New-ClientAccessArray",
                 {"Name": name, "Fqdn": "outlook-br.contoso.local", "Site": "Branch"})
    assert result.error is not None
    assert result.error.category == "ADObjectAlreadyExistsException"
    assert "already exists" in result.error.message
    assert "outlook-br.contoso.local" not in arrays(org)


def test_fqdn_equal_to_a_servers_fqdn_collides_through_the_default_name(
    org: Organisation,
) -> None:
    result = one(org, "New-ClientAccessArray", {"Fqdn": "br-cas01.contoso.local",
                                                "Site": "Branch"})
    assert result.error is not None
    assert result.error.category == "ADObjectAlreadyExistsException"


def test_one_array_per_site_is_enforced_and_is_a_switch(org: Organisation) -> None:
    params = {"Name": "second-hq", "Fqdn": "second.contoso.local", "Site": "HQ"}
    result = one(org, "New-ClientAccessArray", params)
    assert result.error is not None
    assert result.error.message == (
        "The Active Directory site 'HQ' already has a client access array "
        "(outlook-hq.contoso.local). Only one client access array is allowed per Active "
        "Directory site."
    )
    moved = one(org, "Set-ClientAccessArray", {"Identity": "outlook-dr.contoso.local",
                                               "Site": "HQ"})
    assert moved.error is not None and "already has a client access array" in moved.error.message
    org.configure(one_array_per_site=False)
    assert one(org, "New-ClientAccessArray", params).ok


def test_name_longer_than_64_characters_is_rejected(org: Organisation) -> None:
    result = one(org, "New-ClientAccessArray",
                 {"Name": "n" * 65, "Fqdn": "outlook-br.contoso.local", "Site": "Branch"})
    assert result.error is not None
    assert "The maximum length is 64 and the length of the value provided is 65." in (
        result.error.message
    )


def test_invalid_fqdn_fails_binding(org: Organisation) -> None:
    result = one(org, "New-ClientAccessArray", {"Fqdn": "not a host!", "Site": "Branch"})
    assert result.error is not None
    assert result.error.message.startswith(
        "Cannot bind parameter 'Fqdn'. Cannot convert value \"not a host!\" to type "
        "\"Microsoft.Exchange.Data.Fqdn\"."
    )


def test_set_array_changes_fqdn_and_name_and_keeps_legacy_dn(org: Organisation) -> None:
    before = arrays(org)["outlook-hq.contoso.local"]
    result = one(org, "Set-ClientAccessArray", {"Identity": "outlook-hq.contoso.local",
                                                "Fqdn": "mapi-hq.contoso.local",
                                                "Name": "mapi-hq"})
    assert result.ok and result.objects == ()
    after = arrays(org)["mapi-hq.contoso.local"]
    assert after["Name"] == "mapi-hq"
    assert after["Guid"] == before["Guid"]
    assert after["ExchangeLegacyDN"] == before["ExchangeLegacyDN"]
    assert str(after["DistinguishedName"]).startswith("CN=mapi-hq,")


def test_set_array_with_nothing_to_change_warns_like_exchange(org: Organisation) -> None:
    request = Request(invocations=(Invocation(
        "1", "Set-ClientAccessArray",
        {"Identity": "outlook-hq.contoso.local", "Fqdn": "outlook-hq.contoso.local"}),))
    stdout = run_request(org, request).stdout
    assert ("WARNING: The command completed successfully but no settings of 'outlook-hq' have "
            "been modified.") in stdout


def test_remove_array_prompts_unless_confirm_false(org: Organisation) -> None:
    refused = one(org, "Remove-ClientAccessArray", {"Identity": "outlook-dr.contoso.local"})
    assert refused.error is not None
    assert refused.error.message == (
        "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not "
        "available."
    )
    assert "outlook-dr.contoso.local" in arrays(org)
    explicit = one(org, "Remove-ClientAccessArray", {"Identity": "outlook-dr.contoso.local",
                                                     "Confirm": True})
    assert explicit.error is not None and "NonInteractive" in explicit.error.message
    removed = one(org, "Remove-ClientAccessArray", {"Identity": "outlook-dr.contoso.local",
                                                    "Confirm": False})
    assert removed.ok, removed.error
    assert "outlook-dr.contoso.local" not in arrays(org)


def test_whatif_changes_nothing(org: Organisation) -> None:
    before = org.snapshot()
    result = one(org, "Remove-ClientAccessArray", {"Identity": "outlook-dr.contoso.local",
                                                   "WhatIf": True})
    assert result.ok
    after = org.snapshot()
    assert logged_since(before, after) == [("Set-AdServerSettings", True)]  # -WhatIf: no entry
    assert without_log(after) == without_log(before)


def test_get_array_filtered_by_site(org: Organisation) -> None:
    result = one(org, "Get-ClientAccessArray", {"Site": "DR"})
    assert [o["Fqdn"] for o in result.objects] == ["outlook-dr.contoso.local"]
    assert one(org, "Get-ClientAccessArray", {"Site": "Branch"}).objects == ()


def test_undocumented_parameter_is_rejected_with_powershells_text(org: Organisation) -> None:
    result = one(org, "New-ClientAccessArray", {"Fqdn": "a.contoso.local", "Site": "Branch",
                                                "Members": ["BR-CAS01"]})
    assert result.error is not None
    assert result.error.message == "A parameter cannot be found that matches parameter name "\
        "'Members'."
    assert result.error.category == "ParameterBindingException"
    assert "a.contoso.local" not in arrays(org)


def test_parameter_names_are_case_insensitive_but_not_duplicable(org: Organisation) -> None:
    assert one(org, "get-clientaccessarray", {"identity": "outlook-hq"}).ok
    twice = one(org, "Get-ClientAccessArray", {"Identity": "outlook-hq", "IDENTITY": "x"})
    assert twice.error is not None
    assert "parameter 'Identity' is specified more than once" in twice.error.message


def _rpc_of(org: Organisation, database: str) -> object:
    (result,) = call(org, Invocation("1", "Get-MailboxDatabase", {"Identity": database},
                                     ("Name", "RpcClientAccessServer"))).results
    return result.objects[0]["RpcClientAccessServer"]


def test_removing_an_array_in_use_leaves_its_databases_blank_orphaned_pointers(
    org: Organisation,
) -> None:
    # Field fact (exchange2010-field.md §9): the pointer is a legacyDN that no longer resolves,
    # so Get-MailboxDatabase shows an empty RpcClientAccessServer. Exchange does not refuse.
    assert _rpc_of(org, "DR-DB01") == "outlook-dr.contoso.local"
    removed = one(org, "Remove-ClientAccessArray", {"Identity": "outlook-dr.contoso.local",
                                                    "Confirm": False})
    assert removed.ok, removed.error
    assert _rpc_of(org, "DR-DB01") == ""
    org.configure(orphans_show_blank=False)  # the other reading: the FQDN it had
    assert _rpc_of(org, "DR-DB01") == "outlook-dr.contoso.local"


def test_the_open_switch_refuses_to_remove_an_array_in_use(org: Organisation) -> None:
    org.configure(remove_array_in_use_refused=True)
    refused = one(org, "Remove-ClientAccessArray", {"Identity": "outlook-dr.contoso.local",
                                                    "Confirm": False})
    assert refused.error is not None and "change their RpcClientAccessServer first" in (
        refused.error.message
    )
    assert "outlook-dr.contoso.local" in arrays(org)
