"""What an apply is doing, for a display: the step running and how long its waits may last.

Apply reports a :class:`Step` at each phase (lock and read, each batch, verification); a
display shows the latest one and, for a step that may wait (an NLB drain or reconvergence,
another apply's lock), counts its longest wait down. Apply calls :meth:`Progress.clear` before
it writes lines of its own (the plan, a warning, the report), so a display never garbles them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from casdesired.changes.types import Change
from casdesired.visible import clean


@dataclass(frozen=True)
class Step:
    text: str
    wait_seconds: float | None = None
    """The longest this step may wait (the sum of its waits' timeouts), None when it does not."""


class Progress(Protocol):
    def __call__(self, step: Step) -> None: ...

    def clear(self) -> None:
        """Remove the display: apply is about to write lines of its own."""
        ...


class Quiet:
    """No display (stderr is not a terminal: a pipeline's log gets apply's own lines only)."""

    def __call__(self, step: Step) -> None:
        pass

    def clear(self) -> None:
        pass


def batch_step(number: int, total: int, changes: Sequence[Change]) -> Step:
    """``batch 2 of 5: drain and remove NLB node ... (and 3 more)``, with its waits' longest."""
    # Names are Exchange's and the YAML's: escaped, so none can drive the terminal.
    text = f"batch {number} of {total}: {clean(changes[0].describe())}" if changes else (
        f"batch {number} of {total}"
    )
    if len(changes) > 1:
        text += f" (and {len(changes) - 1} more)"
    waits = [
        i.until.timeout_seconds
        for change in changes
        for i in change.invocations()
        if i.until is not None
    ]
    return Step(text, sum(waits) if waits else None)
