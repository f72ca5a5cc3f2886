"""RFC 2136 record management signed with TSIG, against a real BIND (see bind.py)."""

from __future__ import annotations

import base64
import dataclasses
import itertools

import pytest
from bind import OPEN_ZONE, READONLY_ZONE, ZONE, BindServer, silent_port

from casdesired import model
from casdesired.dns import (
    ArrayExpectation,
    DnsError,
    DnsUpdateError,
    RecordChange,
    TsigConfig,
    apply_record_change,
    check_arrays,
    plan_records,
    primary_lookup,
    record_change,
    resolve_a,
)

SECRET_ENV = "CASDESIRED_TEST_TSIG"
_names = itertools.count(1)


def fresh_name() -> str:
    """A name no other test touches, so tests sharing one BIND stay independent."""
    return f"array{next(_names)}.{ZONE}"


def tsig_for(bind: BindServer, **overrides: object) -> TsigConfig:
    config = TsigConfig(
        key_name=bind.key_name,
        algorithm=bind.key_algorithm,
        secret_env=SECRET_ENV,
        server=bind.address,
        zone=ZONE,
    )
    return dataclasses.replace(config, **overrides)  # type: ignore[arg-type]


def environ(server: BindServer) -> dict[str, str]:
    return {SECRET_ENV: server.key_secret}


def apply_all(changes: list[RecordChange], server: BindServer) -> None:
    for change in changes:
        apply_record_change(change, environ=environ(server))


def test_new_array_plans_a_create_that_applies_and_then_resolves(
    bind_server: BindServer,
) -> None:
    tsig = tsig_for(bind_server)
    array = ArrayExpectation(fresh_name(), "10.20.0.50")

    changes = plan_records([array], tsig=tsig, live=primary_lookup(tsig))

    assert changes == [
        record_change("create", array.fqdn, ZONE, (), ("10.20.0.50",), 300, management=tsig)
    ]
    assert changes[0].describe() == (
        f"create DNS A record {array.fqdn} -> 10.20.0.50, TTL 300 "
        f"(zone {ZONE} at DNS server {bind_server.address})"
    )
    apply_all(changes, bind_server)
    assert resolve_a(array.fqdn, resolvers=[bind_server.address]) == {"10.20.0.50"}
    assert check_arrays([array], resolvers=[bind_server.address]) == []
    assert plan_records([array], tsig=tsig, live=primary_lookup(tsig)) == []


def test_wrong_address_plans_an_update_and_rollback_restores_it(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server)
    name = fresh_name()
    addresses = ("10.21.0.7", "10.21.0.8")
    created = record_change("create", name, ZONE, (), addresses, 60, management=tsig)
    apply_all([created], bind_server)
    array = ArrayExpectation(name, "10.21.0.50")

    [change] = plan_records([array], tsig=tsig, live=primary_lookup(tsig))

    assert (change.action, change.before_addresses, change.after_addresses) == (
        "update",
        ("10.21.0.7", "10.21.0.8"),
        ("10.21.0.50",),
    )
    apply_all([change], bind_server)
    assert resolve_a(name, resolvers=[bind_server.address]) == {"10.21.0.50"}
    apply_all([change.inverse()], bind_server)
    assert resolve_a(name, resolvers=[bind_server.address]) == {"10.21.0.7", "10.21.0.8"}


def test_absent_array_plans_a_delete(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server)
    name = fresh_name()
    created = record_change("create", name, ZONE, (), ("10.22.0.50",), 60, management=tsig)
    apply_all([created], bind_server)
    gone = ArrayExpectation(name, "10.22.0.50", ensure=model.Ensure.ABSENT)

    [change] = plan_records([gone], tsig=tsig, live=primary_lookup(tsig))

    assert (change.action, change.before_addresses, change.after_addresses) == (
        "delete", ("10.22.0.50",), ()
    )
    apply_all([change], bind_server)
    assert primary_lookup(tsig)(name) == set()
    assert plan_records([gone], tsig=tsig, live=primary_lookup(tsig)) == []


def test_a_record_changed_since_the_plan_is_not_clobbered(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server)
    name = fresh_name()
    created = record_change("create", name, ZONE, (), ("10.23.0.1",), 60, management=tsig)
    apply_all([created], bind_server)
    [planned] = plan_records(
        [ArrayExpectation(name, "10.23.0.50")], tsig=tsig, live=primary_lookup(tsig)
    )
    # Someone else repoints the name between plan and apply.
    moved = record_change("update", name, ZONE, ("10.23.0.1",), ("10.23.0.2",), 60, management=tsig)
    apply_all([moved], bind_server)

    with pytest.raises(DnsUpdateError, match="changed since the plan") as raised:
        apply_record_change(planned, environ=environ(bind_server))

    assert "the plan saw 10.23.0.1" in str(raised.value)
    assert primary_lookup(tsig)(name) == {"10.23.0.2"}


def test_a_create_does_not_overwrite_a_record_that_appeared(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server)
    name = fresh_name()
    [planned] = plan_records(
        [ArrayExpectation(name, "10.24.0.50")], tsig=tsig, live=primary_lookup(tsig)
    )
    created = record_change("create", name, ZONE, (), ("10.24.0.9",), 60, management=tsig)
    apply_all([created], bind_server)

    with pytest.raises(DnsUpdateError, match="changed since the plan"):
        apply_record_change(planned, environ=environ(bind_server))
    assert primary_lookup(tsig)(name) == {"10.24.0.9"}


def test_wrong_secret_is_badsig_and_never_shows_a_secret(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server)
    wrong = base64.b64encode(b"not the key the server holds, 32b").decode()
    change = record_change("create", fresh_name(), ZONE, (), ("10.25.0.50",), 60, management=tsig)

    with pytest.raises(DnsUpdateError) as raised:
        apply_record_change(change, environ={SECRET_ENV: wrong})

    message = str(raised.value)
    assert "BADSIG" in message
    assert f"the secret in {SECRET_ENV} does not match" in message
    assert wrong not in message and bind_server.key_secret not in message
    assert primary_lookup(tsig)(change.name) == set()


def test_unknown_key_is_badkey(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server, key_name="no-such-key")
    change = record_change("create", fresh_name(), ZONE, (), ("10.26.0.50",), 60, management=tsig)

    with pytest.raises(DnsUpdateError, match="does not know TSIG key no-such-key") as raised:
        apply_record_change(change, environ=environ(bind_server))
    assert "BADKEY" in str(raised.value)
    assert bind_server.key_secret not in str(raised.value)


def test_update_refused_by_policy_says_so(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server, zone=READONLY_ZONE)
    change = record_change(
        "update", f"outlook.{READONLY_ZONE}", READONLY_ZONE, ("10.9.0.50",), ("10.9.0.51",), 60,
        management=tsig,
    )

    with pytest.raises(DnsUpdateError, match=r"refused the update .* \(REFUSED\)") as raised:
        apply_record_change(change, environ=environ(bind_server))
    assert "policy does not let TSIG key casdesired-test change" in str(raised.value)
    assert primary_lookup(tsig)(change.name) == {"10.9.0.50"}


def test_unsigned_updates_work_where_the_zone_allows_them(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server, zone=OPEN_ZONE, unsigned=True, secret_env="UNSET_ON_PURPOSE")
    array = ArrayExpectation(f"outlook.{OPEN_ZONE}", "10.40.0.50")

    changes = plan_records([array], tsig=tsig, live=primary_lookup(tsig))
    for change in changes:
        apply_record_change(change, environ={})

    assert resolve_a(array.fqdn, resolvers=[bind_server.address]) == {"10.40.0.50"}


def test_unsigned_updates_to_a_keyed_zone_are_refused(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server, unsigned=True)
    change = record_change("create", fresh_name(), ZONE, (), ("10.41.0.50",), 60, management=tsig)

    with pytest.raises(DnsUpdateError, match="does not let unsigned updates change this zone"):
        apply_record_change(change, environ={})
    assert primary_lookup(tsig)(change.name) == set()


def test_zone_the_server_does_not_serve_is_notauth(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server, zone="fabrikam.local")
    change = record_change(
        "create", "outlook.fabrikam.local", "fabrikam.local", (), ("10.27.0.50",), 60,
        management=tsig,
    )

    with pytest.raises(DnsUpdateError, match=r"not authoritative for zone fabrikam\.local"):
        apply_record_change(change, environ=environ(bind_server))


def test_silent_primary_times_out_saying_the_outcome_is_unknown(bind_server: BindServer) -> None:
    with silent_port() as port:
        tsig = tsig_for(bind_server, server=f"127.0.0.1:{port}")
        change = record_change(
            "create", fresh_name(), ZONE, (), ("10.28.0.50",), 60, management=tsig
        )
        with pytest.raises(DnsUpdateError, match="may or may not have been applied"):
            apply_record_change(change, environ=environ(bind_server), timeout=0.3)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, f"environment variable {SECRET_ENV} is not set"),
        ({SECRET_ENV: "Pa$$w0rd!"}, f"environment variable {SECRET_ENV} does not hold a base64"),
    ],
)
def test_secret_problems_name_the_variable_not_the_value(
    bind_server: BindServer, env: dict[str, str], says: str
) -> None:
    change = record_change(
        "create", fresh_name(), ZONE, (), ("10.29.0.50",), 60, management=tsig_for(bind_server)
    )

    with pytest.raises(DnsError, match=says.replace("$", r"\$")) as raised:
        apply_record_change(change, environ=env)
    assert "Pa$$w0rd!" not in str(raised.value)


@pytest.mark.parametrize(
    ("algorithm", "says"),
    [("hmac-sha999", "unknown TSIG algorithm"), ("gss-tsig", "gss-tsig .* is not supported")],
)
def test_unsupported_algorithms_are_refused(
    bind_server: BindServer, algorithm: str, says: str
) -> None:
    tsig = tsig_for(bind_server, algorithm=algorithm)
    change = record_change("create", fresh_name(), ZONE, (), ("10.30.0.50",), 60, management=tsig)

    with pytest.raises(DnsError, match=says):
        apply_record_change(change, environ=environ(bind_server))


def test_arrays_outside_the_managed_zone_are_refused(bind_server: BindServer) -> None:
    tsig = tsig_for(bind_server)
    outside = ArrayExpectation("outlook.fabrikam.local", "10.31.0.50")

    with pytest.raises(DnsError, match=r"not in the managed DNS zone contoso\.local"):
        plan_records([outside], tsig=tsig, live=primary_lookup(tsig))


def test_changes_serialise_for_the_plan_with_their_management_and_invert() -> None:
    tsig = TsigConfig("casdesired", "hmac-sha256", SECRET_ENV, "10.0.0.53:5353", ZONE)
    change = record_change(
        "update", "outlook.contoso.local", ZONE, ("10.0.0.1",), ("10.0.0.2",), 300,
        management=tsig, site="HQ",
    )

    data = change.to_json()
    assert data == {
        "kind": "dns_record_update",
        "site": "HQ",
        "name": "outlook.contoso.local",
        "zone": ZONE,
        "before_addresses": ["10.0.0.1"],
        "after_addresses": ["10.0.0.2"],
        "ttl": 300,
        "server": "10.0.0.53:5353",
        "key_name": "casdesired",
        "algorithm": "hmac-sha256",
        "secret_env": SECRET_ENV,
        "unsigned": False,
    }
    assert type(change).from_json(data) == dataclasses.replace(
        change, management=dataclasses.replace(tsig, ttl=300)
    )
    assert change.inverse().inverse() == change
    created = record_change("create", "x", ZONE, (), ("1.2.3.4",), 1, management=tsig)
    assert created.inverse().action == "delete"
