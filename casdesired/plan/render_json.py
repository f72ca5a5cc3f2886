"""The plan as versioned JSON (``schemas/plan.schema.json``), for machines and pipelines."""

from __future__ import annotations

import json
from typing import TextIO

from casdesired.plan.plan import Plan


class JsonRenderer:
    """Writes ``Plan.to_json()``: the same document ``--out`` saves, minus the checksum."""

    def render(self, plan: Plan, out: TextIO) -> None:
        json.dump(plan.to_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")
