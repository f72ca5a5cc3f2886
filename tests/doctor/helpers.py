"""Helpers of the doctor tests: drive the real CLI against a Windows-like lab, read the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from apply.labenv import Env, cli

from casdesired.lab.exchange.organisation import Organisation


def mutate(organisation: Organisation, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the lab's organisation as a test needs it (validated like PUT /lab/state)."""
    data = organisation.snapshot()
    change(data)
    organisation.load(data)


def server(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["servers"] if s["name"] == name)


@dataclass
class Doctor:
    env: Env
    capsys: pytest.CaptureFixture[str]

    def run(self, *extra: str, fmt: str = "json") -> tuple[int, Any, str]:
        """``casdesired doctor ORG_DIR --format FMT``: (exit code, the report, stderr); the
        report parsed for json."""
        code, out, err = cli(self.capsys, "doctor", str(self.env.org_dir), "--format", fmt, *extra)
        return code, json.loads(out) if fmt == "json" and out.strip() else out, err

    def report(self) -> dict[str, Any]:
        _, report, err = self.run()
        assert isinstance(report, dict), err
        return report


def find(report: dict[str, Any], check_id: str, subject: str | None = None) -> dict[str, Any]:
    """The check ``check_id`` (about ``subject``) of a JSON report."""
    matches = [c for c in report["checks"]
               if c["id"] == check_id and (subject is None or c["subject"] == subject)]
    assert len(matches) == 1, (check_id, subject, [c["id"] for c in report["checks"]])
    return matches[0]


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {f"{c['id']}[{c['subject']}]" if c["subject"] else c["id"]: c["status"]
            for c in report["checks"]}
