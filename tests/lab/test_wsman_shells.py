"""WS-Man shells driven by the unmodified pywinrm client over a real loopback socket."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import winrm
from winrm.exceptions import WSManFaultError

from casdesired.agent.framing import encode_command
from casdesired.lab.server import Lab

from .conftest import FakeOrganisation, Wire, pattern, protocol, run, session


def test_hostname_prints_the_organisation_host_name(basic_lab: Lab) -> None:
    assert run(protocol(basic_lab), "hostname") == (b"HQ-CAS01\r\n", b"", 0)


def test_hostname_defaults_to_ex01_without_an_organisation_hostname() -> None:
    class Bare:
        """An organisation without a ``hostname`` attribute."""

        def __init__(self) -> None:
            self._inner = FakeOrganisation()
            self.run = self._inner.run
            self.snapshot, self.load, self.reset = (
                self._inner.snapshot, self._inner.load, self._inner.reset,
            )

    with Lab(Bare(), auth="basic", allow_unencrypted=True) as lab:
        assert run(protocol(lab), "hostname")[0] == b"EX01\r\n"


def test_echo_joins_command_and_arguments_like_cmd(basic_lab: Lab) -> None:
    assert run(protocol(basic_lab), "echo", ("hello", "lab")) == (b"hello lab\r\n", b"", 0)
    assert run(protocol(basic_lab), "echo hello")[0] == b"hello\r\n"


def test_unknown_command_fails_as_cmd_does(basic_lab: Lab) -> None:
    out, err, code = run(protocol(basic_lab), "ipconfig", ("/all",))
    assert out == b""
    assert err == (
        b"'ipconfig' is not recognized as an internal or external command,\r\n"
        b"operable program or batch file.\r\n"
    )
    assert code == 1


def test_command_line_limit_is_8191_characters(basic_lab: Lab) -> None:
    proto = protocol(basic_lab)
    longest = "x" * (8191 - len("echo "))
    out, err, code = run(proto, "echo", (longest,))
    assert (out, code) == (longest.encode() + b"\r\n", 0)
    out, err, code = run(proto, "echo", (longest + "y",))
    assert (out, err, code) == (b"", b"The command line is too long.\r\n", 1)


def test_powershell_encoded_command_reaches_the_host_decoded(
    basic_lab: Lab, organisation: FakeOrganisation
) -> None:
    result = session(basic_lab).run_ps("say hello from PowerShell")
    assert (result.std_out, result.status_code) == (b"hello from PowerShell\r\n", 0)
    assert organisation.runs == [("say hello from PowerShell", b"")]
    command = basic_lab.journal.entries(["command"])[-1]
    assert command["script"] == "say hello from PowerShell"
    assert command["command_line"].startswith("powershell -encodedcommand ")


@pytest.mark.parametrize("spelling", ["-EncodedCommand", "-enc", "-ENCODEDCOMMAND", "-e", "-ec"])
def test_encoded_command_spellings(basic_lab: Lab, spelling: str) -> None:
    line = f"powershell.exe -NoProfile -NonInteractive {spelling} {encode_command('say ok')}"
    assert run(protocol(basic_lab), line)[0] == b"ok\r\n"


def test_powershell_command_text_goes_to_the_host(
    basic_lab: Lab, organisation: FakeOrganisation
) -> None:
    assert run(protocol(basic_lab), "powershell", ("-Command", "say", "plain"))[0] == b"plain\r\n"
    assert organisation.runs[-1][0] == "say plain"


def test_a_script_the_host_does_not_understand_fails_with_clixml(basic_lab: Lab) -> None:
    _out, err, code = run(protocol(basic_lab), f"powershell -encodedcommand {encode_command('x')}")
    assert code == 1
    assert err.startswith(b"#< CLIXML\r\n<Objs")
    assert b'<S S="Error">' in err


def test_badly_encoded_command_fails(basic_lab: Lab) -> None:
    _out, err, code = run(protocol(basic_lab), "powershell -encodedcommand not-base64!")
    assert code == 1 and b"not properly encoded" in err


def test_stdin_sent_in_pieces_reaches_the_script(
    organisation: FakeOrganisation, wire: Wire, connect: Callable[..., winrm.Protocol]
) -> None:
    with wire.lab(organisation) as lab:
        proto = connect(lab)
        shell = proto.open_shell()
        script = f"powershell -encodedcommand {encode_command('echo-stdin')}"
        command = proto.run_command(shell, script)
        proto.send_command_input(shell, command, b"first line\r\n")
        proto.send_command_input(shell, command, "z\u00fcrich\r\n".encode(), end=True)
        out, err, code = proto.get_command_output(shell, command)
        proto.cleanup_command(shell, command)
        proto.close_shell(shell)
    assert (out, err, code) == ("first line\r\nz\u00fcrich\r\n".encode("cp437"), b"", 0)
    assert organisation.runs[-1][1] == "first line\r\nzürich\r\n".encode()
    # stdin is data for the script, never journaled
    assert all("first line" not in str(e) for e in lab.journal.entries())


def test_script_waits_for_the_end_of_stdin(basic_lab: Lab, organisation: FakeOrganisation) -> None:
    proto = protocol(basic_lab, operation_timeout_sec=1, read_timeout_sec=3)
    shell = proto.open_shell()
    command = proto.run_command(shell, f"powershell -enc {encode_command('echo-stdin')}")
    proto.send_command_input(shell, command, b"part", end=False)
    from winrm.exceptions import WinRMOperationTimeoutError

    with pytest.raises(WinRMOperationTimeoutError):
        proto.get_command_output_raw(shell, command)
    assert organisation.runs == []
    proto.send_command_input(shell, command, b"-rest", end=True)
    assert proto.get_command_output(shell, command)[0] == b"part-rest"
    proto.close_shell(shell)


def _recording(proto: Any) -> list[bytes]:
    """Wrap the client's transport to keep every response body (pywinrm itself unchanged)."""
    answers: list[bytes] = []
    original = proto.transport.send_message

    def send(message: Any) -> bytes:
        answer: bytes = original(message)
        answers.append(answer)
        return answer

    proto.transport.send_message = send
    return answers


def test_one_megabyte_of_output_streams_in_envelopes_under_max_size(
    organisation: FakeOrganisation, wire: Wire, connect: Callable[..., winrm.Protocol]
) -> None:
    size = 1024 * 1024
    with wire.lab(organisation) as lab:
        proto = connect(lab)
        answers = _recording(proto)
        out, err, code = run(proto, f"powershell -encodedcommand {encode_command(f'bytes {size}')}")
    assert (len(out), err, code) == (size, b"", 0)
    assert out == pattern(size).encode()
    receives = [a for a in answers if b"ReceiveResponse</a:Action>" in a]
    assert len(receives) >= 7  # 1 MiB cannot fit fewer 150 KiB envelopes
    assert all(len(a) <= proto.max_env_sz for a in receives)
    assert max(len(a) for a in receives) > proto.max_env_sz * 0.9  # and they are well filled
    assert sum(a.count(b"CommandState/Running") for a in receives) == len(receives) - 1


def test_codepage_437_replaces_what_it_cannot_encode(basic_lab: Lab) -> None:
    line = f"powershell -encodedcommand {encode_command('say Zürich ✓')}"
    assert run(protocol(basic_lab), line, codepage=437)[0] == b"Z\x81rich ?\r\n"


def test_codepage_65001_carries_utf8(basic_lab: Lab) -> None:
    line = f"powershell -encodedcommand {encode_command('say Zürich ✓')}"
    assert run(protocol(basic_lab), line, codepage=65001)[0] == "Zürich ✓\r\n".encode()


def test_receive_long_poll_times_out_and_pywinrm_retries(basic_lab: Lab) -> None:
    proto = protocol(basic_lab, operation_timeout_sec=1, read_timeout_sec=3)
    out, _err, code = run(proto, f"powershell -enc {encode_command('sleep 2.2 then finally')}")
    assert (out, code) == (b"finally\r\n", 0)
    receives = [e for e in basic_lab.journal.entries(["wsman"]) if e["action"] == "Receive"]
    assert [e["status"] for e in receives][:2] == [500, 500]
    assert receives[-1]["status"] == 200


def test_receive_answers_as_soon_as_the_command_ends(basic_lab: Lab) -> None:
    import time

    proto = protocol(basic_lab, operation_timeout_sec=20, read_timeout_sec=30)
    started = time.monotonic()
    assert run(proto, f"powershell -enc {encode_command('sleep 0.3 then quick')}")[0] == (
        b"quick\r\n"
    )
    assert time.monotonic() - started < 5


def test_unknown_shell_is_an_invalid_selectors_fault(basic_lab: Lab) -> None:
    proto = protocol(basic_lab)
    missing = str(uuid.uuid4()).upper()
    with pytest.raises(WSManFaultError) as caught:
        proto.run_command(missing, "hostname")
    assert caught.value.code == 500
    assert caught.value.wsman_fault_code == 2150858843
    assert caught.value.fault_subcode == "w:InvalidSelectors"
    assert missing in caught.value.reason


def test_deleted_shell_is_gone(basic_lab: Lab) -> None:
    proto = protocol(basic_lab)
    shell = proto.open_shell()
    assert basic_lab.open_shells == 1
    proto.close_shell(shell, close_session=False)
    assert basic_lab.open_shells == 0
    with pytest.raises(WSManFaultError) as caught:
        proto.close_shell(shell)
    assert caught.value.wsman_fault_code == 2150858843


def test_shell_ids_are_uppercase_guids(basic_lab: Lab) -> None:
    shell = protocol(basic_lab).open_shell()
    assert shell == str(uuid.UUID(shell)).upper()


def test_plain_stderr_and_exit_code_pass_through(basic_lab: Lab) -> None:
    out, err, code = run(protocol(basic_lab), f"powershell -enc {encode_command('stderr oops')}")
    assert (out, err, code) == (b"", b"oops\r\n", 2)


def test_cmd_operators_are_refused_not_faked(basic_lab: Lab) -> None:
    _out, err, code = run(protocol(basic_lab), "echo a & echo b")
    assert code == 1 and b"not emulated" in err
