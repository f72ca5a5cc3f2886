"""``casdesired doctor``'s TSIG check against a real BIND: a signed SOA query proves the key,
a wrong secret or an unknown key fails it with the remedy, and nothing is ever updated."""

from __future__ import annotations

import base64

import pytest
from bind import ZONE, BindServer

from casdesired.dns.endpoints import parse_endpoint
from casdesired.dns.lookup import lookup_a
from casdesired.dns.tsig import TsigConfig
from casdesired.doctor.dns import _tsig
from casdesired.doctor.model import Status

SECRET_ENV = "CASDESIRED_TSIG_SECRET"


def tsig_for(bind: BindServer, key_name: str | None = None) -> TsigConfig:
    return TsigConfig(key_name=key_name or bind.key_name, algorithm=bind.key_algorithm,
                      secret_env=SECRET_ENV, server=bind.address, zone=ZONE)


def test_the_servers_own_key_passes_and_changes_nothing(bind_server: BindServer) -> None:
    before = lookup_a("outlook-hq." + ZONE, parse_endpoint(bind_server.address))
    found = _tsig(tsig_for(bind_server), {SECRET_ENV: bind_server.key_secret})
    assert found.status is Status.PASS, found
    assert "accepted a query signed with TSIG key" in found.evidence[0]
    assert lookup_a("outlook-hq." + ZONE, parse_endpoint(bind_server.address)) == before


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_a_wrong_secret_or_an_unknown_key_fails_with_the_remedy(
    bind_server: BindServer, wrong: str
) -> None:
    secret = bind_server.key_secret
    if wrong == "secret":
        secret = base64.b64encode(b"not the key at all, 32 bytes!!!!").decode()
    config = tsig_for(bind_server, "nobody-knows-me" if wrong == "key" else None)
    found = _tsig(config, {SECRET_ENV: secret})
    assert found.status is Status.FAIL, found
    assert SECRET_ENV in (found.remedy or "")
    assert secret not in " ".join(found.evidence) + (found.remedy or "")


def test_an_unset_variable_fails_naming_it(bind_server: BindServer) -> None:
    found = _tsig(tsig_for(bind_server), {})
    assert found.status is Status.FAIL
    assert f"environment variable {SECRET_ENV} is not set" in found.evidence[0]
