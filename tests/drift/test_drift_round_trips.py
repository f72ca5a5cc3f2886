"""drift costs what plan costs: the audit search travels in the read's own request.

Measured through the real client (pywinrm against the lab over a socket): command executions
and WS-Man requests of ``casdesired.drift.run.drift`` equal those of ``make_plan`` on the same
organisation, with ten databases changed out of band.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from apply.labenv import Env, cli

from casdesired.desired.loader import load_desired
from casdesired.drift.run import drift
from casdesired.drift.sources import DEFAULT_RESULT_SIZE
from casdesired.lab.exchange.administrators import run_as
from casdesired.plan.build import make_plan


def test_drift_costs_the_executions_and_requests_of_a_plan(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err + out
    env.organisation.add_databases(200, "Branch", "BR-DBX")  # bound to outlook-branch
    for number in range(1, 11):
        run_as(env.organisation, "CONTOSO\\alice", "Set-MailboxDatabase",
               {"Identity": f"BR-DBX{number:03d}", "RpcClientAccessServer": "br-cas01"})
    desired = load_desired(env.org_dir)

    planner = env.client()
    plan = make_plan(desired, planner).plan
    assert len(plan.changes) == 10

    commands = env.lab.journal.count("command")
    drifter = env.client()
    report = drift(desired, drifter, now=datetime.now(timezone.utc), audit_log=env.audit,
                   result_size=DEFAULT_RESULT_SIZE)
    assert len(report.drifted) == 10
    assert {i.attribution.entry.caller for i in report.drifted if i.attribution.entry} == {
        "contoso.local/Users/alice"}
    assert (drifter.executions, drifter.requests) == (planner.executions, planner.requests)
    assert drifter.executions == 2  # the read (with the audit search), the mailbox count
    assert env.lab.journal.count("command") - commands == drifter.executions
