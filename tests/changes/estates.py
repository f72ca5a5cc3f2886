"""Hand-built desired and live estates for diff and plan tests (the seed's shape, small)."""

from __future__ import annotations

from dataclasses import replace

from casdesired import model
from casdesired.changes.changeset import ChangeSet
from casdesired.changes.diff import DiffInput
from casdesired.findings import Finding, Location
from casdesired.plan.plan import Plan

AUTODISCOVER = "https://autodiscover.contoso.local/Autodiscover/Autodiscover.xml"
V14 = "Version 14.3 (Build 123.4)"


def server(
    name: str,
    site: str,
    *,
    scope: tuple[str, ...] | None = None,
    live: bool = False,
    version: str = V14,
) -> model.CasServer:
    return model.CasServer(
        name=name,
        fqdn=f"{name.lower()}.contoso.local",
        site=site,
        autodiscover_internal_uri=AUTODISCOVER,
        autodiscover_site_scope=scope if scope is not None else (site,),
        version=version if live else None,
        source=None if live else Location(f"sites/{site.lower()}.yaml", 5, 5),
    )


def nlb(
    host: str, vip: str, members: list[str], *, states: dict[str, str] | None = None
) -> model.LoadBalancer:
    return model.LoadBalancer(
        kind=model.LoadBalancerKind.NLB,
        vip=vip,
        cluster_host=host,
        interface="NLB",
        nodes=tuple(
            model.NlbNode(m, "NLB", (states or {}).get(m)) for m in sorted(members, key=model.key)
        ),
    )


def desired_sites(*, prune: bool = False) -> list[model.Site]:
    hq = model.Site(
        "HQ",
        servers=(server("HQ-CAS01", "HQ"), server("HQ-CAS02", "HQ")),
        array=model.CasArray(
            "outlook-hq.contoso.local",
            "outlook-hq",
            "HQ",
            load_balancer=nlb("hq-cas01.contoso.local", "10.1.0.50", ["HQ-CAS01", "HQ-CAS02"]),
        ),
        prune=prune,
        source=Location("sites/hq.yaml", 1, 1),
    )
    branch = model.Site(
        "Branch",
        servers=(server("BR-CAS01", "Branch"),),
        array=model.CasArray(
            "outlook-branch.contoso.local",
            "outlook-branch",
            "Branch",
            load_balancer=nlb("br-cas01.contoso.local", "10.2.0.50", ["BR-CAS01"]),
        ),
        source=Location("sites/branch.yaml", 1, 1),
    )
    return [hq, branch]


MAILBOXES = {
    "HQ-DB01": 120,
    "HQ-DB02": 80,
    "HQ-DB05": 300,
    "HQ-DB06": 45,
    "BR-DB01": 20,
    "BR-DB02": 33,
}


def live_estate() -> tuple[model.Estate, dict[str, model.LoadBalancer]]:
    servers = [
        server("HQ-CAS01", "HQ", live=True),
        server("HQ-CAS02", "HQ", scope=(), live=True),
        server("BR-CAS01", "Branch", live=True),
    ]
    arrays = [model.CasArray("outlook-hq.contoso.local", "outlook-hq", "HQ")]
    targets = {
        "HQ-DB01": "outlook-hq.contoso.local",
        "HQ-DB02": "outlook-hq.contoso.local",
        "HQ-DB05": "hq-cas02.contoso.local",
        "HQ-DB06": "hq-cas02.contoso.local",
        "BR-DB01": "br-cas01.contoso.local",
        "BR-DB02": "br-cas01.contoso.local",
    }
    dbs = [
        model.DatabaseBinding(name, target, server="MBX", mailbox_count=MAILBOXES[name])
        for name, target in targets.items()
    ]
    estate = model.Estate.build(extra_servers=servers, extra_arrays=arrays, databases=dbs)
    clusters = {
        "hq-cas01.contoso.local": nlb(
            "hq-cas01.contoso.local", "10.1.0.50", ["HQ-CAS01"], states={"HQ-CAS01": "Converged"}
        ),
        "br-cas01.contoso.local": nlb(
            "br-cas01.contoso.local", "10.2.0.50", ["BR-CAS01"], states={"BR-CAS01": "Converged"}
        ),
    }
    return estate, clusters


def desired_bindings() -> dict[str, model.DatabaseBinding]:
    out = {}
    for name in ("HQ-DB01", "HQ-DB02", "HQ-DB05", "HQ-DB06"):
        out[model.key(name)] = model.DatabaseBinding(name, "outlook-hq.contoso.local")
    for name in ("BR-DB01", "BR-DB02"):
        out[model.key(name)] = model.DatabaseBinding(name, "outlook-branch.contoso.local")
    return out


def seed_input(**overrides: object) -> DiffInput:
    live, clusters = live_estate()
    base = DiffInput(sites=desired_sites(), bindings=desired_bindings(), live=live, nlb=clusters)
    return replace(base, **overrides)  # type: ignore[arg-type]


def plan_of(
    changeset: ChangeSet,
    *,
    live_fingerprint: str = "sha256:" + "a" * 64,
    desired_digest: str = "b" * 64,
    extra_findings: tuple[Finding, ...] = (),
) -> Plan:
    """A plan of a hand-built diff, as ``casdesired.plan.build.assemble`` fills it (without
    the live state's per-object fingerprints and thresholds a real read brings)."""
    return Plan(
        organisation="contoso",
        endpoint="lab",
        live_fingerprint=live_fingerprint,
        desired_digest=desired_digest,
        changes=changeset.changes,
        findings=(*changeset.findings, *extra_findings),
        withheld=changeset.withheld,
        unmanaged=changeset.unmanaged,
        sites=changeset.sites,
    )
