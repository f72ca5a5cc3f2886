"""Get-CasdesiredPlanRecord: the plans applied on the endpoint, with the lock each ran under and
when that lock ended (what `casdesired drift` recognises its own changes by)."""

from __future__ import annotations

import json

from casdesired.agent.protocol import ExchangeSession, Invocation, Response
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.locks import APPLIED_DIR
from casdesired.lab.exchange.testing import call

NONE = ExchangeSession(mode="none")
RECORD = ("PlanId", "Owner", "LockId", "Applied", "Ended")


def run(org: Organisation, *invocations: Invocation) -> Response:
    return call(org, *invocations, exchange=NONE, modules=())


def records(org: Organisation, since: str | None = None) -> list[dict[str, object]]:
    params = {"Since": since} if since is not None else {}
    (result,) = run(org, Invocation("r", "Get-CasdesiredPlanRecord", params, RECORD)).results
    assert result.ok, result.error
    return [dict(o) for o in result.objects]


def apply_plan(org: Organisation, lock_id: str, plan_id: str, *, release: bool) -> None:
    steps = [
        Invocation("e", "Enter-CasdesiredLock",
                   {"LockId": lock_id, "Owner": "ci@runner", "LeaseSeconds": 900}),
        Invocation("g", "Register-CasdesiredPlan", {"LockId": lock_id, "PlanId": plan_id}),
    ]
    if release:
        steps.append(Invocation("x", "Exit-CasdesiredLock", {"LockId": lock_id}))
    assert all(r.ok for r in run(org, *steps).results)


def test_nothing_applied_means_no_records() -> None:
    assert records(Organisation.from_seed()) == []


def test_a_record_names_its_lock_and_when_that_lock_ended() -> None:
    org = Organisation.from_seed()
    apply_plan(org, "lock-1", "plan-1", release=True)
    apply_plan(org, "lock-2", "plan-2", release=False)  # still running (or killed)
    found = {r["PlanId"]: r for r in records(org)}
    assert found["plan-1"]["LockId"] == "lock-1" and found["plan-1"]["Owner"] == "ci@runner"
    assert isinstance(found["plan-1"]["Ended"], str)
    assert str(found["plan-1"]["Ended"]) >= str(found["plan-1"]["Applied"])
    assert found["plan-2"]["LockId"] == "lock-2" and found["plan-2"]["Ended"] is None


def test_since_filters_and_an_old_record_without_its_lock_is_still_listed() -> None:
    org = Organisation.from_seed()
    apply_plan(org, "lock-1", "plan-1", release=True)
    state = org.snapshot()
    # A record written before records named their lock.
    state["files"][f"{APPLIED_DIR}plan-0.json"] = json.dumps(
        {"plan_id": "plan-0", "owner": "old@runner", "applied": "2020-01-01T00:00:00.0000000Z"}
    )
    org.load(state)
    everything = {r["PlanId"]: r for r in records(org)}
    assert everything["plan-0"]["LockId"] is None and everything["plan-0"]["Ended"] is None
    assert [r["PlanId"] for r in records(org, "2021-01-01T00:00:00.0000000Z")] == ["plan-1"]
    (bad,) = run(org, Invocation("r", "Get-CasdesiredPlanRecord", {"Since": "yesterday"})).results
    assert bad.error is not None and "valid DateTime" in bad.error.message
