"""Faults the lab can inject, set at start or at run time through the control API.

Wire faults (``WireFault``) act on WS-Man operations; cmdlet faults (``CmdletFault``) act inside
the Exchange side on one cmdlet, optionally for one identity only.

A cmdlet fault may name a *gate* (:class:`Gate`): the cmdlet then stops there until a test opens
it. Unlike a delay, a gate lets a test act at a known point ("this batch is in flight") without
guessing how long anything takes: wait for :meth:`Gate.wait_reached`, do the thing, then
:meth:`Gate.open`. Replacing or clearing the cmdlet faults opens every gate, so a lab is never
left holding a command.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

WireFaultKind = Literal["http500", "wsman_fault", "drop", "hang", "401"]
"""``http500``: HTTP 500 with no SOAP body; ``wsman_fault``: 500 with a WS-Man fault;
``drop``: close the connection without an answer; ``hang``: no answer until the client gives up;
``401``: refuse the operation as Windows refuses an unauthenticated request (empty reason
phrase, the enabled methods' ``WWW-Authenticate``, ``Connection: close``), as when a session is
reset or the account's credentials stop being valid mid-run."""
WIRE_FAULT_KINDS: tuple[str, ...] = get_args(WireFaultKind)


@dataclass
class WireFault:
    kind: WireFaultKind
    action: str | None = None
    """WS-Man operation it hits: Create, Command, Send, Receive, Signal, Delete; None: any."""
    after: int = 0
    """Let this many matching operations through first."""
    times: int = 1
    """How many matching operations fail (then the fault is spent); 0 means forever."""
    wsman_code: int = 2150858770
    message: str = "The WS-Management service cannot process the request."

    def __post_init__(self) -> None:
        # JSON and YAML may give the 401 kind as a number; anything unknown is refused rather
        # than silently behaving like some other fault.
        kind = str(self.kind)
        if kind not in WIRE_FAULT_KINDS:
            raise ValueError(
                f"unknown wire fault kind {self.kind!r}: one of {', '.join(WIRE_FAULT_KINDS)}"
            )
        self.kind = kind  # type: ignore[assignment]  # checked just above


@dataclass
class CmdletFault:
    cmdlet: str
    identity: str | None = None
    """Only when the invocation's Identity parameter equals this (case-insensitive)."""
    message: str = (
        "Active Directory operation failed on DC01.contoso.local. This error is not retriable."
    )
    category: str = "ADOperationException"
    delay_seconds: float = 0.0
    """Make the cmdlet slow instead of (with ``fail=False``) or before failing."""
    fail: bool = True
    after: int = 0
    times: int = 0
    """0 means forever."""
    gate: str | None = None
    """Hold the cmdlet (after the delay, before failing or running) until the test opens the
    :class:`Gate` of this name."""


GATE_LIMIT_SECONDS = 60.0
"""A gate never holds a cmdlet longer than this: a forgotten gate must not hang the lab."""


class Gate:
    """A point a cmdlet waits at; the test sees it reached and decides when it passes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._reached = threading.Event()
        self._opened = threading.Event()

    def pass_through(self) -> None:
        """Called by the Exchange side: say it arrived, wait until opened (or the limit)."""
        self._reached.set()
        self._opened.wait(GATE_LIMIT_SECONDS)

    def wait_reached(self, timeout: float) -> bool:
        """True once a cmdlet has arrived at the gate; False if ``timeout`` passed first."""
        return self._reached.wait(timeout)

    @property
    def reached(self) -> bool:
        return self._reached.is_set()

    def open(self) -> None:
        self._opened.set()


@dataclass
class Faults:
    latency_ms: int = 0
    reject_credentials: bool = False
    wire: list[WireFault] = field(default_factory=list)
    cmdlets: list[CmdletFault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _seen: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    _gates: dict[str, Gate] = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "reject_credentials": self.reject_credentials,
                "wire": [asdict(f) for f in self.wire],
                "cmdlets": [asdict(f) for f in self.cmdlets],
            }

    def update(self, data: dict[str, Any]) -> None:
        """Replace the fields present in ``data`` (the control API's PUT)."""
        with self._lock:
            if "latency_ms" in data:
                self.latency_ms = int(data["latency_ms"])
            if "reject_credentials" in data:
                self.reject_credentials = bool(data["reject_credentials"])
            if "wire" in data:
                self.wire = [WireFault(**f) for f in data["wire"]]
            if "cmdlets" in data:
                self.cmdlets = [CmdletFault(**f) for f in data["cmdlets"]]
                # Faults replaced (or cleared): whatever their gates hold goes on.
                for gate in self._gates.values():
                    gate.open()
                self._gates.clear()
            self._seen.clear()

    def clear(self) -> None:
        self.update({"latency_ms": 0, "reject_credentials": False, "wire": [], "cmdlets": []})

    def _take(self, fault: WireFault | CmdletFault) -> bool:
        seen = self._seen.get(id(fault), 0)
        self._seen[id(fault)] = seen + 1
        if seen < fault.after:
            return False
        return fault.times == 0 or seen < fault.after + fault.times

    def take_wire(self, action: str) -> WireFault | None:
        """The wire fault that hits this operation now, if any (counts it as used)."""
        with self._lock:
            for fault in self.wire:
                if fault.action in (None, action) and self._take(fault):
                    return fault
        return None

    def gate(self, name: str) -> Gate:
        """The gate of this name (created on first use, by the test or by a cmdlet)."""
        with self._lock:
            return self._gates.setdefault(name, Gate(name))

    def take_cmdlet(self, cmdlet: str, identity: str | None) -> CmdletFault | None:
        with self._lock:
            for fault in self.cmdlets:
                if fault.cmdlet.lower() != cmdlet.lower():
                    continue
                wanted = fault.identity
                if wanted is not None and (identity or "").lower() != wanted.lower():
                    continue
                if self._take(fault):
                    return fault
        return None
