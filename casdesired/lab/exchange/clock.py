"""Where the lab's time comes from, so tests can run a 15-minute lease or a long drain at once."""

from __future__ import annotations

import time
from typing import Protocol


class LabClock(Protocol):
    """Where the organisation's time comes from: wall clock (lock leases, NLB drains),
    monotonic clock and sleep (``until`` polling, keepalives, slow-cmdlet faults). Tests pass a
    fake one to run a 15-minute lease or a long drain in no time."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
