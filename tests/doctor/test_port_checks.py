"""The static RPC port checks: read on every array member through WMI with your credential."""

from __future__ import annotations

from apply.labenv import Env

from doctor.helpers import Doctor, find, mutate, server

RPC = "MSExchangeRPC\\ParametersSystem\\TCP/IP Port"
BOOK = "MSExchangeAB\\Parameters\\RpcTcpPort"


def test_the_same_ports_on_every_member_pass(doctor: Doctor) -> None:
    _, report, _ = doctor.run()
    hq = find(report, "ports.static-rpc", "HQ")
    assert hq["status"] == "PASS"
    assert hq["evidence"][:2] == ["HQ-CAS01: TCP/IP Port 59531, RpcTcpPort 59532",
                                  "HQ-CAS02: TCP/IP Port 59531, RpcTcpPort 59532"]


def test_members_with_different_ports_fail_with_the_reg_commands(
    doctor: Doctor, env: Env
) -> None:
    mutate(env.organisation, lambda d: server(d, "DR-CAS02")["registry"].update({RPC: 60000}))
    code, report, _ = doctor.run()
    dr = find(report, "ports.static-rpc", "DR")
    assert code == 1 and dr["status"] == "FAIL"
    assert "DR-CAS02: TCP/IP Port 60000, RpcTcpPort 59532" in dr["evidence"]
    assert "/v \"TCP/IP Port\" /t REG_DWORD /d 59531" in dr["remedy"]
    assert "Restart-Service MSExchangeRPC, MSExchangeAB" in dr["remedy"]
    assert find(report, "ports.static-rpc", "HQ")["status"] == "PASS"


def test_a_value_of_the_other_type_is_read_and_noted(doctor: Doctor, env: Env) -> None:
    # Administrators mix the types up (field §8): both are read; Exchange reads only one.
    for name in ("HQ-CAS01", "HQ-CAS02"):
        mutate(env.organisation, lambda d, n=name: server(d, n)["registry"].update({RPC: "59531"}))
    code, report, _ = doctor.run()
    hq = find(report, "ports.static-rpc", "HQ")
    assert code == 0 and hq["status"] == "WARN"
    assert "HQ-CAS01: TCP/IP Port 59531, RpcTcpPort 59532" in hq["evidence"]
    assert any("TCP/IP Port is a REG_SZ; Exchange reads a REG_DWORD" in e for e in hq["evidence"])


def test_no_static_ports_anywhere_is_a_warning(doctor: Doctor, env: Env) -> None:
    for name in ("DR-CAS01", "DR-CAS02"):
        mutate(env.organisation, lambda d, n=name: server(d, n).update(registry={}))
    _, report, _ = doctor.run()
    dr = find(report, "ports.static-rpc", "DR")
    assert dr["status"] == "WARN"
    assert any("a load balancer must balance that whole range" in e for e in dr["evidence"])


def test_a_member_wmi_cannot_reach_fails(doctor: Doctor, env: Env) -> None:
    mutate(env.organisation, lambda d: server(d, "DR-CAS02").update(reachable=False))
    code, report, _ = doctor.run()
    dr = find(report, "ports.static-rpc", "DR")
    assert code == 1 and dr["status"] == "FAIL"
    assert "DR-CAS02 (dr-cas02.contoso.local): The RPC server is unavailable" in (
        dr["evidence"][0])
    assert "Windows Management Instrumentation (WMI-In)" in dr["remedy"]
