"""The lock checks (its folder, a stale lock) and the clock check, judged by the host's clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from apply.labenv import Env

from casdesired.lab.exchange.locks import LOCK_PATH
from doctor.helpers import Doctor, find, mutate

STALE_ID = "7d4c4a39-2c2b-4c7b-9f2e-0a5c3d1e2f30"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def test_a_folder_the_account_may_not_write_fails_with_icacls(doctor: Doctor, env: Env) -> None:
    # The folder and a free lock file are there (an earlier apply), but the account lost access.
    mutate(env.organisation, lambda d: d.setdefault("files", {}).update({LOCK_PATH: ""}))
    env.organisation.configure(lock_directory_writable=False)
    code, report, _ = doctor.run()
    directory = find(report, "lock.directory")
    assert code == 1 and directory["status"] == "FAIL"
    assert "do not let CONTOSO\\casadmin create and write files there" in directory["evidence"][0]
    assert 'icacls C:\\ProgramData\\casdesired /grant "CONTOSO\\casadmin:(OI)(CI)M"' in (
        directory["remedy"])
    assert "C:\\ProgramData\\casdesired\\locks exists" in directory["evidence"][0]
    # Reading the lock needs the same access: Get-CasdesiredLock fails as apply's Enter would.
    held = find(report, "lock.held")
    assert held["status"] == "FAIL" and "is denied" in held["evidence"][0]


def test_a_stale_lock_is_named_with_its_owner_age_and_unlock_command(
    doctor: Doctor, env: Env
) -> None:
    now = datetime.now(timezone.utc)
    lock = {"lock_id": STALE_ID, "owner": "ci@runner-7 (CI job GITHUB_RUN_ID=42)",
            "plan_id": "", "acquired": _iso(now - timedelta(hours=2)),
            "renewed": _iso(now - timedelta(hours=2)),
            "expires": _iso(now - timedelta(hours=2) + timedelta(seconds=900))}
    mutate(env.organisation,
           lambda d: d.setdefault("files", {}).update({LOCK_PATH: json.dumps(lock)}))
    code, report, _ = doctor.run()
    held = find(report, "lock.held")
    assert code == 0 and held["status"] == "WARN"
    assert f"lock {STALE_ID} held by ci@runner-7 (CI job GITHUB_RUN_ID=42)" in held["evidence"][0]
    assert "taken 120 min ago by the host's clock" in held["evidence"]
    assert any("its lease ran out: a stale lock" in e for e in held["evidence"])
    assert f"casdesired unlock {STALE_ID} --config" in held["remedy"]
    assert find(report, "lock.directory")["status"] == "PASS"  # the folder exists now


def test_a_skewed_host_clock_fails_past_five_minutes_and_warns_past_one(
    doctor: Doctor, env: Env
) -> None:
    env.organisation.configure(host_clock_skew_seconds=600.0)
    code, report, _ = doctor.run()
    skew = find(report, "clock.skew")
    assert code == 1 and skew["status"] == "FAIL"
    assert "skew: 600 s ahead" in skew["evidence"]
    assert "w32tm /resync" in skew["remedy"]
    env.organisation.configure(host_clock_skew_seconds=-120.0)
    _, behind, _ = doctor.run()
    assert find(behind, "clock.skew")["status"] == "WARN"
    assert "skew: 120 s behind" in find(behind, "clock.skew")["evidence"]
