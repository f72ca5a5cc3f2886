"""Apply's progress on a terminal: the step running on one line of stderr, waits counted down.

Shown only when stderr is a terminal; in a pipeline's log apply writes its own lines and nothing
else. The line is transient (erased when apply writes lines of its own or ends) and drawn with
rich (``markup=False``: a name with brackets is text, escape sequences were already escaped by
:func:`casdesired.apply.progress.batch_step`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live

    from casdesired.apply.progress import Progress, Step


def countdown(seconds: float) -> str:
    """``9:59``, ``1:02:03``: the longest wait left, never negative."""
    whole = max(0, int(seconds + 0.999))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def line(step: Step, now: float, deadline: float | None) -> str:
    """What the display shows for ``step`` at ``now`` (monotonic)."""
    if deadline is None:
        return step.text
    return f"{step.text} — waits up to {countdown(deadline - now)} more"


class _View:
    """A spinner and the step's line, its countdown recomputed at every refresh."""

    def __init__(self) -> None:
        from rich.spinner import Spinner

        self.spinner = Spinner("dots")
        self.step: Step | None = None
        self.deadline: float | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.step is not None:
            self.spinner.update(text=line(self.step, time.monotonic(), self.deadline))
        yield self.spinner


class TerminalProgress:
    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=stream, highlight=False, markup=False)
        self.view = _View()
        self.live: Live | None = None

    def __call__(self, step: Step) -> None:
        from rich.live import Live

        self.view.step = step
        self.view.deadline = (
            time.monotonic() + step.wait_seconds if step.wait_seconds is not None else None
        )
        if self.live is None:
            self.live = Live(self.view, console=self.console, transient=True,
                             refresh_per_second=4, redirect_stdout=False, redirect_stderr=False)
            self.live.start()
        # Drawn at once, not at the next tick: a fast step is still seen on the terminal.
        self.live.refresh()

    def clear(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


@contextmanager
def apply_progress(stream: Any) -> Iterator[Progress]:
    """A :class:`TerminalProgress` when ``stream`` is a terminal, else a quiet one."""
    from casdesired.apply.progress import Quiet

    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield Quiet()
        return
    display = TerminalProgress(stream)
    try:
        yield display
    finally:
        display.clear()
