"""How much memory powershell.exe uses to run the casdesired agent: the lab's estimate.

WinRM 2.0 runs a shell's processes in a job whose memory quota is ``MaxMemoryPerShellMB`` (150
MB on Windows Server 2008 R2); an allocation that would cross it fails, and the process dies
with an allocation error on its streams (see :mod:`casdesired.lab.wsman.shells`). The lab
cannot measure a PowerShell it does not run, so it *estimates* the process's peak committed
memory from what the process read and wrote, with the model in :mod:`casdesired.agent.memory`
(its table, figures and reasons), which ``casdesired doctor`` also uses to compare a real
host's quota with the organisation's size.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from casdesired.agent import framing, protocol
from casdesired.agent.delivery import files
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.agent.memory import Answer, parts
from casdesired.errors import ProtocolError
from casdesired.lab.process import MemoryUse, ProcessResult


class AgentMemoryModel:
    """The estimate of :mod:`casdesired.agent.memory`, for any process the lab runs.

    A process that is not the agent (a script the lab refuses) counts its base and its stdin;
    an agent whose request cannot be read, its base, stdin and whatever it answered.
    """

    def estimate(self, script: str, stdin: bytes, result: ProcessResult) -> MemoryUse:
        found = parts(_request(script, stdin), len(script) + len(stdin), _answer(result.stdout))
        return MemoryUse(sum(mb for _, mb in found), tuple(found))


def _request(script: str, stdin: bytes) -> protocol.Request | None:
    """The request the agent read: ``stdin`` is what the process read, from its stdin or (the
    file delivery) from its files, in the stdin delivery's form either way."""
    if script != stdin_delivery.BOOTSTRAP_SCRIPT and files.parse_bootstrap(script) is None:
        return None
    try:
        return stdin_delivery.decode_stdin(stdin)[1]
    except (ProtocolError, ValueError, KeyError, TypeError):
        return None


def _answer(stdout: str) -> Answer | None:
    """What the response frame on ``stdout`` holds (None: the process wrote none)."""
    begin = stdout.rfind(framing.RESPONSE_BEGIN)
    end = stdout.find(framing.RESPONSE_END, begin) if begin >= 0 else -1
    if end < 0:
        return None
    frame = stdout[begin + len(framing.RESPONSE_BEGIN) : end]
    try:
        if frame.startswith(framing.GZIP_PREFIX):
            packed = base64.b64decode(frame[len(framing.GZIP_PREFIX) :], validate=True)
            text = zlib.decompress(packed, 16 + zlib.MAX_WBITS).decode("utf-8")
        else:
            text = base64.b64decode(frame, validate=True).decode("utf-8")
        data: Any = json.loads(text)
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError):
        return None
    results = data.get("results") if isinstance(data, dict) else None
    objects = groups = 0
    ids: list[str] = []
    for result in results if isinstance(results, list) else ():
        if isinstance(result, dict):
            objects += len(result.get("objects") or ())
            groups += len(result.get("groups") or ())
            ids.append(str(result.get("id")))
    return Answer(len(text), len(frame), objects, groups, tuple(ids))
