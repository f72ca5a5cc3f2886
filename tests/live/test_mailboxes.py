"""Counting mailboxes: only the databases named, in one command execution, never guessed.

Field fact (issue 10 §3): counting every mailbox of the organisation costs minutes on a large
one over remote PowerShell, so plans count only what they move. The lab charges server time per
object a cmdlet returns (its cost model), which makes the difference visible.
"""

from __future__ import annotations

import pytest

from casdesired.errors import ReadFailed
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import CmdletFault
from casdesired.lab.server import Lab
from casdesired.live.mailboxes import count_all, count_mailboxes
from casdesired.transport.winrm import AgentClient


def _seeded(organisation: Organisation) -> dict[str, int]:
    """Each database's mailboxes in every domain of the forest (the agent views it whole)."""
    return {
        d["name"].lower(): d["mailboxes"] + sum((d.get("child_mailboxes") or {}).values())
        for d in organisation.snapshot()["databases"]
    }


def test_only_the_databases_named_are_counted_in_one_execution(
    lab: Lab, client: AgentClient, organisation: Organisation
) -> None:
    seeded = _seeded(organisation)
    counts = count_mailboxes(client, ["HQ-DB05", "hq-db06", "HQ-DB05"])
    assert counts == {"hq-db05": seeded["hq-db05"], "hq-db06": seeded["hq-db06"]}
    assert client.executions == 1
    calls = [e["parameters"] for e in lab.journal.entries(["cmdlet"])
             if e["cmdlet"] == "Get-Mailbox"]
    assert calls == [{"Database": "HQ-DB05", "ResultSize": "Unlimited"},
                     {"Database": "hq-db06", "ResultSize": "Unlimited"}]  # as given


def test_nothing_to_count_costs_no_execution(client: AgentClient) -> None:
    assert count_mailboxes(client, []) == {}
    assert client.executions == 0


def test_an_empty_database_counts_zero(client: AgentClient, organisation: Organisation) -> None:
    data = organisation.snapshot()
    for db in data["databases"]:
        if db["name"] == "DR-DB03":
            db["mailboxes"] = 0
    organisation.load(data)
    assert count_mailboxes(client, ["DR-DB03"]) == {"dr-db03": 0}


def test_a_failed_count_is_an_error_never_a_guess(lab: Lab, client: AgentClient) -> None:
    lab.faults.cmdlets.append(CmdletFault(cmdlet="Get-Mailbox", identity=None))
    with pytest.raises(ReadFailed, match="could not count the mailboxes of database HQ-DB05"):
        count_mailboxes(client, ["HQ-DB05"])


def test_the_whole_organisation_count_matches_the_seed(
    client: AgentClient, organisation: Organisation
) -> None:
    assert count_all(client) == {k: v for k, v in _seeded(organisation).items() if v}


def test_the_lab_charges_server_time_per_object_returned(
    client: AgentClient, organisation: Organisation
) -> None:
    slept: list[float] = []
    organisation.clock = _Recorder(organisation.clock, slept)
    organisation.configure(object_cost_ms=2.0)
    seeded = _seeded(organisation)
    count_mailboxes(client, ["HQ-DB05"])
    one = sum(slept)
    slept.clear()
    count_all(client)
    whole = sum(slept)
    assert one == pytest.approx(seeded["hq-db05"] * 0.002)
    assert whole == pytest.approx(sum(seeded.values()) * 0.002)


class _Recorder:
    """The lab's clock, recording (not doing) the sleeps the cost model charges."""

    def __init__(self, inner: object, slept: list[float]) -> None:
        self._inner = inner
        self._slept = slept

    def time(self) -> float:
        return self._inner.time()  # type: ignore[attr-defined,no-any-return]

    def monotonic(self) -> float:
        return self._inner.monotonic()  # type: ignore[attr-defined,no-any-return]

    def sleep(self, seconds: float) -> None:
        self._slept.append(seconds)
