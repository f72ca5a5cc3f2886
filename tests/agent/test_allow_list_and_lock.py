"""agent.ps1's allow-list, lock section and keepalive against the Python side.

No PowerShell runs here: the script is read as text (comments stripped), the way
test_agent_script.py reads it. The lab mirrors the same steps and is exercised in
tests/lab/test_locks_*.py.
"""

from __future__ import annotations

import re

import pytest

from agent.test_agent_script import CODE
from casdesired.agent import protocol
from casdesired.errors import ProtocolError
from casdesired.lab.exchange import agent_functions, locks, probes
from casdesired.transport.winrm import AgentClient, WinRMTarget

MAIN = "$response = New-Map"
"""Where agent.ps1's main part starts (comments are stripped from CODE)."""


def function_body(name: str) -> str:
    """The text of one function of agent.ps1, up to the next top-level function."""
    match = re.search(rf"(?ms)^function {name} \{{\n(.*?)^\}}", CODE)
    assert match, f"agent.ps1 has no function {name}"
    return match.group(1)


def test_the_agents_allow_list_is_protocols_list() -> None:
    match = re.search(r"(?s)\$AllowedCmdlets\s*=\s*@\((.*?)\)", CODE)
    assert match, "agent.ps1 must spell out $AllowedCmdlets"
    listed = re.findall(r"'([A-Za-z]+-[A-Za-z0-9]+)'", match.group(1))
    assert listed == list(protocol.ALLOWED_CMDLETS)
    # Nothing but quoted names and commas: no variable or expression can creep into it.
    assert re.fullmatch(r"[\s,]*", re.sub(r"'[A-Za-z]+-[A-Za-z0-9]+'", "", match.group(1)))


def test_the_allow_list_is_checked_before_the_cmdlet_runs() -> None:
    body = function_body("Invoke-AgentInvocation")
    check = body.index("$AllowedCmdlets -contains $cmdlet")
    # The cmdlet runs through Invoke-AgentCmdlet (here, or on the invocation's computer).
    assert check < body.index("Invoke-AgentCmdlet $cmdlet $parameters")
    assert "& $Cmdlet @Parameters" in function_body("Invoke-AgentCmdlet")
    assert "CommandNotFoundException" in body[check:]
    assert "is not recognized as the name of a cmdlet, " in body[check:]


def test_the_agents_read_allow_list_is_protocols_list() -> None:
    match = re.search(r"(?s)\$ReadCmdlets\s*=\s*@\((.*?)\)", CODE)
    assert match, "agent.ps1 must spell out $ReadCmdlets"
    listed = re.findall(r"'([A-Za-z]+-[A-Za-z0-9]+)'", match.group(1))
    assert listed == list(protocol.READ_CMDLETS)
    assert re.fullmatch(r"[\s,]*", re.sub(r"'[A-Za-z]+-[A-Za-z0-9]+'", "", match.group(1)))
    # Every read command is allowed, and none of them writes.
    assert set(protocol.READ_CMDLETS) <= set(protocol.ALLOWED_CMDLETS)
    assert not set(protocol.READ_CMDLETS) & set(protocol.FENCED_CMDLETS)
    assert all(c.startswith(("Get-", "Search-")) for c in protocol.READ_CMDLETS)


def test_a_diagnose_request_is_refused_any_command_off_the_read_list_before_it_runs() -> None:
    body = function_body("Invoke-AgentInvocation")
    check = body.index("$ReadCmdlets -contains $cmdlet")
    assert body.index("$AllowedCmdlets -contains $cmdlet") < check
    assert check < body.index("Invoke-AgentCmdlet $cmdlet $parameters")
    assert "is not a read command; a diagnose request runs " in body[check:]
    assert protocol.NOT_A_READ.startswith("casdesired: '{cmdlet}' is not a read command; a")


def test_the_client_refuses_to_send_a_write_in_a_diagnose_request() -> None:
    write = protocol.Invocation("w", "Set-MailboxDatabase", {"Identity": "DB1"})
    lock = protocol.Invocation("l", "Enter-CasdesiredLock", {"LockId": "x"})
    for invocation in (write, lock):
        request = protocol.Request(invocations=(invocation,), diagnose=True)
        with pytest.raises(ProtocolError, match="in a diagnose request"):
            protocol.check_allowed(request)
        protocol.check_allowed(protocol.Request(invocations=(invocation,)))  # not diagnosing


def test_every_agent_function_is_allowed_and_every_allowed_function_exists() -> None:
    # The advanced functions (called like cmdlets); helpers such as Assert-CasdesiredId are not.
    defined = {
        name for name in re.findall(r"(?m)^function ([\w-]+)", CODE)
        if "[CmdletBinding()]" in function_body(name)
    }
    allowed = {c for c in protocol.ALLOWED_CMDLETS if "-Casdesired" in c}
    lab = {f.name for f in (*agent_functions.FUNCTIONS.values(), *probes.FUNCTIONS.values())}
    assert defined == allowed == lab


@pytest.mark.parametrize("name", sorted(f.name for f in probes.FUNCTIONS.values()))
def test_the_probes_write_nothing(name: str) -> None:
    # Rights named as data (FileSystemRights::CreateFiles) are not calls.
    body = re.sub(r"FileSystemRights\]::\w+", "", function_body(name))
    assert not re.search(
        r"(?i)\b(Set|New|Remove|Write|Delete|Move|Create|Save|Add-Content|Out-File)"
        r"(-|Item|Value|Directory|File|::)", body.replace("New-Object", "").replace("New-Map", "")
    ), body
    assert name in protocol.READ_CMDLETS


@pytest.mark.parametrize("name", sorted(f.name for f in agent_functions.FUNCTIONS.values()))
def test_lock_functions_open_the_lock_file_only_exclusively(name: str) -> None:
    body = function_body(name)
    assert "Open-LockFile" in body
    # Never delete, rename or overwrite the lock file outside the exclusive handle.
    assert not re.search(r"\[System\.IO\.File\]::(Delete|Move|Replace|WriteAll)", body)
    assert "$stream.Close()" in body


def test_the_exclusive_open_is_fileshare_none_and_retried() -> None:
    body = function_body("Open-LockFile")
    assert "[System.IO.FileShare]::None" in body and "[System.IO.FileAccess]::ReadWrite" in body
    assert "Start-Sleep" in body and "$LockOpenAttempts" in body
    assert "stayed in use by another process for 10 " in body
    assert locks.LOCK_BUSY.startswith("casdesired: the lock file {path} stayed in use")
    attempts = int(re.search(r"\$LockOpenAttempts = (\d+)", CODE).group(1))  # type: ignore[union-attr]
    pause = int(re.search(r"\$LockRetryMilliseconds = (\d+)", CODE).group(1))  # type: ignore[union-attr]
    assert (attempts, pause / 1000) == (locks.OPEN_ATTEMPTS, locks.RETRY_SECONDS)
    assert attempts * pause == 10_000  # the "10 seconds" of the message


def test_no_lock_file_is_ever_deleted_or_renamed() -> None:
    lock_section = CODE[CODE.index("$LockRoot ="):CODE.index(MAIN)]
    assert not re.search(r"::(Delete|Move|Replace)\(\s*\$LockPath", lock_section)
    assert "'an unreadable lock (its writer was stopped mid-write)'" in lock_section
    assert locks.UNREADABLE == "an unreadable lock (its writer was stopped mid-write)"


def test_the_keepalive_runs_between_invocations_and_polls_with_protocols_text() -> None:
    keepalive = function_body("Invoke-AgentKeepalive")
    before, _, after = protocol.KEEPALIVE_FAILED.partition("{cmdlet}")
    assert f"'{before}'" in keepalive
    assert f"'{after.partition('{message}')[0]}'" in keepalive
    assert "Invoke-AgentInvocation $invocation $false" in keepalive  # no keepalive in keepalive
    invocation = function_body("Invoke-AgentInvocation")
    sleep = invocation.index("Start-Sleep -Milliseconds ([int]($interval * 1000))")
    assert invocation.index("Invoke-AgentKeepalive", sleep) > sleep
    main = CODE[CODE.index(MAIN):]
    # The last loop over the invocations is the one that runs them (the first imports names).
    loop = main[main.rindex("foreach ($invocation in $invocations) {"):]
    assert loop.index("Invoke-AgentKeepalive") < loop.index("Invoke-AgentInvocation")
    assert "$response['stopped'] = $KeepaliveState['stopped']" in main


def test_the_reconciler_refuses_to_send_a_command_off_the_list() -> None:
    # Port 9 on loopback: had anything been sent, this would be a connection error instead.
    client = AgentClient(WinRMTarget(url="http://127.0.0.1:9/wsman", transport="ntlm",
                                     username="u", password="p"))
    request = protocol.Request(
        invocations=(protocol.Invocation("1", "Get-ExchangeServer"),
                     protocol.Invocation("2", "Remove-Item", {"Path": "C:\\"})),
    )
    with pytest.raises(ProtocolError) as refused:
        client.run(request)
    assert str(refused.value) == (
        "casdesired will not send 'Remove-Item' to the agent: the agent runs only the commands "
        "in casdesired.agent.protocol.ALLOWED_CMDLETS"
    )
    assert client.executions == 0 and client.requests == 0
    keepalive = protocol.Keepalive(protocol.Invocation("k", "Invoke-Expression"), 5)
    with pytest.raises(ProtocolError, match="'Invoke-Expression'"):
        protocol.check_allowed(protocol.Request(invocations=(), keepalive=keepalive))


def test_allowed_names_compare_case_insensitively_like_powershell() -> None:
    assert protocol.is_allowed("set-mailboxdatabase")
    assert not protocol.is_allowed(" Set-MailboxDatabase")
    assert not protocol.is_allowed("Set-MailboxDatabase;Remove-Item")


def test_keepalive_round_trips_and_rejects_nonsense() -> None:
    request = protocol.Request(
        invocations=(),
        keepalive=protocol.Keepalive(protocol.Invocation("k", "Update-CasdesiredLock",
                                                         {"LockId": "a", "LeaseSeconds": 9}), 30),
    )
    assert protocol.Request.from_json(request.to_json()) == request
    data = request.to_json()
    data["keepalive"]["interval_seconds"] = 0
    with pytest.raises(ProtocolError, match="interval_seconds"):
        protocol.Request.from_json(data)


def test_the_agents_fenced_commands_are_protocols_list_and_every_write_is_fenced() -> None:
    match = re.search(r"(?s)\$FencedCmdlets\s*=\s*@\((.*?)\)", CODE)
    assert match, "agent.ps1 must spell out $FencedCmdlets"
    listed = re.findall(r"'([A-Za-z]+-[A-Za-z0-9]+)'", match.group(1))
    assert listed == list(protocol.FENCED_CMDLETS)
    assert re.fullmatch(r"[\s,]*", re.sub(r"'[A-Za-z]+-[A-Za-z0-9]+'", "", match.group(1)))
    # Every allowed command that is not a read (Get-, Search-) or the agent's own lock
    # function writes.
    writes = {
        c for c in protocol.ALLOWED_CMDLETS
        if not c.startswith(("Get-", "Search-")) and "-Casdesired" not in c
    }
    assert writes == set(protocol.FENCED_CMDLETS)


def test_the_fence_is_checked_before_each_invocation_with_protocols_text() -> None:
    fence = function_body("Invoke-AgentFence")
    before, _, after = protocol.FENCED.partition("{cmdlet}")
    assert f"'{before}'" in fence
    assert f"'{after.partition('{message}')[0]}'" in fence
    assert f"'{after.partition('{message}')[2]}'" in fence
    assert "$FencedCmdlets -contains $cmdlet" in fence and "Assert-CasdesiredFence" in fence
    check = function_body("Assert-CasdesiredFence")
    assert "Open-LockFile" in check and "Assert-LockHeld" in check
    assert "[CmdletBinding()]" not in check  # the agent's own step, not a command to name
    main = CODE[CODE.index(MAIN):]
    assert "$KeepaliveState['fence'] = Get-Field $request 'fence'" in main
    loop = main[main.rindex("foreach ($invocation in $invocations) {"):]
    # Each run of an invocation (one, or one per computer of a fan-out) is fenced.
    assert (loop.index("Invoke-AgentKeepalive") < loop.index("Invoke-AgentFence $run['invocation']")
            < loop.index("Invoke-AgentInvocation $run['invocation']"))


def test_an_ended_lock_id_is_recorded_by_exit_and_remove_and_refused_by_enter() -> None:
    assert "Register-LockEnd $LockId" in function_body("Exit-CasdesiredLock")
    assert "Register-LockEnd $LockId" in function_body("Remove-CasdesiredLock")
    enter = function_body("Enter-CasdesiredLock")
    # Under the handle, before the lock is read: no release can slip between check and take.
    assert enter.index("Open-LockFile -Create") < enter.index("Assert-LockNotEnded $LockId")
    # The refusal's text: its string literals joined, as PowerShell's + joins them.
    thrown = function_body("Assert-LockNotEnded").split("throw", 1)[1]
    literals = re.findall(r"\"([^\"]*)\"|'([^']*)'", thrown)
    text = "".join(double or single for double, single in literals)
    assert text.replace("$LockId", "{lock_id}") == locks.ENDED
    assert "$EndedDir = Join-Path $LockRoot 'released'" in CODE
    assert locks.ENDED_DIR.endswith("\\casdesired\\released\\")


def test_fence_round_trips() -> None:
    request = protocol.Request(invocations=(), fence="a-lock")
    assert protocol.Request.from_json(request.to_json()) == request
    assert "fence" not in protocol.Request(invocations=()).to_json()
