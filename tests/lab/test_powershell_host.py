"""The lab's powershell.exe: only the exact bootstrap with the agent runs; all else fails."""

from __future__ import annotations

import re

import pytest

from casdesired.agent.delivery.stdin import (
    BOOTSTRAP_SCRIPT,
    REQUEST_SEPARATOR,
    STDIN_READ,
    encode_stdin,
)
from casdesired.agent.framing import decode_response
from casdesired.agent.protocol import AGENT_MARKER, Credential, Invocation, Request
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.powershell import clixml_errors
from casdesired.lab.exchange.testing import agent_script

CLIXML = re.compile(
    r'^#< CLIXML\r\n<Objs Version="1\.1\.0\.1" '
    r'xmlns="http://schemas\.microsoft\.com/powershell/2004/04">(<S S="Error">.*?</S>)+</Objs>$'
)


@pytest.fixture
def org() -> Organisation:
    return Organisation.from_seed()


def request() -> Request:
    # As the reconciler sends it: the /PowerShell session opened with the account's credential.
    account = Organisation.from_seed().logon
    return Request(
        invocations=(Invocation("1", "Get-ClientAccessArray", {}, ("Fqdn",)),),
        credential=Credential(account.user, account.password),
    )


def test_bootstrap_with_agent_runs_and_frames_one_response(org: Organisation) -> None:
    result = org.run(BOOTSTRAP_SCRIPT, encode_stdin(agent_script(), request()))
    assert result.exit_code == 0 and result.stderr == ""
    # The bootstrap says it has read stdin first, then the agent answers.
    assert result.stdout.startswith(STDIN_READ + "\r\n<casdesired-response>")
    assert result.stdout.endswith("</casdesired-response>")
    (arrays,) = decode_response(result.stdout).results
    assert {o["Fqdn"] for o in arrays.objects} == {"outlook-hq.contoso.local",
                                                   "outlook-dr.contoso.local"}


@pytest.mark.parametrize("script", [
    "Get-ClientAccessArray | Remove-ClientAccessArray -Confirm:$false",
    "Write-Output hello",
    BOOTSTRAP_SCRIPT + " ",
    BOOTSTRAP_SCRIPT.replace("exit 3", "exit 0"),
    "",
])
def test_anything_but_the_exact_bootstrap_fails_as_powershell(org: Organisation,
                                                              script: str) -> None:
    before = org.snapshot()
    result = org.run(script, encode_stdin(agent_script(), request()))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert CLIXML.match(result.stderr), result.stderr
    assert org.snapshot() == before
    assert org.journal.count("cmdlet") == 0


def test_exchange_cmdlet_as_plain_script_is_not_recognized(org: Organisation) -> None:
    result = org.run("Get-ClientAccessArray", b"")
    assert ("The term 'Get-ClientAccessArray' is not recognized as the name of a cmdlet"
            in result.stderr)
    assert "CommandNotFoundException_x000D__x000A_</S>" in result.stderr


def test_bootstrap_without_separator_fails_like_the_bootstrap(org: Organisation) -> None:
    result = org.run(BOOTSTRAP_SCRIPT, b"Write-Output hi\r\n")
    assert (result.exit_code, result.stdout) == (3, STDIN_READ + "\r\n")
    assert result.stderr == "casdesired: no agent on stdin\r\n"


def test_bootstrap_with_another_script_on_stdin_is_refused(org: Organisation) -> None:
    stdin = f"Remove-Item C:\\ -Recurse\r\n{REQUEST_SEPARATOR}\r\neyJ9\r\n".encode("ascii")
    result = org.run(BOOTSTRAP_SCRIPT, stdin)
    assert result.exit_code == 1
    assert CLIXML.match(result.stderr)
    assert "only the casdesired agent" in result.stderr


def test_a_newer_agent_protocol_marker_is_not_run(org: Organisation) -> None:
    newer = AGENT_MARKER.replace("protocol 1", "protocol 2") + "\r\n"
    stdin = f"{newer}{REQUEST_SEPARATOR}\r\neyJ9\r\n".encode("ascii")
    assert org.run(BOOTSTRAP_SCRIPT, stdin).exit_code == 1


def test_clixml_escapes_markup_and_control_characters() -> None:
    text = clixml_errors(["a<b>&c\x07_x41"])
    assert '<S S="Error">a&lt;b&gt;&amp;c_x0007__x005F_x41_x000D__x000A_</S>' in text
