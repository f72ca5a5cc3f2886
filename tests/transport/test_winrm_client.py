"""The WinRM client against loopback labs: the happy path, and every way a connection fails.

Every failure must be a CasdesiredError with a message an administrator can act on, and no
message may contain the password.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import winrm.transport

from casdesired.agent import framing, protocol
from casdesired.desired.config import Connection, Credentials
from casdesired.errors import (
    AgentNotStarted,
    CasdesiredError,
    ConfigError,
    ConnectionFailed,
    ProtocolError,
    ReadFailed,
)
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import WireFault
from casdesired.lab.process import ProcessResult
from casdesired.lab.server import Lab, LabCredentials
from casdesired.lab.wsman.shells import clixml_error
from casdesired.transport.winrm import AgentClient, WinRMTarget, target_from_config

from .conftest import target_of

PASSWORD = "Sup3r-Secret-Marker-9917"
ONE_CALL = (protocol.Invocation("servers", "Get-ExchangeServer", properties=("Name",)),)


@pytest.fixture
def seed_lab() -> Iterator[Callable[..., Lab]]:
    """Factory for labs running the seed organisation (with a known password)."""
    started: list[Lab] = []

    def start(**options: object) -> Lab:
        org = Organisation.from_seed()
        options.setdefault("credentials", LabCredentials(password=PASSWORD))
        lab = Lab(org, journal=org.journal, **options).start()  # type: ignore[arg-type]
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.stop()


def _fails(client: AgentClient, kind: type[CasdesiredError] = ConnectionFailed) -> str:
    with pytest.raises(kind) as raised:
        client.run(client.make_request(ONE_CALL))
    message = str(raised.value)
    assert PASSWORD not in message
    assert "Traceback" not in message
    return message


def test_one_shell_one_command_stdin_borne_agent_and_cleanup(seed_lab: Callable[..., Lab]) -> None:
    lab = seed_lab(auth="ntlm")
    client = AgentClient(target_of(lab))
    response = client.run(client.make_request(ONE_CALL))
    assert response.results[0].ok
    names = {o["Name"] for o in response.results[0].objects}
    assert {"HQ-CAS01", "HQ-MBX02", "DR-CAS02"} <= names
    assert client.executions == 1 and lab.journal.count("command") == 1
    actions = [e["action"] for e in lab.journal.entries(["wsman"])]
    assert actions[0] == "Create" and actions[1] == "Command" and actions[2] == "Send"
    assert actions[-2:] == ["Signal", "Delete"]  # cleaned up
    assert client.requests == len(actions)
    assert lab.open_shells == 0
    # The command line is the short bootstrap; the request never appears on it.
    command = lab.journal.entries(["command"])[0]
    assert len(str(command.get("command_line", command))) < 3000


def test_environment_proxies_are_not_used(
    seed_lab: Callable[..., Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = seed_lab(auth="ntlm")
    # A proxy that cannot answer: if the client used it, the run would fail.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = AgentClient(target_of(lab))
    assert client.run(client.make_request(ONE_CALL)).results[0].ok


def test_wrong_password_ntlm(seed_lab: Callable[..., Lab]) -> None:
    lab = seed_lab(auth="ntlm")
    message = _fails(AgentClient(target_of(lab, password="Wrong-" + PASSWORD)))
    assert "rejected the credentials (ntlm authentication)" in message
    assert "user name or password is wrong" in message
    assert "LocalAccountTokenFilterPolicy" in message
    assert "Wrong-" not in message


def test_wrong_password_basic_over_http_lists_the_basic_causes(
    seed_lab: Callable[..., Lab],
) -> None:
    lab = seed_lab(auth="basic", allow_unencrypted=True)
    target = target_of(lab, transport="basic", password="nope", credential_source="CAS_USER")
    message = _fails(AgentClient(target))
    assert "Basic authentication is disabled" in message
    assert "AllowUnencrypted" in message
    assert "LocalAccountTokenFilterPolicy" in message
    assert "taken from CAS_USER" in message


def test_credentials_rejected_by_the_service(seed_lab: Callable[..., Lab]) -> None:
    lab = seed_lab(auth="ntlm")
    lab.faults.reject_credentials = True
    assert "rejected the credentials" in _fails(AgentClient(target_of(lab)))


def test_http_500_without_a_fault(seed_lab: Callable[..., Lab]) -> None:
    lab = seed_lab(auth="ntlm")
    lab.faults.wire.append(WireFault(kind="http500", action="Create"))
    message = _fails(AgentClient(target_of(lab)))
    assert "answered HTTP 500 while opening a shell" in message
    assert "without a WS-Management fault" in message


def test_wsman_fault_gives_reason_and_code(seed_lab: Callable[..., Lab]) -> None:
    lab = seed_lab(auth="ntlm")
    lab.faults.wire.append(
        WireFault(kind="wsman_fault", action="Command", message="The shell quota is exhausted.")
    )
    message = _fails(AgentClient(target_of(lab)))
    assert "WS-Management fault while starting the agent" in message
    assert "The shell quota is exhausted." in message
    assert "2150858770" in message and "0x80338012" in message
    assert lab.open_shells == 0  # the shell opened before the fault was closed


def test_dropped_connection(seed_lab: Callable[..., Lab]) -> None:
    lab = seed_lab(auth="ntlm")
    lab.faults.wire.append(WireFault(kind="drop", action="Receive"))
    message = _fails(AgentClient(target_of(lab)))
    assert "closed without an answer while reading the agent's output" in message


@pytest.mark.parametrize(
    ("action", "kind", "started"),
    [
        ("Create", "drop", False),
        ("Create", "http500", False),
        ("Command", "drop", False),
        ("Command", "wsman_fault", False),
        ("Send", "drop", True),
        ("Receive", "drop", True),
    ],
)
def test_a_failure_before_the_agent_could_start_says_so(
    seed_lab: Callable[..., Lab], action: str, kind: str, started: bool
) -> None:
    # apply decides from this whether a failed request may have run (its changes "unknown",
    # the lock kept) or surely did not (changes "not attempted", the lock released).
    lab = seed_lab(auth="ntlm")
    lab.faults.wire.append(WireFault(kind=kind, action=action))  # type: ignore[arg-type]
    client = AgentClient(target_of(lab))
    with pytest.raises(ConnectionFailed) as raised:
        client.run(client.make_request(ONE_CALL))
    assert isinstance(raised.value, AgentNotStarted) is not started
    if not started:
        assert lab.journal.count("cmdlet") == 0  # nothing reached the Exchange side


def test_hung_service_times_out_reading(seed_lab: Callable[..., Lab]) -> None:
    lab = seed_lab(auth="ntlm")
    lab.faults.wire.append(WireFault(kind="hang", action="Command"))
    target = target_of(lab, operation_timeout=1.0, read_timeout=2.0)
    message = _fails(AgentClient(target))
    assert "sent no answer within 2 s (read timeout) while starting the agent" in message


def test_tls_without_the_ca_fails_verification_and_says_how_to_trust_it(
    seed_lab: Callable[..., Lab],
) -> None:
    lab = seed_lab(auth="basic", tls=True)
    target = target_of(lab, transport="basic", ca_trust_path=None)
    message = _fails(AgentClient(target))
    assert message.startswith(f"TLS verification failed for {lab.url}")
    assert "ca_bundle" in message
    assert "validate: false" not in message and "ignore" not in message


def test_tls_with_the_ca_bundle_works(seed_lab: Callable[..., Lab]) -> None:
    lab = seed_lab(auth="basic", tls=True)
    assert lab.ca_file is not None
    client = AgentClient(target_of(lab, transport="basic", ca_trust_path=str(lab.ca_file)))
    assert client.run(client.make_request(ONE_CALL)).results[0].ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused() -> None:
    port = _free_port()
    target = WinRMTarget(url=f"http://127.0.0.1:{port}/wsman", username="u", password=PASSWORD)
    message = _fails(AgentClient(target))
    assert f"Could not connect to 127.0.0.1:{port}" in message and "connection refused" in message
    assert "winrm quickconfig" in message


def test_connect_timeout_when_nobody_completes_the_handshake() -> None:
    # A listener whose backlog is full: the kernel drops further SYNs, like a firewall would.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        target = WinRMTarget(
            url=f"http://127.0.0.1:{port}/wsman",
            username="u",
            password=PASSWORD,
            connect_timeout=0.5,
        )
        message = _fails(AgentClient(target))
    finally:
        for filler in fillers:
            filler.close()
        server.close()
    assert "Timed out after 0.5 s connecting to 127.0.0.1" in message


def test_unknown_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def no_such_host(host: object, *args: object, **kwargs: object) -> object:
        if host == "ex99.contoso.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    url = "http://ex99.contoso.invalid:5985/wsman"
    target = WinRMTarget(url=url, password=PASSWORD, username="u")
    message = _fails(AgentClient(target))
    assert "Could not resolve the host name 'ex99.contoso.invalid'" in message


@pytest.mark.skipif(winrm.transport.HAVE_KERBEROS, reason="the kerberos extra is installed")
def test_missing_kerberos_extra_names_the_pip_extra() -> None:
    with pytest.raises(ConnectionFailed, match=r"pip install 'casdesired\[kerberos\]'"):
        AgentClient(WinRMTarget(url="http://127.0.0.1:5985/wsman", transport="kerberos"))


@pytest.mark.skipif(winrm.transport.HAVE_CREDSSP, reason="the credssp extra is installed")
def test_missing_credssp_extra_names_the_pip_extra() -> None:
    with pytest.raises(ConnectionFailed, match=r"pip install 'casdesired\[credssp\]'"):
        AgentClient(WinRMTarget(url="http://127.0.0.1:5985/wsman", transport="credssp"))


# --- what the far side printed ----------------------------------------------------------------


def test_no_frame_quotes_the_cleaned_powershell_error(
    scripted_lab: Callable[..., Lab],
) -> None:
    progress = (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/'
        '2004/04"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.'
        "PSCustomObject</T></TN><MS><I64 N=\"SourceId\">1</I64></MS></Obj></Objs>"
    )
    error = clixml_error(
        "The term 'Add-PSSnapin' is not recognized as the name of a cmdlet.\r\nAt line:1 char:1"
    )

    def fails(_script: str, _stdin: bytes) -> ProcessResult:
        return ProcessResult(stdout="Welcome banner\r\n", stderr=progress + error, exit_code=1)

    lab = scripted_lab(fails, credentials=LabCredentials(password=PASSWORD))
    message = _fails(AgentClient(target_of(lab)), ProtocolError)
    assert "returned no result (exit code 1)" in message
    assert "'Add-PSSnapin' is not recognized as the name of a cmdlet.\nAt line:1" in message
    assert "CLIXML" not in message and "progress" not in message and "_x000D_" not in message


def test_banners_and_noise_around_the_frame_do_not_matter(
    scripted_lab: Callable[..., Lab],
) -> None:
    framed = framing.encode_response(
        protocol.Response(
            results=(protocol.Result("servers", True, ({"Name": "\u00c5SE-CAS01"},)),),
            host="HQ-CAS01",
        )
    )

    def noisy(_script: str, _stdin: bytes) -> ProcessResult:
        return ProcessResult(
            stdout="WARNING: banner\r\n" + "x" * 200 + framed + "\r\ntrailing noise\r\n",
            stderr=clixml_error("a warning nobody needs"),
            exit_code=0,
        )

    lab = scripted_lab(noisy)
    client = AgentClient(target_of(lab))
    response = client.run(client.make_request(ONE_CALL))
    assert response.results[0].objects[0]["Name"] == "\u00c5SE-CAS01"


def test_a_cut_off_frame_is_a_protocol_error(scripted_lab: Callable[..., Lab]) -> None:
    def cut(_script: str, _stdin: bytes) -> ProcessResult:
        return ProcessResult(stdout=framing.RESPONSE_BEGIN + "eyJ0cnVuY2F0", exit_code=0)

    lab = scripted_lab(cut, credentials=LabCredentials(password=PASSWORD))
    assert "cut off" in _fails(AgentClient(target_of(lab)), ProtocolError)


def test_an_agent_that_cannot_start_is_a_read_failure_naming_why(
    seed_lab: Callable[..., Lab],
) -> None:
    lab = seed_lab(auth="ntlm")
    client = AgentClient(target_of(lab))
    request = client.make_request(ONE_CALL, modules=("NoSuchModule",))
    with pytest.raises(ReadFailed) as raised:
        client.run(request)
    assert "could not start, so nothing was read or changed" in str(raised.value)
    assert "NoSuchModule" in str(raised.value)


# --- configuration ----------------------------------------------------------------------------


def _connection(**changes: object) -> Connection:
    base: dict[str, object] = {
        "endpoint": "https://ex01.contoso.local:5986/wsman",
        "transport": "ntlm",
        "exchange_mode": "snapin",
        "exchange_uri": None,
        "tls_validate": True,
        "ca_bundle": Path("/etc/casdesired/ca.pem"),
        "connect_timeout": 7.0,
        "operation_timeout": 40.0,
        "credentials": Credentials(username_env="CAS_USER", password_env="CAS_PASS"),
        "lab_state": None,
    }
    base.update(changes)
    return Connection(**base)  # type: ignore[arg-type]


def test_target_from_config_reads_the_named_variables() -> None:
    target = target_from_config(
        _connection(), {"CAS_USER": "CONTOSO\\svc-cas", "CAS_PASS": PASSWORD}
    )
    assert target.username == "CONTOSO\\svc-cas" and target.password == PASSWORD
    assert target.ca_trust_path == "/etc/casdesired/ca.pem" and target.server_cert_validation
    assert target.connect_timeout == 7.0 and target.read_timeout > target.operation_timeout
    assert target.proxy is None
    assert PASSWORD not in repr(target)


def test_a_missing_variable_is_named_never_valued() -> None:
    with pytest.raises(ConfigError) as raised:
        target_from_config(_connection(), {"CAS_USER": "CONTOSO\\svc-cas"})
    message = str(raised.value)
    assert "CAS_PASS" in message and "svc-cas" not in message


def test_requests_carry_explicit_credentials_for_the_agents_second_hops() -> None:
    # Field fact §1c: credentials passed inside the session work without delegation.
    conn = _connection(exchange_mode="remote", exchange_uri="http://hq-cas01/PowerShell/")
    target = target_from_config(conn, {"CAS_USER": "CONTOSO\\svc", "CAS_PASS": PASSWORD})
    assert target.exchange.mode == "remote" and target.exchange.uri == "http://hq-cas01/PowerShell/"
    assert target.credential == protocol.Credential("CONTOSO\\svc", PASSWORD)
    assert AgentClient(target).make_request(ONE_CALL).credential == target.credential
    assert PASSWORD not in repr(target) and PASSWORD not in repr(target.credential)
    # No uri: the agent's own host's /PowerShell.
    default = target_from_config(
        _connection(exchange_mode="remote"), {"CAS_USER": "u", "CAS_PASS": "p"}
    )
    assert default.exchange.uri is None


def test_certificate_transport_needs_existing_files(tmp_path: Path) -> None:
    conn = _connection(
        transport="certificate",
        credentials=Credentials(cert_pem_env="CAS_CERT", cert_key_env="CAS_KEY"),
    )
    with pytest.raises(ConfigError, match=r"CAS_CERT names .*not a file"):
        target_from_config(conn, {"CAS_CERT": str(tmp_path / "none.pem"), "CAS_KEY": "x"})
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("cert")
    key.write_text("key")
    target = target_from_config(conn, {"CAS_CERT": str(cert), "CAS_KEY": str(key)})
    assert target.transport == "certificate" and target.cert_pem == str(cert)
