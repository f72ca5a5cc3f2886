"""Credentials pasted into the endpoint URL never reach any output, and nothing connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from casdesired.cli import main
from casdesired.desired.config import Connection, Credentials, display_url
from casdesired.errors import ConfigError
from casdesired.transport.winrm import target_from_config

CASE = "tests/fixtures/desired/input/secret-in-url"


@pytest.mark.parametrize("command", ["plan", "apply", "validate"])
def test_no_command_prints_or_uses_a_password_in_the_endpoint(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [command, CASE] + (["--auto-approve"] if command == "apply" else [])
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "Hunter2Sekr1t" not in captured.out + captured.err
    assert "endpoint" in captured.out + captured.err


def test_the_transport_refuses_such_a_url_without_echoing_it() -> None:
    conn = Connection(
        endpoint="https://admin:Hunter2Sekr1t@ex01.contoso.local:5986/wsman",
        transport="ntlm",
        exchange_mode="snapin",
        exchange_uri=None,
        tls_validate=True,
        ca_bundle=None,
        connect_timeout=10,
        operation_timeout=120,
        credentials=Credentials("U", "P", None, None),
        lab_state=None,
    )
    with pytest.raises(ConfigError) as raised:
        target_from_config(conn, {"U": "admin", "P": "x"})
    assert "Hunter2Sekr1t" not in str(raised.value)


def test_display_url_drops_the_user_part() -> None:
    shown = display_url("https://admin:Hunter2Sekr1t@ex01.contoso.local:5986/wsman")
    assert shown == "https://***@ex01.contoso.local:5986/wsman"
    assert display_url("https://ex01/wsman") == "https://ex01/wsman"
    assert Path(CASE).is_dir()
