"""Import on organisations as the field has them: hostile names, a two-domain forest, Exchange
2013 coexistence, orphaned pointers, NLB clusters that are not the array's, NLB read failures.

Each ends in the round trip (validate: no error; plan: no change), and checks that what YAML
cannot declare is said in the file and in the summary — and that the plan shows exactly that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from casdesired.lab.exchange.errors import ACCESS_DENIED, MODULE_NOT_FOUND
from importing.labimport import V15, ImportLab, cli, round_trip, site_data

HOSTILE = (
    "Q'uo\"te $(Remove-Item C:\\) `back`tick; semi | pipe\nnew line "
    "\u00c5ngstr\u00f6m \u0416\u0443\u043a \u65e5\u672c"
)
SPECIAL = [
    HOSTILE, "no", "on", "null", "1e3", "~", " lead", "trail ", "#hash", "a #b", "$(x)",
    "a*b?c[d]", "*", "- dash", "yes: no", "Ångström", "tab\there", "0o17", "'", '"', "NEL\x85",
]
"""Database names YAML (or a glob) would read as something else, were they written carelessly."""


def _database(data: dict[str, Any], name: str, server: str, rpc: dict[str, str] | None) -> None:
    data["databases"].append({"name": name, "server": server, "rpc_client_access_server": rpc,
                              "mailboxes": 3, "recovery": False})


def _array_pointer(data: dict[str, Any], site: str) -> dict[str, str]:
    array = next(a for a in data["arrays"] if a["site"] == site)
    return {"kind": "array", "shown": array["fqdn"], "target": array["guid"]}


def _hostile(data: dict[str, Any]) -> None:
    """HQ gains the special names (bound to its array), its array is named "on", and site
    Branch is renamed "Zürich #1: no" (a file name must come of it)."""
    for name in SPECIAL:
        _database(data, name, "HQ-MBX01", _array_pointer(data, "HQ"))
    next(a for a in data["arrays"] if a["site"] == "HQ")["name"] = "on"
    branch = "Zürich #1: no"
    for entry in (*data["sites"], *data["servers"], *data["arrays"]):
        if entry.get("name") == "Branch" or entry.get("site") == "Branch":
            entry["name" if "guid" in entry and "fqdn" not in entry else "site"] = branch
    for server in data["servers"]:
        server["autodiscover_site_scope"] = [
            branch if s == "Branch" else s for s in server.get("autodiscover_site_scope", [])
        ] if "autodiscover_site_scope" in server else server.get("autodiscover_site_scope")
        if server.get("autodiscover_site_scope") is None:
            server.pop("autodiscover_site_scope", None)


@pytest.mark.parametrize("patterns", [False, True], ids=["names", "patterns"])
def test_hostile_names_are_written_byte_for_byte_and_round_trip(
    lab: ImportLab, capsys: pytest.CaptureFixture[str], patterns: bool
) -> None:
    lab.edit(_hostile)
    extra = ["--patterns"] if patterns else []
    code, out, err = cli(capsys, "import", "org", *lab.options(), *extra)
    assert code == 0, out + err
    org = Path("org")
    assert (org / "zurich-1-no.yaml").exists()
    sites = site_data(org)
    assert sites["Zürich #1: no"]["servers"][0]["autodiscover"]["site_scope"] == ["Zürich #1: no"]
    hq = sites["HQ"]
    assert hq["array"]["name"] == "on"
    if patterns:
        # The seed's four are one range; the special names have no common shape: named.
        assert hq["databases"]["patterns"] == ["HQ-DB0[1-4]"]
    expected = {"HQ-DB01", "HQ-DB02", "HQ-DB03", "HQ-DB04", *SPECIAL} - (
        {"HQ-DB01", "HQ-DB02", "HQ-DB03", "HQ-DB04"} if patterns else set()
    )
    # Byte for byte: compared as strings, not by the case-insensitive, trimmed identity.
    assert sorted(hq["databases"]["names"]) == sorted(expected)
    text = (org / "hq.yaml").read_text("utf-8")
    assert "\t" not in text and "\x85" not in text  # escaped, never raw
    assert all("\n" not in line for line in text.splitlines())
    round_trip(capsys, org)


def test_a_two_domain_forest_round_trips_and_counts_every_domain(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    def child_domain(data: dict[str, Any]) -> None:
        data["sites"].append({"name": "EMEA", "guid": "0f6f5d3c-3c1b-4c7e-9a53-1b0c62f1e001"})
        data["servers"] += [
            {"name": f"EMEA-CAS0{i}", "fqdn": f"emea-cas0{i}.emea.contoso.local",
             "site": "EMEA", "roles": ["Mailbox", "ClientAccess", "HubTransport"],
             "version": "Version 14.3 (Build 123.4)", "interfaces": ["LAN", "NLB"],
             "autodiscover_internal_uri": "https://autodiscover.emea.contoso.local/"
                                          "Autodiscover/Autodiscover.xml",
             "autodiscover_site_scope": ["EMEA"]}
            for i in (1, 2)
        ]
        data["arrays"].append({
            "fqdn": "outlook-emea.emea.contoso.local", "name": "outlook-emea", "site": "EMEA",
            "guid": "0f6f5d3c-3c1b-4c7e-9a53-1b0c62f1e002",
            "legacy_dn": "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/"
                         "cn=Configuration/cn=Servers/cn=outlook-emea",
            "when_changed": "2012-02-02T16:40:03Z", "when_created": "2012-02-02T16:40:03Z",
        })
        for i in (1, 2):
            _database(data, f"EMEA-DB0{i}", "EMEA-CAS01", _array_pointer(data, "EMEA"))
            data["databases"][-1]["child_mailboxes"] = {"emea.contoso.local": 100 * i}
        data["dns_records"]["outlook-emea.emea.contoso.local"] = ["10.4.0.50"]
        data["dns_records"]["emea-cas01.emea.contoso.local"] = ["10.4.0.11"]
        data["dns_records"]["emea-cas02.emea.contoso.local"] = ["10.4.0.12"]

    lab.edit(child_domain)
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    emea = site_data(Path("org"))["EMEA"]
    assert [s["fqdn"] for s in emea["servers"]] == [
        "emea-cas01.emea.contoso.local", "emea-cas02.emea.contoso.local"
    ]
    assert emea["array"]["load_balancer"] == {"type": "external", "vip": "10.4.0.50"}
    # 2,404 in the seed (its child-domain mailboxes included), 6 + 300 here.
    assert "Mailboxes: 2,710 in the organisation (every domain of the forest)." in out
    assert "EMEA: 2 server(s), array outlook-emea.emea.contoso.local" in out
    assert "2 database(s) (2 by name), 306 mailbox(es)" in out
    round_trip(capsys, Path("org"))


def test_coexistence_and_orphans_are_said_and_are_all_the_first_plan_shows(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    def migrating(data: dict[str, Any]) -> None:
        newer = dict(next(s for s in data["servers"] if s["name"] == "HQ-CAS02"))
        newer.update(name="HQ-EX15", fqdn="hq-ex15.contoso.local", version=V15,
                     roles=["Mailbox", "ClientAccess"])
        data["servers"].append(newer)
        _database(data, "HQ-DB15", "HQ-EX15", _array_pointer(data, "HQ"))
        # DR's array removed under its databases: blank RpcClientAccessServer (orphans).
        data["arrays"] = [a for a in data["arrays"] if a["site"] != "DR"]

    lab.edit(migrating)
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    hq, dr = (Path("org") / "hq.yaml").read_text(), (Path("org") / "dr.yaml").read_text()
    assert "# - HQ-EX15 runs Exchange 2013 or later (Version 15.0 (Build 1497.2)): never a" in hq
    assert "# - database HQ-DB15 is hosted on HQ-EX15, an Exchange 2013 or later server" in hq
    for name in ("DR-DB01", "DR-DB02", "DR-DB03"):
        assert f"# - database {name} (hosted on DR-MBX01) has a blank RpcClientAccessServer" in dr
        assert f"DR: database {name} (hosted on DR-MBX01) has a blank" in out
    sites = site_data(Path("org"))
    assert [s["name"] for s in sites["HQ"]["servers"]] == ["HQ-CAS01", "HQ-CAS02"]
    assert "databases" not in sites["DR"] and "array" not in sites["DR"]
    assert "HQ: HQ-EX15 runs Exchange 2013 or later" in out
    _, plan = round_trip(
        capsys, Path("org"), unmanaged={"HQ-DB15", "DR-DB01", "DR-DB02", "DR-DB03"}
    )
    # Exactly what import said, as the plan's own findings, none blocking.
    rules = sorted(f["rule"] for f in plan["findings"])
    assert rules == ["database-orphaned-pointer"] * 3 + ["exchange-2013-coexistence"]


def test_nlb_clusters_and_nodes_that_are_not_the_arrays_are_said(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    def clusters(data: dict[str, Any]) -> None:
        hq = next(c for c in data["nlb_clusters"] if c["host"] == "hq-cas01.contoso.local")
        node = dict(hq["nodes"][0])
        hq["nodes"] += [{**node, "name": "HQ-CAS02", "priority": 2},
                        {**node, "name": "HQ-MBX01", "priority": 3}]  # not a CAS
        # DR gets a cluster of its own whose VIP is not the one its array FQDN resolves to.
        dr = json.loads(json.dumps(hq))
        dr.update(host="dr-cas01.contoso.local", name="dr-old-nlb.contoso.local",
                  ip_address="10.3.0.99",
                  nodes=[{**node, "name": "DR-CAS01"}, {**node, "name": "DR-CAS02",
                                                       "priority": 2}])
        data["nlb_clusters"].append(dr)

    lab.edit(clusters)
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    sites = site_data(Path("org"))
    assert sites["HQ"]["array"]["load_balancer"] == {
        "type": "nlb", "vip": "10.1.0.50", "cluster_host": "hq-cas01.contoso.local",
        "interface": "NLB", "members": ["HQ-CAS01", "HQ-CAS02"],
    }
    hq = (Path("org") / "hq.yaml").read_text()
    assert "# - HQ-MBX01, a node of NLB cluster hq-nlb.contoso.local, is not an Exchange 2010" in hq
    assert sites["DR"]["array"]["load_balancer"] == {"type": "external", "vip": "10.3.0.50"}
    dr = (Path("org") / "dr.yaml").read_text()
    assert ("# - NLB cluster dr-old-nlb.contoso.local (VIP 10.3.0.99, nodes DR-CAS01, DR-CAS02) "
            "is") in dr
    assert "the array FQDN resolves to 10.3.0.50, not to this cluster's VIP" in " ".join(
        line.lstrip("# ") for line in dr.splitlines()
    )
    assert "Windows NLB: read on 5 CAS server(s), 3 cluster(s) found." in out
    _, plan = round_trip(capsys, Path("org"))
    assert [u["identity"] for u in plan["unmanaged"]] == ["HQ-MBX01"]  # the node, left alone


def test_a_cas_server_whose_nlb_cannot_be_read_stops_the_import(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    # NLB is read on br-cas01, dr-cas01, dr-cas02, hq-cas01, hq-cas02 in that order: the third
    # is refused (not "not a member": a cluster there would be missed).
    lab.lab.faults.update({"cmdlets": [
        {"cmdlet": "Get-NlbCluster", "message": ACCESS_DENIED, "category": "UnauthorizedAccess",
         "after": 2, "times": 1},
    ]})
    code, _, err = cli(capsys, "import", "org", *lab.options())
    assert code == 1
    assert f"could not read the NLB cluster on dr-cas02.contoso.local: {ACCESS_DENIED}" in err
    assert "leave this server's site out (--site), or run with --no-nlb" in err
    assert not Path("org").exists()


def test_a_cas_server_without_the_nlb_module_is_in_no_cluster(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    # hq-cas01 (the fourth read) has no NetworkLoadBalancingClusters module: no NLB feature.
    missing = MODULE_NOT_FOUND.format(name="NetworkLoadBalancingClusters")
    lab.lab.faults.update({"cmdlets": [
        {"cmdlet": "Get-NlbCluster", "message": missing, "category": "FileNotFoundException",
         "after": 3, "times": 1},
    ]})
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    assert "no NLB module on hq-cas01.contoso.local, taken as in no cluster" in out
    # Its cluster unseen, HQ's array is what DNS says: an external balancer at the VIP.
    lb = site_data(Path("org"))["HQ"]["array"]["load_balancer"]
    assert lb == {"type": "external", "vip": "10.1.0.50"}


def test_a_database_bound_to_another_sites_array_is_declared_there_and_noted_at_home(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.edit(lambda data: _database(data, "HQ-DB07", "HQ-MBX01", _array_pointer(data, "DR")))
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    assert "HQ-DB07" in site_data(Path("org"))["DR"]["databases"]["names"]
    assert ("# - database HQ-DB07 (hosted on HQ-MBX01) is bound to array outlook-dr.contoso.local "
            "of") in (Path("org") / "hq.yaml").read_text()
    round_trip(capsys, Path("org"))
    # Importing HQ alone, DR's array is out of scope: HQ-DB07 is said, not declared.
    code, out, err = cli(capsys, "import", "only-hq", *lab.options(), "--site", "HQ")
    assert code == 0, out + err
    assert "HQ-DB07" not in (Path("only-hq") / "hq.yaml").read_text().split("databases:")[1].split(
        "# Not declared")[0]
    assert "array outlook-dr.contoso.local of site DR, which this import leaves out" in out
    round_trip(capsys, Path("only-hq"), unmanaged={
        "HQ-DB07", "BR-DB01", "BR-DB02", "BR-DB03", "DR-DB01", "DR-DB02", "DR-DB03"
    })


def test_an_array_exchange_cannot_address_by_name_is_not_declared(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    def spaced(data: dict[str, Any]) -> None:
        next(a for a in data["arrays"] if a["site"] == "DR")["name"] = "Outlook DR"

    lab.edit(spaced)
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    dr = site_data(Path("org"))["DR"]
    assert "array" not in dr and "databases" not in dr
    text = (Path("org") / "dr.yaml").read_text()
    said = "# - array Outlook DR (outlook-dr.contoso.local) is not declared: its name holds a"
    assert said in text
    said = "# - database DR-DB01 (hosted on DR-MBX01) is bound to array outlook-dr.contoso.local,"
    assert said in text
    round_trip(capsys, Path("org"), unmanaged={"DR-DB01", "DR-DB02", "DR-DB03"})


def test_many_notes_of_one_kind_are_counted_in_the_summary_and_listed_in_the_file(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.organisation.add_databases(5, "DR", "DR-X")  # bound to outlook-dr
    lab.edit(lambda data: data.update(arrays=[a for a in data["arrays"] if a["site"] != "DR"]))
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    [line] = [x for x in out.splitlines() if "database-orphaned" in x]
    assert line.startswith("  DR: 8 × database-orphaned (DR-DB01, DR-DB02, DR-DB03, …): ")
    text = (Path("org") / "dr.yaml").read_text()
    assert text.count("has a blank RpcClientAccessServer") == 8
