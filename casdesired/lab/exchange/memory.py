"""How much memory powershell.exe uses to run the casdesired agent: the lab's estimate.

WinRM 2.0 runs a shell's processes in a job whose memory quota is ``MaxMemoryPerShellMB`` (150
MB on Windows Server 2008 R2); an allocation that would cross it fails, and the process dies
with an allocation error on its streams (see :mod:`casdesired.lab.wsman.shells`). The lab
cannot measure a PowerShell it does not run, so it *estimates* the process's peak committed
memory from what the process read and wrote, with the model below.

The numbers are estimates, not measurements (field notes, shared/domain/exchange2010-field.md
§5, still list the real figure as open): orders of magnitude for an x64 Windows PowerShell 2.0
on .NET 2.0/3.5, chosen on the generous side so the lab fails no later than a real host would.
They are module constants so that a measurement on a real server replaces them in one place.

=====================================  ==========  ========================================
part                                   estimate    why
=====================================  ==========  ========================================
powershell.exe 2.0, agent parsed       28 MB       the CLR, System.Management.Automation,
                                                   the runspace, the agent's script blocks
Exchange snap-in (``snapin``)          +52 MB      Add-PSSnapin ...E2010: the Exchange
                                                   management assemblies' private pages,
                                                   type and format data, AD topology caches
remote /PowerShell (``remote``)        +24 MB      New-PSSession and Import-PSSession of the
                                                   few cmdlets a request uses (the cmdlets
                                                   themselves run in Exchange's IIS pool)
each module (``modules``)              +9 MB       Import-Module NetworkLoadBalancingClusters
each other computer (``computer``,     +6 MB       New-PSSession to an NLB node and the
or a ``for_each`` run's)                           deserialised objects Invoke-Command brings
                                                   back (the module loads on the node)
stdin                                  6 B/char    [Console]::In.ReadToEnd (UTF-16), its two
                                                   Substrings, the request's parsed JSON (the
                                                   file delivery: the files it read, likewise)
each object the agent holds            420 B       a Dictionary[string,object] per selected
                                                   object and its ArrayList slot
each group_by key                      140 B       a dictionary entry and its boxed count
the response's JSON text               9 B/char    the values held in the rows (UTF-16, 2),
                                                   then at the peak, in Write-AgentResponse:
                                                   the StringBuilder (doubling, up to 4),
                                                   its string (2), the UTF-8 bytes (1)
the response frame                     4 B/char    the base64 string and the concatenated
                                                   frame (UTF-16), on the gzipped size
=====================================  ==========  ========================================

Objects are never held whole: the agent streams each cmdlet's output through the pipeline and
keeps only the selected properties, and ``group_by`` counts without keeping objects. Memory
only grows until the response is written, so the peak is that last step; the lab applies the
quota once the agent has run its invocations, which is where a real host fails too (what the
agent did before stays done).

At 10,000 databases a full read through the remote /PowerShell session (the recommended
configuration, reading one NLB cluster on its node) is estimated at about 80 MB, and through
the snap-in at about 105 MB: under the 150 MB default with room to spare. A process this model
puts over the quota fails as on Windows, and casdesired's client names MaxMemoryPerShellMB and
the command that raises it.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from casdesired.agent import fanout, framing, protocol
from casdesired.agent.delivery import files
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.errors import ProtocolError
from casdesired.lab.process import MemoryUse, ProcessResult

MB = 1024 * 1024

POWERSHELL_MB = 28.0
SESSION_MB = {"snapin": 52.0, "remote": 24.0, "none": 0.0}
MODULE_MB = 9.0
NODE_SESSION_MB = 6.0
STDIN_BYTES_PER_CHAR = 6
OBJECT_BYTES = 420
GROUP_BYTES = 140
JSON_BYTES_PER_CHAR = 9
FRAME_BYTES_PER_CHAR = 4


class AgentMemoryModel:
    """The estimate above, for any process the lab runs (see :class:`MemoryModel`).

    A process that is not the agent (a script the lab refuses) counts its base and its stdin;
    an agent whose request cannot be read, its base, stdin and whatever it answered.
    """

    def estimate(self, script: str, stdin: bytes, result: ProcessResult) -> MemoryUse:
        parts: list[tuple[str, float]] = [
            ("powershell.exe", POWERSHELL_MB),
            ("stdin", (len(script) + len(stdin)) * STDIN_BYTES_PER_CHAR / MB),
        ]
        request = _request(script, stdin)
        if request is not None:
            mode = request.exchange.mode
            session = SESSION_MB.get(mode, 0.0)
            if session:
                parts.append((f"Exchange session ({mode})", session))
            for module in request.modules:
                parts.append((f"module {module}", MODULE_MB))
        answer = _answer(result.stdout)
        if request is not None:
            computers = {i.computer.lower() for i in request.invocations if i.computer}
            computers |= _fanned_out(request, answer[4] if answer is not None else ())
            for computer in sorted(computers):
                parts.append((f"PSSession to {computer}", NODE_SESSION_MB))
        if answer is not None:
            json_chars, frame_chars, objects, groups, _ids = answer
            parts += [
                (f"{objects} objects held", objects * OBJECT_BYTES / MB),
                (f"{groups} group counts", groups * GROUP_BYTES / MB),
                ("response JSON", json_chars * JSON_BYTES_PER_CHAR / MB),
                ("response frame", frame_chars * FRAME_BYTES_PER_CHAR / MB),
            ]
        return MemoryUse(sum(mb for _, mb in parts), tuple(parts))


def _request(script: str, stdin: bytes) -> protocol.Request | None:
    """The request the agent read: ``stdin`` is what the process read, from its stdin or (the
    file delivery) from its files, in the stdin delivery's form either way."""
    if script != stdin_delivery.BOOTSTRAP_SCRIPT and files.parse_bootstrap(script) is None:
        return None
    try:
        return stdin_delivery.decode_stdin(stdin)[1]
    except (ProtocolError, ValueError, KeyError, TypeError):
        return None


def _fanned_out(request: protocol.Request, ids: tuple[str, ...]) -> set[str]:
    """The computers the request's fan-outs ran on, told by their runs' result ids."""
    prefixes = [fanout.run_id(i.id, "") for i in request.invocations if i.for_each is not None]
    return {
        found[len(prefix):].lower()
        for found in ids
        for prefix in prefixes
        if found.startswith(prefix) and len(found) > len(prefix)
    }


def _answer(stdout: str) -> tuple[int, int, int, int, tuple[str, ...]] | None:
    """(JSON characters, frame characters, objects held, group keys, result ids) of the
    response frame."""
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
    return len(text), len(frame), objects, groups, tuple(ids)
