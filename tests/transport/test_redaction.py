"""Redaction is no oracle: casdesired's own words are never masked, only text from outside.

Masking a password where it happens to be a word of casdesired's message ("the user name or
password is ***") tells whoever reads the output what the password is. So a message is built
from casdesired's words and from outside text scrubbed where it is quoted; and with passwords
that are common words of the messages, every message reads exactly as with any other password.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from casdesired.agent import framing, protocol
from casdesired.errors import CasdesiredError, ConnectionFailed, ProtocolError, ReadFailed
from casdesired.lab.faults import WireFault
from casdesired.lab.process import ProcessResult
from casdesired.lab.server import Lab, LabCredentials
from casdesired.lab.wsman.shells import clixml_error
from casdesired.transport.winrm import AgentClient

from .conftest import OrgDir, cli, target_of

LAB_PASSWORD = "Lab-Only-Pa55-0x7f"
WORDS = (
    "wrong", "password", "the", "WinRM", "error", "host", "user", "name", "credentials",
    "rejected", "service", "account", "casdesired", "ntlm", "Administrators", "shell",
    "opening", "domain", "CASDESIRED_PASSWORD", "wsman", "http", "127.0.0.1",
)
"""Passwords that are words of casdesired's messages (and of the URL)."""
UNRELATED = "Zq-8841-unrelated"


def _plan_error(org: OrgDir, capsys: pytest.CaptureFixture[str], password: str,
                monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CASDESIRED_PASSWORD", password)
    code, _out, err = cli(capsys, "plan", str(org.path))
    assert code == 1
    return err


def test_a_wrong_password_that_is_a_word_of_the_message_leaves_the_message_whole(
    org_dir: Callable[..., OrgDir], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org = org_dir(password=LAB_PASSWORD)
    reference = _plan_error(org, capsys, UNRELATED, monkeypatch)
    assert "rejected the credentials (ntlm authentication) while opening a shell" in reference
    assert "the user name or password is wrong (taken from CASDESIRED_USERNAME, " \
        "CASDESIRED_PASSWORD)" in reference
    assert "***" not in reference
    for word in WORDS:
        assert _plan_error(org, capsys, word, monkeypatch) == reference, word


def _client(lab: Lab, password: str) -> AgentClient:
    return AgentClient(target_of(lab, password=password, operation_timeout=1.0, read_timeout=2.0))


def _fails(client: AgentClient, kind: type[CasdesiredError]) -> str:
    with pytest.raises(kind) as raised:
        client.run(client.make_request(()))
    return str(raised.value)


@pytest.mark.parametrize("secret", ["the", "agent", "Lab-Only-Pa55-0x7f"])
def test_a_secret_on_the_agents_stderr_is_masked_there_only(
    scripted_lab: Callable[..., Lab], secret: str
) -> None:
    said = f"Logon failure: the agent was given {secret} and refused it."

    def echoes(_script: str, _stdin: bytes) -> ProcessResult:
        return ProcessResult(stderr=clixml_error(said), exit_code=1)

    lab = scripted_lab(echoes, credentials=LabCredentials(password=secret))
    message = _fails(_client(lab, secret), ProtocolError)
    prefix = f"the agent on {lab.url} returned no result (exit code 1): "
    assert message.startswith(prefix)
    assert secret not in message[len(prefix):]
    assert message[len(prefix):] == said.replace(secret, "***")


@pytest.mark.parametrize("secret", ["read", "start", "Exchange", "Lab-Only-Pa55-0x7f"])
def test_a_secret_in_the_agents_fatal_error_is_masked_there_only(
    scripted_lab: Callable[..., Lab], secret: str
) -> None:
    fatal = f"New-PSSession failed for CONTOSO\\casadmin / {secret}: access denied."

    def cannot_start(_script: str, _stdin: bytes) -> ProcessResult:
        response = protocol.Response(results=(), host="HQ-CAS01", fatal=fatal)
        return ProcessResult(stdout=framing.encode_response(response) + "\r\n")

    lab = scripted_lab(cannot_start, credentials=LabCredentials(password=secret))
    message = _fails(_client(lab, secret), ReadFailed)
    prefix = "the agent on HQ-CAS01 could not start, so nothing was read or changed: "
    assert message == prefix + fatal.replace(secret, "***")


@pytest.mark.parametrize("secret", ["while", "fault", "Lab-Only-Pa55-0x7f"])
def test_a_secret_in_a_wsman_fault_reason_is_masked_there_only(
    scripted_lab: Callable[..., Lab], secret: str
) -> None:
    lab = scripted_lab(credentials=LabCredentials(password=secret))
    reason = f"The password {secret} does not meet the policy."
    lab.faults.wire.append(WireFault("wsman_fault", action="Command", message=reason))
    message = _fails(_client(lab, secret), ConnectionFailed)
    assert message == (
        f"the WinRM service at {lab.url} answered with a WS-Management fault while starting "
        f"the agent: {reason.replace(secret, '***')} (WSManFault code 2150858770, 0x80338012)"
    )
    assert lab.open_shells == 0
