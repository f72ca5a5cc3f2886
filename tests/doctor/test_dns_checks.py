"""The DNS checks from the runner: resolvers answer, array names resolve to their VIPs inside
and not outside. (TSIG against a real BIND: tests/dns/test_doctor_tsig.py.)"""

from __future__ import annotations

import re
import socket

from apply.labenv import Env

from doctor.helpers import Doctor, find


def _resolver(env: Env) -> str:
    text = (env.org_dir / "organisation.yaml").read_text()
    return re.search(r"resolvers: \[([0-9.:]+)\]", text).group(1)  # type: ignore[union-attr]


def _set(env: Env, old: str, new: str) -> None:
    path = env.org_dir / "organisation.yaml"
    path.write_text(path.read_text().replace(old, new))


def test_a_resolver_that_does_not_answer_fails(doctor: Doctor, env: Env) -> None:
    working = _resolver(env)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        silent = f"127.0.0.1:{probe.getsockname()[1]}"
        _set(env, f"resolvers: [{working}]", f"resolvers: [{working}, {silent}]")
        code, report, _ = doctor.run()
    dead = find(report, "dns.resolver", silent)
    assert code == 1 and dead["status"] == "FAIL"
    assert "dns.resolvers" in dead["remedy"]
    assert find(report, "dns.resolver", working)["status"] == "PASS"


def test_an_array_name_pointing_at_a_server_fails(doctor: Doctor, env: Env) -> None:
    records = env.organisation.dns_records()
    records["outlook-hq.contoso.local"] = ["10.1.0.11"]
    env.organisation.set_dns_records(records)
    code, report, _ = doctor.run()
    array = find(report, "dns.array", "HQ")
    assert code == 1 and array["status"] == "FAIL"
    assert "10.1.0.11 is server hq-cas01.contoso.local" in array["evidence"][0]
    assert "A record of 10.1.0.50 alone" in array["remedy"]


def test_an_array_name_resolving_outside_fails_internal_only(doctor: Doctor, env: Env) -> None:
    # The lab's DNS server stands in for a public resolver that knows the names.
    _set(env, "external_resolvers: []", f"external_resolvers: [{_resolver(env)}]")
    code, report, _ = doctor.run()
    external = find(report, "dns.external")
    assert code == 1 and external["status"] == "FAIL"
    assert "resolves through external resolver" in external["evidence"][0]
    assert "Remove the array names from public DNS" in external["remedy"]
