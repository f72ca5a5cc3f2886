"""cmd.exe's file builtins, variables and redirection in the lab, driven by unmodified pywinrm.

They write the organisation's files (the state's ``files``, where the agent's lock lives too),
fail as cmd.exe fails, and are journaled without their content.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import winrm

from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.server import Lab

from .conftest import protocol

FOLDER = "C:\\ProgramData\\casdesired\\agent"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(Organisation.from_seed(), auth="basic", allow_unencrypted=True) as started:
        yield started


def files(lab: Lab) -> dict[str, str]:
    snapshot = lab.organisation.snapshot()
    found: dict[str, str] = snapshot.get("files", {})
    return found


def run_in(proto: winrm.Protocol, shell: str, line: str) -> tuple[bytes, bytes, int]:
    command_id = proto.run_command(shell, line)
    out, err, code = proto.get_command_output(shell, command_id)
    proto.cleanup_command(shell, command_id)
    return out, err, code


@pytest.fixture
def shell(lab: Lab) -> Iterator[tuple[winrm.Protocol, str]]:
    proto = protocol(lab)
    shell_id = proto.open_shell(codepage=65001)
    try:
        yield proto, shell_id
    finally:
        proto.close_shell(shell_id)


def test_echo_redirected_writes_the_hosts_file_and_appends(
    lab: Lab, shell: tuple[winrm.Protocol, str]
) -> None:
    proto, shell_id = shell
    assert run_in(proto, shell_id, 'mkdir "%ProgramData%\\casdesired\\agent"') == (b"", b"", 0)
    target = '"%ProgramData%\\casdesired\\agent\\a.b64"'
    assert run_in(proto, shell_id, f">{target} echo QUJD") == (b"", b"", 0)
    assert run_in(proto, shell_id, f">>{target} echo REVG") == (b"", b"", 0)
    assert files(lab)[FOLDER + "\\a.b64"] == "QUJD\r\nREVG\r\n"
    assert run_in(proto, shell_id, f">{target} echo R0hJ") == (b"", b"", 0)  # > truncates
    assert files(lab)[FOLDER + "\\a.b64"] == "R0hJ\r\n"
    entries = lab.journal.entries(["file"])
    assert [(e["op"], e["ok"]) for e in entries] == [
        ("mkdir", True), ("write", True), ("append", True), ("append", True), ("write", True),
        ("append", True),
    ]
    assert all("QUJD" not in str(e) for e in entries)  # never a file's content


def test_a_missing_folder_stops_the_command_as_cmd_exe_does(
    lab: Lab, shell: tuple[winrm.Protocol, str]
) -> None:
    proto, shell_id = shell
    out, err, code = run_in(proto, shell_id, '>"C:\\nowhere\\a.txt" echo hi')
    assert (out, err, code) == (b"", b"The system cannot find the path specified.\r\n", 1)
    assert "C:\\nowhere\\a.txt" not in files(lab)


def test_where_the_redirection_stands_and_what_a_handle_digit_is(
    lab: Lab, shell: tuple[winrm.Protocol, str]
) -> None:
    proto, shell_id = shell
    run_in(proto, shell_id, 'mkdir "C:\\ProgramData\\t"')
    run_in(proto, shell_id, 'echo a1>"C:\\ProgramData\\t\\x"')  # a digit inside a word is text
    run_in(proto, shell_id, 'echo a 1>"C:\\ProgramData\\t\\y"')  # after a blank, a handle
    run_in(proto, shell_id, 'echo b >"C:\\ProgramData\\t\\z"')  # the blank before > stays
    out, err, code = run_in(proto, shell_id, 'echo c 2>"C:\\ProgramData\\t\\e"')
    stored = files(lab)
    assert stored["C:\\ProgramData\\t\\x"] == "a1\r\n"
    assert stored["C:\\ProgramData\\t\\y"] == "a \r\n"
    assert stored["C:\\ProgramData\\t\\z"] == "b \r\n"
    assert (out, code, stored["C:\\ProgramData\\t\\e"]) == (b"c \r\n", 0, "")
    _out, err, code = run_in(proto, shell_id, 'echo a >"C:\\x" >"C:\\y"')
    assert (err, code) == (b"The syntax of the command is incorrect.\r\n", 1)


def test_move_replaces_or_moves_into_a_folder_and_del_of_nothing_still_exits_0(
    lab: Lab, shell: tuple[winrm.Protocol, str]
) -> None:
    proto, shell_id = shell
    run_in(proto, shell_id, f'mkdir "{FOLDER}\\sub"')
    run_in(proto, shell_id, f'>"{FOLDER}\\a" echo one')
    run_in(proto, shell_id, f'>"{FOLDER}\\b" echo two')
    assert run_in(proto, shell_id, f'move /y "{FOLDER}\\a" "{FOLDER}\\b"') == (
        b"        1 file(s) moved.\r\n", b"", 0
    )
    assert files(lab)[FOLDER + "\\b"] == "one\r\n" and FOLDER + "\\a" not in files(lab)
    assert run_in(proto, shell_id, f'move /y "{FOLDER}\\b" "{FOLDER}\\sub"')[2] == 0
    assert files(lab)[FOLDER + "\\sub\\b"] == "one\r\n"
    _out, err, code = run_in(proto, shell_id, f'move /y "{FOLDER}\\gone" "{FOLDER}\\c"')
    assert (err, code) == (b"The system cannot find the file specified.\r\n", 1)
    assert run_in(proto, shell_id, f'del /q "{FOLDER}\\sub\\b"') == (b"", b"", 0)
    _out, err, code = run_in(proto, shell_id, f'del /q "{FOLDER}\\sub\\b"')
    assert (err, code) == (f"Could Not Find {FOLDER}\\sub\\b\r\n".encode(), 0)
    _out, err, code = run_in(proto, shell_id, f'mkdir "{FOLDER}"')
    assert (err, code) == (f"A subdirectory or file {FOLDER} already exists.\r\n".encode(), 1)


def test_variables_expand_from_the_shells_environment_and_are_never_journaled(
    lab: Lab,
) -> None:
    proto = protocol(lab)
    secret = "QmVzdC1TM2NyM3Qtdw=="
    shell_id = proto.open_shell(codepage=65001, env_vars={"CASDESIRED_CREDENTIAL": secret})
    try:
        assert run_in(proto, shell_id, "echo %casdesired_credential%")[0] == (
            secret.encode() + b"\r\n"
        )
        assert run_in(proto, shell_id, "echo %ProgramData%")[0] == b"C:\\ProgramData\r\n"
        assert run_in(proto, shell_id, "echo %NoSuchVariable%")[0] == b"%NoSuchVariable%\r\n"
    finally:
        proto.close_shell(shell_id)
    assert secret not in str(
        [e for e in lab.journal.entries() if e["kind"] != "command"]
    )


def test_a_lab_without_files_has_no_folder_at_all() -> None:
    from .conftest import FakeOrganisation  # a wire-only host: no file system

    with Lab(FakeOrganisation(), auth="basic", allow_unencrypted=True) as bare:
        proto = protocol(bare)
        shell_id = proto.open_shell()
        try:
            _out, err, code = run_in(proto, shell_id, '>"C:\\ProgramData\\a" echo x')
        finally:
            proto.close_shell(shell_id)
    assert (err, code) == (b"The system cannot find the path specified.\r\n", 1)
