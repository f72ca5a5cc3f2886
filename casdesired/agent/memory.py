"""How much memory powershell.exe uses to run the casdesired agent: an estimate.

WinRM 2.0 runs a shell's processes in a job whose memory quota is ``MaxMemoryPerShellMB`` (150
MB on Windows Server 2008 R2); an allocation that would cross it fails, and the process dies
with an allocation error on its streams. Nobody has measured the agent on a real server yet, so
this module *estimates* its peak committed memory from what it reads and writes. The lab
applies the estimate to every process it runs (:mod:`casdesired.lab.exchange.memory`), and
``casdesired doctor`` compares it, for the organisation's own size, with the host's quota.

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

import json
from dataclasses import dataclass

from casdesired.agent import fanout, framing, protocol

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


@dataclass(frozen=True)
class Answer:
    """What the agent answered, as far as memory goes."""

    json_chars: int
    frame_chars: int
    objects: int
    groups: int
    ids: tuple[str, ...] = ()
    """The results' ids: a fan-out's runs are told by theirs (:func:`fanout.run_id`)."""

    @classmethod
    def of(cls, response: protocol.Response) -> Answer:
        """The sizes of ``response`` as the agent would write it."""
        text = json.dumps(response.to_json(), ensure_ascii=False, separators=(",", ":"))
        frame = framing.encode_response(response)
        payload = len(frame) - len(framing.RESPONSE_BEGIN) - len(framing.RESPONSE_END)
        return cls(
            json_chars=len(text),
            frame_chars=payload,
            objects=sum(len(r.objects) for r in response.results),
            groups=sum(len(r.groups or {}) for r in response.results),
            ids=tuple(r.id for r in response.results),
        )


def parts(
    request: protocol.Request | None, stdin_chars: int, answer: Answer | None
) -> list[tuple[str, float]]:
    """The estimate, part by part (what, MB), in the order they add up: the process reading
    ``stdin_chars`` characters (script and request), loading what ``request`` needs, and
    holding then writing ``answer``. None for either: that part is not counted."""
    found: list[tuple[str, float]] = [
        ("powershell.exe", POWERSHELL_MB),
        ("stdin", stdin_chars * STDIN_BYTES_PER_CHAR / MB),
    ]
    if request is not None:
        mode = request.exchange.mode
        session = SESSION_MB.get(mode, 0.0)
        if session:
            found.append((f"Exchange session ({mode})", session))
        for module in request.modules:
            found.append((f"module {module}", MODULE_MB))
        computers = {i.computer.lower() for i in request.invocations if i.computer}
        computers |= _fanned_out(request, answer.ids if answer is not None else ())
        for computer in sorted(computers):
            found.append((f"PSSession to {computer}", NODE_SESSION_MB))
    if answer is not None:
        found += [
            (f"{answer.objects} objects held", answer.objects * OBJECT_BYTES / MB),
            (f"{answer.groups} group counts", answer.groups * GROUP_BYTES / MB),
            ("response JSON", answer.json_chars * JSON_BYTES_PER_CHAR / MB),
            ("response frame", answer.frame_chars * FRAME_BYTES_PER_CHAR / MB),
        ]
    return found


def _fanned_out(request: protocol.Request, ids: tuple[str, ...]) -> set[str]:
    """The computers the request's fan-outs ran on, told by their runs' result ids."""
    prefixes = [fanout.run_id(i.id, "") for i in request.invocations if i.for_each is not None]
    return {
        found[len(prefix):].lower()
        for found in ids
        for prefix in prefixes
        if found.startswith(prefix) and len(found) > len(prefix)
    }
