"""What an apply is asked to do: the options the CLI (or a test) gives :func:`.run.apply`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from casdesired.apply import audit
from casdesired.apply.progress import Progress, Quiet
from casdesired.apply.record import ApplyRecord


@dataclass
class ApplyOptions:
    auto_approve: bool = False
    force: bool = False
    lock_timeout: float = 0.0
    sites: list[str] | None = None
    audit_log: Path = audit.DEFAULT_AUDIT_LOG
    rollback_out: Path | None = None
    ask: Callable[[str], str] | None = None
    """Reads the answer on a terminal; None when there is no terminal."""
    environ: dict[str, str] | None = None
    progress: Progress = field(default_factory=Quiet)
    """Shown the step running (a display on a terminal; quiet otherwise)."""
    record: ApplyRecord = field(default_factory=ApplyRecord)
    """Filled in as the apply goes: the data of the JSON end report."""
