"""Ctrl-C and SIGTERM during an apply: note them, never tear a command execution in half.

While an apply runs, SIGINT and SIGTERM only set a flag: the command execution in flight
finishes (Exchange cmdlets cannot be recalled half-way anyway), no further batch starts, the
lock is released and the report printed; the exit code is then 130 (SIGINT) or 143 (SIGTERM).

While apply waits for a person (the confirmation prompt, :meth:`Interrupts.raising`) nothing
runs, so there is nothing to let finish: a signal raises :class:`PromptInterrupted` at once
(a blocked read of the answer would otherwise just resume), and apply cancels.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class PromptInterrupted(Exception):
    """A signal arrived while apply waited for the confirmation answer: cancel, change nothing."""


class Interrupts:
    def __init__(self) -> None:
        self.signal: int | None = None
        self._raising = False

    def __call__(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or 0)

    @contextmanager
    def raising(self) -> Iterator[None]:
        """For the ``with`` block (waiting for an answer), a signal — or one already noted —
        raises :class:`PromptInterrupted` instead of being deferred."""
        if self.signal is not None:
            raise PromptInterrupted()
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.signal is None
        self.signal = signum
        if self._raising:
            self._raising = False  # raise once; a second signal during the unwinding is noted
            raise PromptInterrupted()
        if first:
            name = signal.Signals(signum).name
            sys.stderr.write(
                f"casdesired: {name} received: letting the running step finish, starting "
                "nothing new, then releasing the lock\n"
            )
            sys.stderr.flush()


@contextmanager
def deferred_interrupts() -> Iterator[Interrupts]:
    """Catch SIGINT/SIGTERM for the ``with`` block (only possible in the main thread)."""
    state = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = {s: signal.signal(s, state._handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
