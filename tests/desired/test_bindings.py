"""Resolving names and patterns against the databases that exist live."""

from __future__ import annotations

from pathlib import Path

from casdesired.desired.bindings import resolve_bindings
from casdesired.desired.loader import load_desired
from desired.helpers import EXAMPLE, ORGANISATION, org_dir

SEED = (
    [f"HQ-DB0{i}" for i in range(1, 7)]
    + [f"BR-DB0{i}" for i in range(1, 4)]
    + [f"DR-DB0{i}" for i in range(1, 4)]
)


def test_the_example_binds_all_twelve_seed_databases_to_their_sites_arrays() -> None:
    bindings, problems = resolve_bindings(load_desired(EXAMPLE), SEED)
    assert problems == []
    assert {b.database: b.rpc_client_access_server for b in bindings.values()} == {
        **{f"HQ-DB0{i}": "outlook-hq.contoso.local" for i in range(1, 7)},
        **{f"BR-DB0{i}": "outlook-branch.contoso.local" for i in range(1, 4)},
        **{f"DR-DB0{i}": "outlook-dr.contoso.local" for i in range(1, 4)},
    }
    assert set(bindings) == {name.lower() for name in SEED}


def test_patterns_are_case_insensitive_and_keep_the_live_spelling() -> None:
    bindings, _ = resolve_bindings(load_desired(EXAMPLE), ["hq-db05", "Br-Db07"])
    assert bindings["hq-db05"].database == "hq-db05"
    assert bindings["br-db07"].rpc_client_access_server == "outlook-branch.contoso.local"


def test_a_named_database_missing_live_is_an_error_and_an_empty_pattern_a_warning() -> None:
    live = [name for name in SEED if name != "DR-DB02" and not name.startswith("BR-")]
    bindings, problems = resolve_bindings(load_desired(EXAMPLE), live)
    assert "dr-db02" not in bindings
    found = {(str(p.location), p.severity.value, p.rule, p.message) for p in problems}
    assert found == {
        ("sites/dr.yaml:20:3", "error", "database-unknown", "database 'DR-DB02' does not exist"),
        (
            "sites/branch.yaml:22:3",
            "warning",
            "pattern-matches-nothing",
            "pattern 'BR-DB*' of site 'Branch' matches no database",
        ),
    }


def _two_sites(tmp_path: Path, hq_databases: str, br_databases: str) -> Path:
    def site(name: str, n: int, databases: str) -> str:
        return f"""casdesired: 1
kind: site
site: {name}
servers: [{{name: {name}-CAS1, fqdn: {name.lower()}-cas1.x.local}},
          {{name: {name}-CAS2, fqdn: {name.lower()}-cas2.x.local}}]
array: {{fqdn: outlook-{name.lower()}.x.local, load_balancer: {{type: external, vip: 10.0.{n}.1}}}}
databases:
{databases}"""

    return org_dir(
        tmp_path,
        {
            "organisation.yaml": ORGANISATION,
            "hq.yaml": site("HQ", 1, hq_databases),
            "br.yaml": site("BR", 2, br_databases),
        },
    )


def test_an_explicit_name_beats_another_sites_pattern(tmp_path: Path) -> None:
    directory = _two_sites(tmp_path, '  patterns: ["*-DB*"]\n', "  names: [BR-DB01]\n")
    bindings, problems = resolve_bindings(load_desired(directory), ["HQ-DB01", "BR-DB01"])
    assert problems == []
    assert bindings["br-db01"].rpc_client_access_server == "outlook-br.x.local"
    assert bindings["hq-db01"].rpc_client_access_server == "outlook-hq.x.local"


def test_a_database_matched_by_two_sites_patterns_is_an_error_and_left_unbound(
    tmp_path: Path,
) -> None:
    directory = _two_sites(tmp_path, '  patterns: ["DB-*"]\n', '  patterns: ["*-01"]\n')
    bindings, problems = resolve_bindings(load_desired(directory), ["DB-01", "DB-02"])
    assert set(bindings) == {"db-02"}
    [problem] = problems
    assert problem.rule == "database-pattern-conflict"
    assert "'DB-01' matches patterns of sites BR and HQ" in problem.message


def test_a_server_binding_targets_the_servers_fqdn(tmp_path: Path) -> None:
    directory = _two_sites(
        tmp_path, "  server_bindings: [{database: Legacy, server: hq-cas2}]\n", "  names: []\n"
    )
    bindings, problems = resolve_bindings(load_desired(directory), ["LEGACY"])
    assert problems == []
    assert bindings["legacy"].rpc_client_access_server == "hq-cas2.x.local"


def test_ten_thousand_databases_resolve_quickly() -> None:
    import time

    live = [f"HQ-DB{i:05d}" for i in range(10_000)]
    started = time.perf_counter()
    bindings, _ = resolve_bindings(load_desired(EXAMPLE), live)
    assert time.perf_counter() - started < 2.0
    assert len(bindings) == 0  # HQ-DB0[3-6] needs exactly five characters after HQ-DB...
