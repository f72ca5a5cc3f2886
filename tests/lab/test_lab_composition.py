"""The composed lab: its wire side and its Exchange side share one journal and one fault set."""

from __future__ import annotations

import pytest

from casdesired.errors import ReadFailed
from casdesired.lab.exchange import Organisation
from casdesired.lab.server import Lab
from casdesired.live.reader import read_live
from casdesired.transport.winrm import AgentClient, WinRMTarget


def target_of(lab: Lab) -> WinRMTarget:
    return WinRMTarget(
        url=lab.url,
        transport="basic",
        username=lab.credentials.username,
        password=lab.credentials.password,
    )


def test_a_cmdlet_fault_set_on_the_lab_reaches_the_cmdlets() -> None:
    with Lab(Organisation.from_seed(), auth="basic", allow_unencrypted=True) as lab:
        lab.faults.update({"cmdlets": [{"cmdlet": "Get-MailboxDatabase"}]})
        with pytest.raises(ReadFailed, match="Active Directory operation failed"):
            read_live(AgentClient(target_of(lab)), nlb_hosts=())


def test_the_journal_shows_the_command_and_its_cmdlets_in_one_sequence() -> None:
    with Lab(Organisation.from_seed(), auth="basic", allow_unencrypted=True) as lab:
        read_live(AgentClient(target_of(lab)), nlb_hosts=())
        kinds = [e["kind"] for e in lab.journal.entries(["command", "cmdlet"])]
    assert kinds[0] == "command" and kinds.count("command") == 1
    assert "cmdlet" in kinds[1:]
