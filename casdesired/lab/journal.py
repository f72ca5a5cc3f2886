"""The lab's journal: every HTTP request, WS-Man operation, command and cmdlet invocation.

Tests read it to prove what reached the "server" (one command execution per plan, nothing run
after a failure). Secrets never enter it: parameters are redacted on the way in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from casdesired.agent.protocol import redact


class Journal:
    """Thread-safe, append-only list of entries ``{"seq", "time", "kind", ...}``.

    Kinds: ``http`` (method, path, status), ``wsman`` (action, shell_id),
    ``command`` (command line as received, shell_id), ``cmdlet`` (cmdlet, parameters, ok, error),
    ``fence`` (the agent's lock check before a write: lock_id, before, ok, error),
    ``process`` (how a PowerShell process ended: outcome, exit_code, memory_mb), ``shell`` (a
    shell WinRM closed itself: closed), ``file`` (the endpoint host's files: op — write,
    append, read, mkdir, move, delete, or verify, the file delivery bootstrap's SHA-256 check —
    path, ok, and error or sha256; never a file's content).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, kind: str, **data: Any) -> None:
        with self._lock:
            entry = {"seq": len(self._entries) + 1, "time": time.time(), "kind": kind}
            entry.update(redact(data))
            self._entries.append(entry)

    def entries(self, kinds: Iterable[str] | None = None) -> list[dict[str, Any]]:
        wanted = set(kinds) if kinds is not None else None
        with self._lock:
            return [dict(e) for e in self._entries if wanted is None or e["kind"] in wanted]

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for e in self._entries if e["kind"] == kind)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
