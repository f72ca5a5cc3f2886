"""`casdesired import` through the real CLI, against a lab reached like Windows over WinRM.

The round trip is the contract: import → validate (no error) → plan --detailed-exitcode (0).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from importing.labimport import SECRET, ImportLab, cli, round_trip, site_data


def test_the_example_seed_round_trips_to_no_changes(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    before = lab.commands()
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    # One execution reads Exchange, NLB on every CAS (a fan-out) and counts every mailbox.
    assert lab.commands() - before == 1
    assert "read in 1 command execution (nothing was changed)" in out
    org = Path("org")
    assert sorted(p.name for p in org.iterdir()) == [
        "branch.yaml", "dr.yaml", "hq.yaml", "organisation.yaml", "schemas"
    ]
    sites = site_data(org)
    hq = sites["HQ"]
    assert hq["servers"] == [
        {"name": "HQ-CAS01", "fqdn": "hq-cas01.contoso.local", "autodiscover": {
            "internal_uri": "https://autodiscover.contoso.local/Autodiscover/Autodiscover.xml",
            "site_scope": ["HQ"]}},
        {"name": "HQ-CAS02", "fqdn": "hq-cas02.contoso.local", "autodiscover": {
            "internal_uri": "https://autodiscover.contoso.local/Autodiscover/Autodiscover.xml",
            "site_scope": []}},
    ]
    # Windows NLB as the cluster reports it: VIP, cluster host, interface, its one node.
    assert hq["array"] == {
        "name": "outlook-hq", "fqdn": "outlook-hq.contoso.local",
        "load_balancer": {"type": "nlb", "vip": "10.1.0.50",
                          "cluster_host": "hq-cas01.contoso.local", "interface": "NLB",
                          "members": ["HQ-CAS01"]},
    }
    assert hq["databases"] == {
        "names": ["HQ-DB01", "HQ-DB02", "HQ-DB03", "HQ-DB04"],
        "server_bindings": [{"database": "HQ-DB05", "server": "HQ-CAS02"},
                            {"database": "HQ-DB06", "server": "HQ-CAS02"}],
    }
    # No NLB cluster behind DR's array: external, at the VIP its FQDN resolves to.
    assert sites["DR"]["array"]["load_balancer"] == {"type": "external", "vip": "10.3.0.50"}
    assert sites["DR"]["databases"] == {"names": ["DR-DB01", "DR-DB02", "DR-DB03"]}
    # Branch has no array: its NLB cluster is said, not dropped.
    assert "array" not in sites["Branch"]
    branch = (org / "branch.yaml").read_text()
    assert "# - NLB cluster br-nlb.contoso.local (VIP 10.2.0.50, nodes BR-CAS01) is not" in branch
    assert "Branch: NLB cluster br-nlb.contoso.local (VIP 10.2.0.50" in out
    assert "Mailboxes: 2,404 in the organisation" in out
    assert "Next: casdesired validate org && casdesired plan org --detailed-exitcode" in out
    validated, _ = round_trip(capsys, org)
    assert "binds to server 'BR-CAS01'" in validated  # the warning the comment announced
    # Read-only, and no lock: only Get- cmdlets ran.
    ran = {str(e["cmdlet"]) for e in lab.lab.journal.entries(["cmdlet"])}
    assert ran and all(c.startswith(("Get-", "Set-AdServerSettings")) for c in ran), ran


def test_patterns_compress_the_bindings_and_still_round_trip(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.organisation.add_databases(40, "HQ", "HQ-MBX-")  # bound to outlook-hq, as Exchange does
    code, out, err = cli(capsys, "import", "org", *lab.options(), "--patterns")
    assert code == 0, out + err
    sites = site_data(Path("org"))
    assert sites["HQ"]["databases"]["patterns"] == ["HQ-DB0[1-4]", "HQ-MBX-*"]
    assert "names" not in sites["HQ"]["databases"]
    assert sites["DR"]["databases"] == {"patterns": ["DR-DB0*"]}
    assert "44 database(s) (44 by 2 pattern(s), 2 to servers)" not in out  # 46 in all:
    assert "46 database(s) (44 by 2 pattern(s), 2 to servers)" in out
    round_trip(capsys, Path("org"))


def test_the_organisation_file_holds_variable_names_never_the_secret(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    text = (Path("org") / "organisation.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["connection"]["credentials"] == {
        "username_env": "CASDESIRED_USERNAME", "password_env": "CASDESIRED_PASSWORD"
    }
    assert data["dns"]["resolvers"] == [lab.dns]
    assert data["policy"] == {
        "max_rebind_percent": 30, "min_databases_for_threshold": 10, "allow_prune": False
    }
    assert text.startswith("# yaml-language-server: $schema=")
    every = text + "".join(p.read_text() for p in Path("org").rglob("*") if p.is_file())
    every += out + err
    assert SECRET not in every


def test_a_secret_given_as_a_variable_name_is_refused_unechoed(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    options = lab.options()
    options[options.index("CASDESIRED_PASSWORD")] = "Pa$$w0rd!"
    code, out, err = cli(capsys, "import", "org", *options)
    assert code == 1
    assert "secret-inline" in err and "Pa$$w0rd!" not in out + err
    assert not Path("org").exists()  # nothing connected, nothing written


def test_without_an_organisation_file_the_connection_options_are_required(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "import", "org")
    assert code == 1
    assert "has no organisation.yaml: give --name and --endpoint" in err


def test_an_existing_organisation_file_gives_the_connection(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "import", "org", *lab.options(), "--site", "DR")[0] == 0
    before = (Path("org") / "organisation.yaml").read_bytes()
    # Options next to the file would be ignored or contradict it: refused.
    code, _, err = cli(capsys, "import", "org", "--endpoint", lab.lab.url)
    assert code == 1 and "already describes the connection; leave out --endpoint" in err
    code, out, err = cli(capsys, "import", "org", "--site", "HQ")
    assert code == 0, out + err
    assert "kept org/dr.yaml" not in out and "wrote org/hq.yaml (new)" in out
    assert (Path("org") / "organisation.yaml").read_bytes() == before
    assert sorted(site_data(Path("org"))) == ["DR", "HQ"]
    # Two sites of three: the plan of all the files still changes nothing, and leaves only
    # the third site's databases alone.
    round_trip(capsys, Path("org"), unmanaged={"BR-DB01", "BR-DB02", "BR-DB03"})


def test_dry_run_prints_the_files_and_writes_nothing(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "import", "org", *lab.options(), "--dry-run")
    assert code == 0, err
    assert not Path("org").exists()
    assert "# ==> org/hq.yaml (new) <==\n# yaml-language-server: $schema=" in out
    assert "    cluster_host: hq-cas01.contoso.local\n" in out
    assert "would write org/hq.yaml (new)" in err  # the summary goes to stderr
    assert "Next: run again without --dry-run" in err


def test_existing_files_are_never_clobbered_without_force(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "import", "org", *lab.options())[0] == 0
    hq = Path("org") / "hq.yaml"
    edited = hq.read_text().replace("  - name: HQ-CAS02\n", "  - name: HQ-CAS02  # mine\n")
    hq.write_text(edited)
    # Unchanged files are no obstacle; a changed one is.
    code, out, err = cli(capsys, "import", "org")
    assert code == 1
    assert "1 existing file(s) would change: org/hq.yaml. Nothing was written" in err
    assert hq.read_text() == edited
    # --force shows what changes, then writes.
    code, out, err = cli(capsys, "import", "org", "--force")
    assert code == 0, err
    assert "--- a/org/hq.yaml\n+++ b/org/hq.yaml\n" in out
    assert "-  - name: HQ-CAS02  # mine\n+  - name: HQ-CAS02\n" in out
    assert "kept org/dr.yaml (unchanged)" in out and "wrote org/hq.yaml (replaced)" in out
    assert "# mine" not in hq.read_text()
    assert not [p for p in Path("org").iterdir() if p.name.startswith(".")]  # no temp left


def test_a_site_file_of_another_name_is_the_one_rewritten(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "import", "org", *lab.options())[0] == 0
    org = Path("org")
    (org / "hq.yaml").rename(org / "headquarters.yaml")
    code, out, err = cli(capsys, "import", "org")
    assert code == 0, out + err
    assert "kept org/headquarters.yaml (unchanged)" in out
    assert not (org / "hq.yaml").exists()


def test_an_unknown_site_is_refused_naming_the_live_ones(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "import", "org", *lab.options(), "--site", "Paris")
    assert code == 1
    assert "unknown site 'Paris': Exchange reports these sites: Branch, DR, HQ" in err
    assert not Path("org").exists()


def test_without_resolvers_an_array_without_nlb_is_a_todo_validate_reports(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "import", "org", *lab.options(resolver=False))
    assert code == 0, err
    dr = (Path("org") / "dr.yaml").read_text()
    assert "    # TODO: no Windows NLB cluster of this site's CAS servers matches it" in dr
    assert "    vip: TODO\n" in dr
    assert "Next: write the load balancer VIP of DR where the TODO says" in out
    code, out, err = cli(capsys, "validate", "org")
    assert code == 1
    [error] = [line for line in out.splitlines() if ": error:" in line]
    assert error.startswith("org/dr.yaml:") and "vip is not an IP address: 'TODO'" in error
    # HQ's VIP came from its NLB cluster, which needs no DNS.
    assert site_data(Path("org"))["HQ"]["array"]["load_balancer"]["vip"] == "10.1.0.50"


def test_no_nlb_reads_in_one_execution(lab: ImportLab, capsys: pytest.CaptureFixture[str]) -> None:
    before = lab.commands()
    code, out, err = cli(capsys, "import", "org", *lab.options(), "--no-nlb",
                         "--no-mailbox-count")
    assert code == 0, err
    assert lab.commands() - before == 1
    assert "Mailboxes: not counted (--no-mailbox-count)" in out
    # Without NLB, HQ's array is external at the address DNS gives its FQDN.
    hq = site_data(Path("org"))["HQ"]["array"]["load_balancer"]
    assert hq == {"type": "external", "vip": "10.1.0.50"}
    cmdlets = [e["cmdlet"] for e in lab.lab.journal.entries(["cmdlet"])]
    assert "Get-Mailbox" not in cmdlets and "Get-NlbCluster" not in cmdlets


def test_help_describes_import(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli(capsys, "import", "--help")
    out = capsys.readouterr().out
    for option in ("--site", "--patterns", "--dry-run", "--force", "--endpoint",
                   "--username-env", "--resolver", "--no-nlb"):
        assert option in out
    assert "exit codes:" in out


def test_beside_a_schemas_folder_the_files_point_at_it(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = Path(__file__).resolve().parents[2] / "schemas"
    Path("schemas").mkdir()
    for kind in ("site", "organisation"):
        (Path("schemas") / f"{kind}.schema.json").write_bytes(
            (schemas / f"{kind}.schema.json").read_bytes()
        )
    assert cli(capsys, "import", "sites", *lab.options())[0] == 0
    for name, kind in (("hq.yaml", "site"), ("organisation.yaml", "organisation")):
        first = (Path("sites") / name).read_text().splitlines()[0]
        assert first == f"# yaml-language-server: $schema=../schemas/{kind}.schema.json"


def test_without_a_schemas_folder_import_writes_the_shipped_schemas_the_files_point_at(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    # A fresh repository: nothing beside DIR. The comments must work in an editor, offline.
    code, out, _ = cli(capsys, "import", "org", *lab.options(), "--dry-run")
    assert code == 0
    assert "# ==> org/schemas/site.schema.json (new) <== the JSON Schema casdesired ships" in out
    assert not Path("org").exists()
    assert cli(capsys, "import", "org", *lab.options())[0] == 0
    shipped = Path(__file__).resolve().parents[2] / "schemas"
    for name, kind in (("hq.yaml", "site"), ("organisation.yaml", "organisation")):
        first = (Path("org") / name).read_text().splitlines()[0]
        assert first == f"# yaml-language-server: $schema=schemas/{kind}.schema.json"
        written = Path("org") / "schemas" / f"{kind}.schema.json"
        assert written.read_bytes() == (shipped / f"{kind}.schema.json").read_bytes()
    round_trip(capsys, Path("org"))  # the JSON files beside the YAML change nothing
    # A second import finds them: nothing new to write, nothing refused.
    code, out, err = cli(capsys, "import", "org", "--dry-run")
    assert code == 0 and "schema.json (new)" not in out, out + err


def test_an_organisation_file_with_errors_stops_the_import(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    org = Path("org")
    org.mkdir()
    (org / "organisation.yaml").write_text(
        "# yaml-language-server: $schema=x\ncasdesired: 1\nkind: organisation\nname: c\n"
        f"connection: {{endpoint: '{lab.lab.url}', transport: carrier-pigeon}}\n"
    )
    code, _, err = cli(capsys, "import", "org")
    assert code == 1
    assert "the organisation file has errors" in err and "organisation.yaml:5:" in err
    assert sorted(p.name for p in org.iterdir()) == ["organisation.yaml"]


def test_the_embedded_lab_imports_and_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `endpoint: lab` and `resolvers: [lab]`, as the example has them: the lab's state file
    # lives under XDG_STATE_HOME.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "import", "org", "--name", "contoso", "--endpoint", "lab",
                         "--resolver", "lab", "--patterns")
    assert code == 0, out + err
    assert yaml.safe_load((Path("org") / "organisation.yaml").read_text())["dns"] == {
        "resolvers": ["lab"], "external_resolvers": []
    }
    assert site_data(Path("org"))["DR"]["array"]["load_balancer"]["vip"] == "10.3.0.50"
    round_trip(capsys, Path("org"))
