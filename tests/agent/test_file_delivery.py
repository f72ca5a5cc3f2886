"""The file delivery's command lines and bootstrap: fixed templates, only base64 and hex in
them, within cmd.exe's 8,191 characters even where ``%ProgramData%`` is a long path — proven
through the lab's model of cmd.exe, which writes what they say."""

from __future__ import annotations

import base64
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casdesired.agent.delivery import files
from casdesired.agent.framing import decode_command, encode_command, gunzip
from casdesired.agent.protocol import Credential, Invocation, Request
from casdesired.agent.script import agent_script
from casdesired.lab.exchange.hostfiles import FileTree
from casdesired.lab.wsman.cmdexe import MAX_COMMAND_LINE, TOO_LONG, interpret

SHA = "ab" * 32
RUN = "0123456789abcdef" * 2
LONGEST_PROGRAM_DATA = "C:\\" + "P" * (files.MAX_PATH - 3)
"""A ``%ProgramData%`` as long as a Windows path gets (MAX_PATH, 260 characters)."""
PASSWORD = "Delivery-S3cret-%-value"


class Tree(FileTree):
    """The lab's model of the host's files, with ProgramData wherever a test puts it."""

    def __init__(self, program_data: str) -> None:
        super().__init__({program_data + "\\": ""})


def run_lines(lines: list[str], program_data: str) -> Tree:
    tree = Tree(program_data)
    environment = {"ProgramData": program_data}
    for line in [files.mkdir_line(), *lines]:
        launch = interpret(line, "HQ-CAS01", environment, tree)
        assert launch.result is not None and launch.result.exit_code == 0, launch.result
    return tree


def test_the_agent_is_written_and_named_by_its_sha256_through_cmd_exe() -> None:
    sha, text = files.agent_payload(agent_script())
    lines = files.write_lines(files.upload_name(RUN), text)
    assert len(lines) == math.ceil(len(text) / files.CHUNK_CHARS)
    tree = run_lines([*lines, files.move_line(RUN, sha)], LONGEST_PROGRAM_DATA)
    stored = tree.read_file(f"{LONGEST_PROGRAM_DATA}\\casdesired\\agent\\agent-{sha}.b64")
    # echo ends every line with CRLF; .NET's FromBase64String skips it.
    assert base64.b64decode(re.sub(r"\s", "", stored)) == agent_script().encode("ascii")
    assert not tree.is_file(f"{LONGEST_PROGRAM_DATA}\\casdesired\\agent\\upload-{RUN}.b64")


REQUESTS = st.lists(
    st.tuples(st.text(min_size=1, max_size=60), st.text(max_size=400)), min_size=1, max_size=60
)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(REQUESTS)
def test_every_request_line_fits_cmd_exe_and_the_request_arrives_byte_for_byte(
    values: list[tuple[str, str]],
) -> None:
    request = Request(
        invocations=tuple(
            Invocation(f"i{n}", "Set-MailboxDatabase", {"Identity": identity, "X": other})
            for n, (identity, other) in enumerate(values)
        ),
        credential=Credential("CONTOSO\\casadmin", PASSWORD),
    )
    sha, text = files.request_payload(request)
    lines = files.write_lines(files.request_name(RUN), text)
    for line in lines:
        assert len(line) <= files.MAX_LINE
        assert len(line.replace("%ProgramData%", LONGEST_PROGRAM_DATA)) <= MAX_COMMAND_LINE
    tree = run_lines(lines, LONGEST_PROGRAM_DATA)
    stored = tree.read_file(f"{LONGEST_PROGRAM_DATA}\\casdesired\\agent\\request-{RUN}.b64")
    packed = base64.b64decode(re.sub(r"\s", "", stored))
    assert files.sha256(packed) == sha
    sent = json.loads(gunzip(packed))
    assert [i["parameters"] for i in sent["invocations"]] == [
        {"Identity": identity, "X": other} for identity, other in values
    ]
    assert "credential" not in sent  # it travels in the shell's environment
    assert PASSWORD not in json.dumps(sent) and all(PASSWORD not in line for line in lines)


def test_the_bootstrap_command_line_fits_despite_encodedcommands_inflation() -> None:
    script = files.bootstrap(SHA, RUN, SHA)
    executable, arguments = files.command_line(SHA, RUN, SHA)
    encoded = arguments[-1]
    # -EncodedCommand: two bytes per character, four base64 characters per three bytes.
    assert len(encoded) == 4 * math.ceil(2 * len(script) / 3)
    assert len(encoded) / len(script) == pytest.approx(8 / 3, rel=0.01)
    line = files.joined(executable, arguments)
    assert files.check_line(line) == line and len(line) <= files.MAX_LINE
    assert decode_command(encoded) == script
    assert files.parse_bootstrap(script) == (SHA, RUN, SHA)
    assert arguments[-4:-2] == ["-InputFormat", "None"]  # it never reads stdin


def test_the_lab_refuses_a_line_that_expands_past_cmd_exes_limit() -> None:
    # What cmd.exe's limit means for a line near MAX_LINE on a host whose %ProgramData% is
    # longer than any Windows path: the lab measures after expansion, as cmd.exe does.
    line = files.write_lines(files.request_name(RUN), "A" * files.CHUNK_CHARS)[0]
    padding = MAX_COMMAND_LINE - len(line) + len("%ProgramData%") + 1
    launch = interpret(line, "HQ-CAS01", {"ProgramData": "C:\\" + "P" * padding}, Tree("C:"))
    assert launch.result == TOO_LONG


@pytest.mark.parametrize(
    "text",
    ["abc&del x", "QUJD\r\nmkdir y", 'QUJD" & echo', "%ProgramData%", "QU JD", "", "QUJD>x"],
)
def test_only_base64_is_ever_written_with_echo(text: str) -> None:
    with pytest.raises(ValueError):
        files.write_lines(files.request_name(RUN), text)


@pytest.mark.parametrize(
    "line",
    [
        '>"%ProgramData%\\casdesired\\agent\\request-' + RUN + '.b64" echo QUJD & del C:\\x',
        '>"%ProgramData%\\casdesired\\agent\\..\\request-' + RUN + '.b64" echo QUJD',
        '>"%ProgramData%\\casdesired\\agent\\request-' + RUN + '.b64" echo %PATH%',
        'move /y "%ProgramData%\\casdesired\\agent\\upload-' + RUN + '.b64" "C:\\Windows\\x.b64"',
        "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass "
        "-InputFormat None -Command Remove-Item",
        '>"%ProgramData%\\casdesired\\agent\\request-' + RUN + '.b64" echo ' + "A" * 8000,
    ],
)
def test_a_line_outside_the_templates_is_refused(line: str) -> None:
    with pytest.raises(ValueError):
        files.check_line(line)


@pytest.mark.parametrize("bad", ["AB" * 32, "ab" * 31, "'; Remove-Item C:\\ #" + "a" * 44, ""])
def test_only_lower_case_hex_goes_into_the_bootstrap(bad: str) -> None:
    with pytest.raises(ValueError):
        files.bootstrap(bad, RUN, SHA)
    with pytest.raises(ValueError):
        files.bootstrap(SHA, RUN, bad)
    with pytest.raises(ValueError):
        files.request_name(bad)


def test_a_script_that_only_looks_like_the_bootstrap_is_not_it() -> None:
    script = files.bootstrap(SHA, RUN, SHA)
    assert files.parse_bootstrap(script + " ") is None
    assert files.parse_bootstrap(script.replace("exit 4", "exit 0")) is None
    # The agent's SHA-256 appears three times; all three must be the same.
    other = "cd" * 32
    assert files.parse_bootstrap(script.replace(f"'{SHA}'", f"'{other}'", 1)) is None


def test_the_credential_goes_in_the_environment_as_base64_of_its_json() -> None:
    environment = files.environment(Credential("CONTOSO\\casadmin", PASSWORD))
    (value,) = environment.values()
    assert list(environment) == [files.CREDENTIAL_VARIABLE]
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", value)  # no % for WinRM, no quoting to get wrong
    assert json.loads(base64.b64decode(value)) == {
        "username": "CONTOSO\\casadmin", "password": PASSWORD
    }
    assert files.environment(None) == {}


def test_encode_command_is_what_the_bootstrap_ships_as() -> None:
    executable, arguments = files.command_line(SHA, RUN, SHA)
    assert executable == "powershell.exe"
    assert arguments[-1] == encode_command(files.bootstrap(SHA, RUN, SHA))
