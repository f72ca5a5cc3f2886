"""What an apply is doing, for a display: the step running and how long its waits may last.

Apply reports a :class:`Step` at each phase (lock and read, each batch, verification); a
display shows the latest one and, for a step that may wait (an NLB drain or reconvergence,
another apply's lock), counts its longest wait down. While a batch runs (one command execution
of the agent), the agent's progress lines (:class:`~casdesired.agent.framing.AgentProgress`)
name the invocation it started and, at each poll of a wait, the seconds left before the wait's
timeout: :class:`BatchSteps` turns them into a :class:`Step` for the change's step running,
e.g. ``batch 2 of 5: drain HQ-CAS03 (drain timeout 10 min) (step 1 of 4)``, whose wait is
the step's own (the agent's seconds left once it polls). Apply calls :meth:`Progress.clear` before
it writes lines of its own (the plan, a warning, the report), so a display never garbles them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from casdesired.agent.framing import AgentProgress
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


@dataclass(frozen=True)
class BatchSteps:
    """A batch's steps as the agent numbers them: ``skipped`` invocations first (the lock's
    renewal and the plan's registration, shown as the batch itself), then its changes'."""

    number: int
    total: int
    skipped: int
    steps: tuple[tuple[str, float | None], ...]

    @classmethod
    def of(cls, number: int, total: int, skipped: int, changes: Sequence[Change]) -> BatchSteps:
        return cls(number, total, skipped, tuple(s for c in changes for s in c.steps()))

    def step(self, mark: AgentProgress) -> Step | None:
        """The step ``mark`` says is running (None for one of the skipped invocations, or a
        position the batch does not have): ``batch 2 of 5: <step> (step 3 of 7)``, waiting up
        to the seconds the agent said are left, or, as it starts, the step's longest wait."""
        index = mark.invocation - self.skipped
        if not 1 <= index <= len(self.steps):
            return None
        text, longest = self.steps[index - 1]
        # Names are Exchange's and the YAML's: escaped, so none can drive the terminal.
        line = (f"batch {self.number} of {self.total}: {clean(text)} "
                f"(step {index} of {len(self.steps)})")
        wait = float(mark.left) if mark.left is not None else longest
        return Step(line, wait)
