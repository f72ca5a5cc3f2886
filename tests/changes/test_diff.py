"""The diff's rules, on hand-built estates shaped like the lab's seed."""

from __future__ import annotations

from dataclasses import replace

from casdesired import model
from casdesired.changes.diff import diff_input
from casdesired.changes.types import (
    ArrayCreate,
    ArrayDelete,
    ArrayUpdate,
    AutodiscoverChange,
    BindingChange,
    NlbNodeAdd,
    NlbNodeRemove,
)
from casdesired.findings import Finding, Location, Severity
from changes.estates import MAILBOXES, desired_sites, live_estate, seed_input, server


def kinds(changes: list) -> list[tuple[str, str]]:
    return [(c.kind, c.identity) for c in changes]


def test_seed_shaped_estate_gives_the_expected_changes_in_order() -> None:
    result = diff_input(seed_input())
    assert kinds(result.changes) == [
        ("array_create", "outlook-branch.contoso.local"),
        ("nlb_node_add", "hq-cas01.contoso.local/HQ-CAS02"),
        ("autodiscover", "HQ-CAS02"),
        ("binding", "BR-DB01"),
        ("binding", "BR-DB02"),
        ("binding", "HQ-DB05"),
        ("binding", "HQ-DB06"),
    ]
    assert result.findings == ()
    rebinding = {c.database: c for c in result.changes if isinstance(c, BindingChange)}
    assert rebinding["HQ-DB05"].before_target == "hq-cas02.contoso.local"
    assert rebinding["HQ-DB05"].target == "outlook-hq.contoso.local"
    assert rebinding["HQ-DB05"].mailbox_count == MAILBOXES["HQ-DB05"]
    assert rebinding["BR-DB01"].target == "outlook-branch.contoso.local"
    add = next(c for c in result.changes if isinstance(c, NlbNodeAdd))
    assert (add.cluster_host, add.server_fqdn, add.interface) == (
        "hq-cas01.contoso.local",
        "hq-cas02.contoso.local",
        "NLB",
    )
    auto = next(c for c in result.changes if isinstance(c, AutodiscoverChange))
    assert auto.site_scope == ("HQ",) and auto.before_site_scope == ()
    assert auto.internal_uri is None  # the URI already matches: not sent


def test_in_sync_estate_has_no_changes_and_case_does_not_matter() -> None:
    live, clusters = live_estate()
    # Make live match: Branch array exists, bindings right (in other case), HQ-CAS02 in NLB.
    live.arrays["outlook-branch.contoso.local"] = model.CasArray(
        "OUTLOOK-BRANCH.contoso.local", "outlook-branch", "Branch"
    )
    for name, target in [
        ("HQ-DB05", "Outlook-HQ.Contoso.Local"),
        ("HQ-DB06", "outlook-hq"),
        ("BR-DB01", "outlook-branch.contoso.local."),
        ("BR-DB02", "OUTLOOK-BRANCH.CONTOSO.LOCAL"),
    ]:
        live.databases[model.key(name)] = replace(
            live.databases[model.key(name)], rpc_client_access_server=target
        )
    live.servers["hq-cas02"] = server("HQ-CAS02", "HQ", scope=("hq",), live=True)
    clusters["hq-cas01.contoso.local"] = replace(
        clusters["hq-cas01.contoso.local"],
        nodes=(
            model.NlbNode("HQ-CAS01", "NLB", "Converged"),
            model.NlbNode("hq-cas02", "NLB", "Converged"),
        ),
    )
    result = diff_input(seed_input(live=live, nlb=clusters))
    assert result.changes == () and result.findings == ()


def test_server_bindings_compare_name_and_fqdn_alike() -> None:
    bindings = {"hq-db05": model.DatabaseBinding("HQ-DB05", "HQ-CAS02")}
    result = diff_input(seed_input(bindings=bindings))
    assert not [c for c in result.changes if isinstance(c, BindingChange)]
    bindings = {"hq-db05": model.DatabaseBinding("HQ-DB05", "hq-cas01.contoso.local")}
    result = diff_input(seed_input(bindings=bindings))
    (change,) = [c for c in result.changes if isinstance(c, BindingChange)]
    assert change.target == "hq-cas01.contoso.local"


def test_undeclared_live_objects_are_unmanaged_and_untouched() -> None:
    live, clusters = live_estate()
    live.servers["hq-cas03"] = server("HQ-CAS03", "HQ", live=True)
    live.databases["hq-db99"] = model.DatabaseBinding(
        "HQ-DB99", "outlook-hq.contoso.local", mailbox_count=7
    )
    clusters["hq-cas01.contoso.local"] = nlb_with(
        clusters["hq-cas01.contoso.local"], ("HQ-CAS03", "Converged")
    )
    result = diff_input(seed_input(live=live, nlb=clusters))
    unmanaged = {(u.kind, u.identity) for u in result.unmanaged}
    assert {("server", "HQ-CAS03"), ("database", "HQ-DB99"), ("nlb_node", "HQ-CAS03")} <= unmanaged
    assert not [c for c in result.changes if isinstance(c, (NlbNodeRemove, ArrayDelete))]
    assert all("HQ-DB99" not in c.identity for c in result.changes)


def nlb_with(lb: model.LoadBalancer, *nodes: tuple[str, str]) -> model.LoadBalancer:
    extra = tuple(model.NlbNode(n, "NLB", s) for n, s in nodes)
    return replace(lb, nodes=tuple(sorted(lb.nodes + extra, key=lambda n: n.key)))


def test_prune_needs_site_and_policy_then_drains_and_removes_nodes() -> None:
    live, clusters = live_estate()
    live.servers["hq-cas03"] = server("HQ-CAS03", "HQ", live=True)
    clusters["hq-cas01.contoso.local"] = nlb_with(
        clusters["hq-cas01.contoso.local"], ("HQ-CAS03", "Converged")
    )
    # Site asks, policy refuses: a warning, nothing removed.
    result = diff_input(seed_input(sites=desired_sites(prune=True), live=live, nlb=clusters))
    assert [f.rule for f in result.findings] == ["prune-not-allowed"]
    assert not [c for c in result.changes if isinstance(c, NlbNodeRemove)]
    # Both agree: drain-then-remove, after the add.
    result = diff_input(
        seed_input(sites=desired_sites(prune=True), live=live, nlb=clusters, allow_prune=True)
    )
    order = kinds(result.changes)
    assert order.index(("nlb_node_add", "hq-cas01.contoso.local/HQ-CAS02")) < order.index(
        ("nlb_node_remove", "hq-cas01.contoso.local/HQ-CAS03")
    )
    remove = next(c for c in result.changes if isinstance(c, NlbNodeRemove))
    # Each step on the node itself, never -HostName from elsewhere (field §1b: a second hop);
    # then the cluster host waits for the others to reconverge (field §6).
    steps = [(i.cmdlet, dict(i.parameters), i.computer) for i in remove.invocations()]
    assert steps[0] == (
        "Stop-NlbClusterNode", {"Drain": True, "Timeout": 10}, "hq-cas03.contoso.local"
    )
    assert steps[1][0] == "Get-NlbClusterNode"
    assert remove.invocations()[1].until is not None
    assert remove.invocations()[1].until.values == ("Stopped",)
    assert steps[2] == ("Remove-NlbClusterNode", {"Force": True}, "hq-cas03.contoso.local")
    converged = remove.invocations()[3]
    assert (converged.cmdlet, converged.computer) == ("Get-NlbClusterNode",
                                                      "hq-cas01.contoso.local")
    assert converged.until is not None
    assert converged.until.values == ("Converged", "Converged(default)")


def test_pruning_the_last_converged_node_is_refused() -> None:
    live, clusters = live_estate()
    live.servers["hq-cas03"] = server("HQ-CAS03", "HQ", live=True)
    # Live: HQ-CAS01 stopped, HQ-CAS03 converged; desired members CAS01+CAS02; prune CAS03.
    clusters["hq-cas01.contoso.local"] = replace(
        clusters["hq-cas01.contoso.local"],
        nodes=(
            model.NlbNode("HQ-CAS01", "NLB", "Stopped"),
            model.NlbNode("HQ-CAS03", "NLB", "Converged"),
        ),
    )
    result = diff_input(
        seed_input(sites=desired_sites(prune=True), live=live, nlb=clusters, allow_prune=True)
    )
    blocking = [f for f in result.findings if f.blocking]
    assert [f.rule for f in blocking] == ["nlb-no-converged-node"]
    assert blocking[0].site == "HQ"
    # Every HQ change is withheld; Branch goes ahead.
    assert {c.site for c in result.changes} == {"Branch"}
    assert any(isinstance(c, NlbNodeRemove) for c in result.withheld)


def test_server_in_another_site_blocks_its_site_and_says_what_to_do() -> None:
    live, clusters = live_estate()
    live.servers["hq-cas02"] = server("HQ-CAS02", "Branch", live=True)
    result = diff_input(seed_input(live=live, nlb=clusters))
    (finding,) = [f for f in result.findings if f.rule == "server-in-other-site"]
    assert finding.blocking and finding.site == "HQ"
    assert "AD Sites and Services" in finding.message and "subnet" in finding.message
    assert finding.location == Location("sites/hq.yaml", 5, 5)
    assert {c.site for c in result.changes} == {"Branch"}
    assert {c.site for c in result.withheld} == {"HQ"}


V15 = "Version 15.0 (Build 1497.2)"


def test_a_missing_server_blocks_its_site_a_declared_exchange_2013_server_only_itself() -> None:
    # Field fact (exchange2010-field.md §7): a 2013 server is never a 2010 array member.
    live, clusters = live_estate()
    del live.servers["hq-cas02"]
    live.servers["br-cas01"] = server("BR-CAS01", "Branch", live=True, version=V15)
    result = diff_input(seed_input(live=live, nlb=clusters))
    blocking = {(f.rule, f.site, f.object_scoped) for f in result.findings if f.blocking}
    assert blocking == {("server-missing", "HQ", False), ("exchange-2013-declared", "Branch", True)}
    (declared,) = [f for f in result.findings if f.rule == "exchange-2013-declared"]
    assert declared.name == "BR-CAS01" and "never a member of an Exchange 2010 CAS array" in (
        declared.message
    )
    assert declared.location == Location("sites/branch.yaml", 5, 5)
    # Coexistence is not a site-wide stop: the rest of Branch plans; HQ (missing server) not.
    assert {c.site for c in result.changes} == {"Branch"}
    assert [k for k, _ in kinds(list(result.changes))] == ["array_create", "binding", "binding"]
    assert all("br-cas01" not in c.subjects for c in result.changes)
    assert {c.site for c in result.withheld} == {"HQ"}


def test_an_undeclared_exchange_2013_server_is_noted_and_withholds_nothing() -> None:
    live, clusters = live_estate()
    newer = server("HQ-EX15", "HQ", live=True, version=V15)
    live.servers[newer.key] = newer
    result = diff_input(seed_input(live=live, nlb=clusters))
    (note,) = [f for f in result.findings if f.rule == "exchange-2013-coexistence"]
    assert not note.blocking and note.site == "HQ"
    assert "keep the array FQDN on the Exchange 2010 VIP" in note.message
    assert result.withheld == ()
    assert kinds(diff_input(seed_input()).changes) == kinds(result.changes)


def test_a_database_on_an_exchange_2013_server_is_withheld_alone() -> None:
    live, clusters = live_estate()
    newer = server("HQ-EX15", "HQ", live=True, version=V15)
    live.servers[newer.key] = newer
    db = live.databases["hq-db05"]
    live.databases["hq-db05"] = replace(db, server="HQ-EX15")
    result = diff_input(seed_input(live=live, nlb=clusters))
    (finding,) = [f for f in result.findings if f.rule == "database-on-exchange-2013"]
    assert finding.blocking and finding.object_scoped and finding.name == "HQ-DB05"
    assert "functional only in Exchange 2010" in finding.message
    assert [c.identity for c in result.withheld] == ["HQ-DB05"]
    rebound = [c.identity for c in result.changes if isinstance(c, BindingChange)]
    assert "HQ-DB06" in rebound and "HQ-DB05" not in rebound


def test_a_blank_rpc_client_access_server_is_named_an_orphaned_pointer() -> None:
    # Field fact (§9): removing an array under its databases leaves them blank.
    live, clusters = live_estate()
    for name in ("hq-db01", "br-db02"):
        live.databases[name] = replace(live.databases[name], rpc_client_access_server="")
    orphan = model.DatabaseBinding("OLD-DB9", "", server="MBX", mailbox_count=12)
    live.databases[orphan.key] = orphan
    result = diff_input(seed_input(live=live, nlb=clusters))
    notes = {f.message.split(" ")[1]: f for f in result.findings
             if f.rule == "database-orphaned-pointer"}
    assert set(notes) == {"HQ-DB01", "BR-DB02", "OLD-DB9"}
    assert not any(f.blocking for f in notes.values())
    assert "this plan binds it to outlook-hq.contoso.local" in notes["HQ-DB01"].message
    assert "bind it to its site's array in the YAML" in notes["OLD-DB9"].message
    (fix,) = [c for c in result.changes if c.identity == "HQ-DB01"]
    assert fix.describe().startswith("rebind database HQ-DB01: (none) -> outlook-hq")
    (unmanaged,) = [u for u in result.unmanaged if u.identity == "OLD-DB9"]
    assert "orphaned pointer" in unmanaged.detail


def test_array_fqdn_change_is_an_update_flagged_with_its_mailboxes() -> None:
    sites = desired_sites()
    hq = sites[0]
    assert hq.array is not None
    sites[0] = replace(hq, array=replace(hq.array, fqdn="rpc-hq.contoso.local", name="rpc-hq"))
    bindings = {
        k: (
            replace(b, rpc_client_access_server="rpc-hq.contoso.local")
            if b.rpc_client_access_server.startswith("outlook-hq")
            else b
        )
        for k, b in seed_input().bindings.items()
    }
    result = diff_input(seed_input(sites=sites, bindings=bindings))
    (update,) = [c for c in result.changes if isinstance(c, ArrayUpdate)]
    assert update.live_fqdn == "outlook-hq.contoso.local" and update.fqdn == "rpc-hq.contoso.local"
    params = dict(update.invocations()[0].parameters)
    assert params == {
        "Identity": "outlook-hq.contoso.local",
        "Fqdn": "rpc-hq.contoso.local",
        "Name": "rpc-hq",
    }
    # HQ-DB01/02 follow the array object: no rebinding for them, but their users are counted.
    assert set(update.bound_databases) == {"HQ-DB01", "HQ-DB02"}
    assert update.bound_mailboxes == MAILBOXES["HQ-DB01"] + MAILBOXES["HQ-DB02"]
    rebound = {c.database for c in result.changes if isinstance(c, BindingChange)}
    assert rebound == {"HQ-DB05", "HQ-DB06", "BR-DB01", "BR-DB02"}
    assert not any(
        isinstance(c, (ArrayCreate, ArrayDelete)) and c.site == "HQ" for c in result.changes
    )


def test_absent_array_is_deleted_last_and_refused_while_databases_use_it() -> None:
    sites = desired_sites()
    hq = sites[0]
    assert hq.array is not None
    sites[0] = replace(hq, array=replace(hq.array, ensure=model.Ensure.ABSENT))
    only_branch = {k: b for k, b in seed_input().bindings.items() if k.startswith("br")}
    result = diff_input(seed_input(sites=sites, bindings=only_branch))
    (finding,) = [f for f in result.findings if f.rule == "array-delete-in-use"]
    assert "HQ-DB01" in finding.message and finding.site == "HQ"
    assert any(isinstance(c, ArrayDelete) for c in result.withheld)
    # Rebind them to a server in the same plan: the delete goes ahead, after the bindings.
    rebind = {
        **only_branch,
        **{
            model.key(n): model.DatabaseBinding(n, "hq-cas01.contoso.local")
            for n in ("HQ-DB01", "HQ-DB02")
        },
    }
    result = diff_input(seed_input(sites=sites, bindings=rebind))
    assert [f for f in result.findings if f.blocking] == []
    assert kinds(result.changes)[-1] == ("array_delete", "outlook-hq.contoso.local")
    (delete,) = [c for c in result.changes if isinstance(c, ArrayDelete)]
    assert dict(delete.invocations()[0].parameters) == {
        "Identity": "outlook-hq.contoso.local",
        "Confirm": False,
    }


def test_binding_findings_become_findings_of_their_site() -> None:
    diag = Finding.at(
        Location("sites/branch.yaml", 9, 7),
        Severity.ERROR,
        "database BR-DB09 does not exist",
        "database-missing",
    )
    result = diff_input(seed_input(binding_findings=[diag]))
    (finding,) = result.findings
    assert finding.site == "Branch" and finding.blocking
    assert {c.site for c in result.changes} == {"HQ"}


def test_scope_limits_the_diff_to_chosen_sites() -> None:
    sites = [s for s in desired_sites() if s.name == "Branch"]
    result = diff_input(seed_input(sites=sites, all_sites=desired_sites(), scoped=True))
    assert {c.site for c in result.changes} == {"Branch"}
    assert all(u.site in (None, "Branch") for u in result.unmanaged)


def test_missing_nlb_cluster_is_blocking() -> None:
    _, clusters = live_estate()
    del clusters["br-cas01.contoso.local"]
    result = diff_input(seed_input(nlb=clusters))
    assert [(f.rule, f.site) for f in result.findings] == [("nlb-cluster-missing", "Branch")]


Bindings = dict[str, model.DatabaseBinding]


def hq_absent_with_dbs_rebound_to_branch() -> tuple[list[model.Site], Bindings]:
    """HQ's array goes; HQ-DB01/02 (on it now) are bound by the YAML to Branch's array."""
    sites = desired_sites()
    hq = sites[0]
    assert hq.array is not None
    sites[0] = replace(hq, array=replace(hq.array, ensure=model.Ensure.ABSENT))
    bindings = {k: b for k, b in seed_input().bindings.items() if k.startswith("br")}
    for name in ("HQ-DB01", "HQ-DB02"):
        bindings[model.key(name)] = model.DatabaseBinding(name, "outlook-branch.contoso.local")
    return sites, bindings


def test_array_delete_whose_rebindings_are_withheld_is_withheld_too() -> None:
    sites, bindings = hq_absent_with_dbs_rebound_to_branch()
    # Without a problem in Branch, the rebindings run first and the delete goes ahead.
    result = diff_input(seed_input(sites=sites, bindings=bindings))
    assert [f for f in result.findings if f.blocking] == []
    assert any(isinstance(c, ArrayDelete) for c in result.changes)
    # A blocking finding in Branch withholds the rebindings (they are Branch's changes): the
    # delete would strand HQ-DB01/02 on a deleted array, so HQ is blocked as well.
    diag = Finding.at(
        Location("sites/branch.yaml", 9, 7), Severity.ERROR, "no such database", "database-missing"
    )
    result = diff_input(seed_input(sites=sites, bindings=bindings, binding_findings=[diag]))
    (finding,) = [f for f in result.findings if f.rule == "array-delete-in-use"]
    assert finding.site == "HQ" and finding.blocking
    assert "HQ-DB01" in finding.message and "HQ-DB02" in finding.message
    assert "Branch" in finding.message and "withheld" in finding.message
    assert result.changes == ()
    assert any(isinstance(c, ArrayDelete) for c in result.withheld)


def test_array_delete_in_use_with_site_names_the_site_that_rebinds() -> None:
    sites, bindings = hq_absent_with_dbs_rebound_to_branch()
    result = diff_input(
        seed_input(sites=sites[:1], all_sites=sites, bindings=bindings, scoped=True)
    )
    (finding,) = [f for f in result.findings if f.rule == "array-delete-in-use"]
    assert "site(s) Branch rebind them" in finding.message
    assert "--site Branch" in finding.message
    assert "bind them elsewhere in the YAML" not in finding.message


def test_a_declared_server_taken_out_of_members_is_drained_and_removed_without_prune() -> None:
    sites = desired_sites()
    hq = sites[0]
    assert hq.array is not None and hq.array.load_balancer is not None
    lb = hq.array.load_balancer
    only_cas01 = replace(lb, nodes=tuple(n for n in lb.nodes if n.server == "HQ-CAS01"))
    sites[0] = replace(hq, array=replace(hq.array, load_balancer=only_cas01))
    live, clusters = live_estate()
    live.servers["hq-cas03"] = server("HQ-CAS03", "HQ", live=True)
    clusters["hq-cas01.contoso.local"] = nlb_with(
        clusters["hq-cas01.contoso.local"], ("HQ-CAS02", "Converged"), ("HQ-CAS03", "Converged")
    )
    result = diff_input(seed_input(sites=sites, live=live, nlb=clusters))
    (remove,) = [c for c in result.changes if isinstance(c, NlbNodeRemove)]
    assert (remove.server, remove.server_fqdn) == ("HQ-CAS02", "hq-cas02.contoso.local")
    assert remove.action.value == "delete"  # apply needs --force for it
    assert [i.cmdlet for i in remove.invocations()] == [
        "Stop-NlbClusterNode", "Get-NlbClusterNode", "Remove-NlbClusterNode",
        "Get-NlbClusterNode",  # the others reconverge
    ]
    unmanaged = {(u.kind, u.identity) for u in result.unmanaged}
    assert ("nlb_node", "HQ-CAS03") in unmanaged  # not a declared server: not ours
    assert ("nlb_node", "HQ-CAS02") not in unmanaged
    # Never leave the cluster without a converged node: HQ-CAS01 stopped, HQ-CAS02 the last.
    clusters["hq-cas01.contoso.local"] = replace(
        clusters["hq-cas01.contoso.local"],
        nodes=(
            model.NlbNode("HQ-CAS01", "NLB", "Stopped"),
            model.NlbNode("HQ-CAS02", "NLB", "Converged"),
        ),
    )
    result = diff_input(seed_input(sites=sites, live=live, nlb=clusters))
    assert [f.rule for f in result.findings if f.blocking] == ["nlb-no-converged-node"]
    assert any(isinstance(c, NlbNodeRemove) for c in result.withheld)


def test_the_cluster_host_itself_is_not_removed_from_its_cluster() -> None:
    # The cluster is read, and its reconvergence waited on, on the cluster host (field §1b).
    sites = desired_sites()
    hq = sites[0]
    assert hq.array is not None and hq.array.load_balancer is not None
    lb = hq.array.load_balancer
    without_host = replace(lb, nodes=tuple(n for n in lb.nodes if n.server != "HQ-CAS01"))
    sites[0] = replace(hq, array=replace(hq.array, load_balancer=without_host))
    live, clusters = live_estate()
    clusters["hq-cas01.contoso.local"] = nlb_with(
        clusters["hq-cas01.contoso.local"], ("HQ-CAS02", "Converged")
    )
    result = diff_input(seed_input(sites=sites, live=live, nlb=clusters))
    (finding,) = [f for f in result.findings if f.rule == "nlb-cluster-host-removed"]
    assert finding.blocking and finding.site == "HQ"
    assert "name a member that stays as cluster_host first" in finding.message
    assert any(isinstance(c, NlbNodeRemove) for c in result.withheld)


def test_nlb_vip_and_interface_are_compared_and_unconverged_members_warned() -> None:
    live, clusters = live_estate()
    hq = "hq-cas01.contoso.local"
    clusters[hq] = replace(clusters[hq], vip="10.1.0.99")
    result = diff_input(seed_input(live=live, nlb=clusters))
    (vip,) = [f for f in result.findings if f.rule == "nlb-vip-mismatch"]
    assert vip.blocking and vip.site == "HQ"
    assert "10.1.0.99" in vip.message and "10.1.0.50" in vip.message
    assert {c.site for c in result.changes} == {"Branch"}  # HQ's changes are withheld

    live, clusters = live_estate()
    clusters[hq] = replace(clusters[hq], interface="Ethernet 2")
    result = diff_input(seed_input(live=live, nlb=clusters))
    (iface,) = [f for f in result.findings if f.rule == "nlb-interface-mismatch"]
    assert iface.blocking and iface.site == "HQ"
    assert "Ethernet 2" in iface.message and "interface NLB" in iface.message

    live, clusters = live_estate()
    clusters[hq] = replace(clusters[hq], nodes=(model.NlbNode("HQ-CAS01", "NLB", "Suspended"),))
    result = diff_input(seed_input(live=live, nlb=clusters))
    (warning,) = result.findings
    assert (warning.rule, warning.blocking, warning.site) == (
        "nlb-member-not-converged", False, "HQ"
    )
    assert "HQ-CAS01" in warning.message and "Suspended" in warning.message
    assert {c.site for c in result.changes} == {"HQ", "Branch"}  # a warning withholds nothing


def test_a_cas_declared_in_the_wrong_site_is_not_also_unmanaged_in_its_live_site() -> None:
    live, clusters = live_estate()
    live.servers["hq-cas02"] = server("HQ-CAS02", "Branch", live=True)
    result = diff_input(seed_input(live=live, nlb=clusters))
    assert [f.rule for f in result.findings] == ["server-in-other-site"]
    assert ("server", "HQ-CAS02") not in {(u.kind, u.identity) for u in result.unmanaged}


def test_absent_array_with_an_fqdn_the_live_array_does_not_have_is_a_finding() -> None:
    sites = desired_sites()
    hq = sites[0]
    assert hq.array is not None
    sites[0] = replace(
        hq, array=replace(hq.array, fqdn="old-hq.contoso.local", ensure=model.Ensure.ABSENT)
    )
    result = diff_input(seed_input(sites=sites))
    (finding,) = [f for f in result.findings if f.rule == "array-absent-other-fqdn"]
    assert finding.site == "HQ" and not finding.blocking
    assert "old-hq.contoso.local" in finding.message
    assert "outlook-hq.contoso.local" in finding.message and "nothing is deleted" in finding.message
    assert not [c for c in result.changes if isinstance(c, ArrayDelete)]


def test_nlb_add_sends_the_cluster_interface_and_the_new_node_interface_apart() -> None:
    sites = desired_sites()
    hq = sites[0]
    assert hq.array is not None and hq.array.load_balancer is not None
    lb = hq.array.load_balancer
    nodes = tuple(
        replace(n, interface="Ethernet 3") if n.server == "HQ-CAS02" else n for n in lb.nodes
    )
    sites[0] = replace(hq, array=replace(hq.array, load_balancer=replace(lb, nodes=nodes)))
    (add,) = [c for c in diff_input(seed_input(sites=sites)).changes if isinstance(c, NlbNodeAdd)]
    params = dict(add.invocations()[0].parameters)
    assert (params["InterfaceName"], params["NewNodeInterface"]) == ("NLB", "Ethernet 3")
    # No declared cluster interface: the cluster's own (as read), never the new node's.
    bare = replace(lb, nodes=nodes, interface=None)
    sites[0] = replace(hq, array=replace(hq.array, load_balancer=bare))
    (add,) = [c for c in diff_input(seed_input(sites=sites)).changes if isinstance(c, NlbNodeAdd)]
    assert (add.interface, add.node_interface) == ("NLB", "Ethernet 3")
