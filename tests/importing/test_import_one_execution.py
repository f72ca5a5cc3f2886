"""Import reads in ONE command execution at every size: the plan's read, Windows NLB fanned out
over the Client Access servers that read finds (``for_each``), and every mailbox counted, in one
request (casdesired/importing/read.py).

The fan-out cannot tell a server's site or version, so it asks every CAS; what servers outside
``--site`` and Exchange 2013+ servers answer is ignored, whatever it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from casdesired.lab.exchange.errors import ACCESS_DENIED
from importing.labimport import V15, ImportLab, cli, round_trip, site_data


def _refuse_nlb(lab: ImportLab, *, after: int, times: int) -> None:
    """Get-NlbCluster refused (access denied: not "no cluster") on reads after+1..after+times;
    the fan-out reads the CAS servers in Get-ClientAccessServer's order: br-cas01, dr-cas01,
    dr-cas02, hq-cas01, hq-cas02."""
    lab.lab.faults.update({"cmdlets": [
        {"cmdlet": "Get-NlbCluster", "message": ACCESS_DENIED, "category": "UnauthorizedAccess",
         "after": after, "times": times},
    ]})


def _nlb_reads(lab: ImportLab) -> int:
    return [e["cmdlet"] for e in lab.lab.journal.entries(["cmdlet"])].count("Get-NlbCluster")


def test_ten_thousand_databases_import_in_one_command_execution(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.organisation.add_databases(10_000 - 12, "HQ", "HQ-BIG-")  # bound to outlook-hq
    lab.organisation.configure(object_cost_ms=0.0)  # what counting costs is bench's business
    before = lab.commands()
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    assert lab.commands() - before == 1
    assert "read in 1 command execution (nothing was changed)" in out
    ran = [e["cmdlet"] for e in lab.lab.journal.entries(["cmdlet"])]
    assert ran.count("Get-NlbCluster") == 5 and ran.count("Get-Mailbox") == 1
    hq = site_data(Path("org"))["HQ"]
    assert len(hq["databases"]["names"]) == 4 + 10_000 - 12
    assert hq["array"]["load_balancer"]["type"] == "nlb"
    assert "Windows NLB: read on 5 CAS server(s), 2 cluster(s) found." in out
    round_trip(capsys, Path("org"))


def test_a_refused_nlb_read_stops_the_import_in_its_one_execution(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    _refuse_nlb(lab, after=3, times=1)  # hq-cas01, HQ's cluster host
    before = lab.commands()
    code, _, err = cli(capsys, "import", "org", *lab.options(), "--no-mailbox-count")
    assert code == 1
    assert lab.commands() - before == 1
    assert f"could not read the NLB cluster on hq-cas01.contoso.local: {ACCESS_DENIED}" in err
    assert not Path("org").exists()


def test_what_servers_outside_the_sites_imported_answer_is_ignored(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    _refuse_nlb(lab, after=1, times=2)  # dr-cas01 and dr-cas02
    code, out, err = cli(capsys, "import", "org", *lab.options(), "--site", "HQ",
                         "--site", "Branch")
    assert code == 0, out + err
    assert _nlb_reads(lab) == 5  # asked everywhere, in the one execution
    assert "Windows NLB: read on 3 CAS server(s), 2 cluster(s) found." in out
    assert site_data(Path("org"))["HQ"]["array"]["load_balancer"]["type"] == "nlb"
    # DR imported, the same refusal stops the import and names the first server refused.
    _refuse_nlb(lab, after=1, times=2)
    code, _, err = cli(capsys, "import", "all", *lab.options())
    assert code == 1
    assert f"could not read the NLB cluster on dr-cas01.contoso.local: {ACCESS_DENIED}" in err


def test_what_an_exchange_2013_server_answers_is_ignored(
    lab: ImportLab, capsys: pytest.CaptureFixture[str]
) -> None:
    def newer_cas(data: dict[str, Any]) -> None:
        newer = dict(next(s for s in data["servers"] if s["name"] == "HQ-CAS02"))
        newer.update(name="HQ-EX15", fqdn="hq-ex15.contoso.local", version=V15,
                     roles=["Mailbox", "ClientAccess"])
        data["servers"].append(newer)

    lab.edit(newer_cas)
    _refuse_nlb(lab, after=5, times=1)  # HQ-EX15, the sixth CAS by name
    code, out, err = cli(capsys, "import", "org", *lab.options())
    assert code == 0, out + err
    assert _nlb_reads(lab) == 6
    assert "Windows NLB: read on 5 CAS server(s), 2 cluster(s) found." in out
    assert "HQ: HQ-EX15 runs Exchange 2013 or later" in out
