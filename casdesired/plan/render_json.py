"""The plan as versioned JSON (``schemas/plan.schema.json``), for machines and pipelines."""

from __future__ import annotations

from typing import TextIO

from casdesired.plan.plan import Plan
from casdesired.plan.planfile import dumps


class JsonRenderer:
    """Writes ``Plan.to_json()``: the same document ``--out`` saves, minus the checksum."""

    def render(self, plan: Plan, out: TextIO) -> None:
        out.write(dumps(plan.to_json()))
