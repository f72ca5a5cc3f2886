"""The seed organisation behind a real loopback lab, read through the real AgentClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.server import Lab
from casdesired.transport.winrm import AgentClient, WinRMTarget

NLB_HOSTS = ("hq-cas01.contoso.local", "br-cas01.contoso.local")


@pytest.fixture
def organisation() -> Organisation:
    return Organisation.from_seed()


@pytest.fixture
def lab(organisation: Organisation) -> Iterator[Lab]:
    # The organisation journals cmdlets and takes cmdlet faults, the wire journals commands and
    # takes wire faults: one journal and one set of faults for both.
    with Lab(
        organisation, auth="ntlm", journal=organisation.journal, faults=organisation.faults
    ) as running:
        yield running


@pytest.fixture
def client(lab: Lab) -> AgentClient:
    return AgentClient(
        WinRMTarget(
            url=lab.url,
            transport="ntlm",
            username=lab.credentials.username,
            password=lab.credentials.password,
            operation_timeout=5.0,
            read_timeout=15.0,
        )
    )
