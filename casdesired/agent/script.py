"""The agent script (agent.ps1) as shipped in the package, with its probes for doctor.

``casdesired doctor``'s probes live in probes.ps1 and travel only with a diagnose request: every
other run sends agent.ps1 alone (within one 64 KiB Send of stdin, one WS-Man round trip).

What travels is the script without its comments (:func:`compact`): the comment lines are a
third of agent.ps1, and PowerShell never needs them. Read agent.ps1 itself for them.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from casdesired.agent import protocol

PROBES_PLACEHOLDER = "# <casdesired-probes>"
"""The line of agent.ps1 (before Main, where functions must already be defined) that a diagnose
request's agent has probes.ps1 in its place."""
PROBES_MARKER = "# casdesired-agent probes"
"""probes.ps1's first line: the lab knows by it that the probes were sent."""


@lru_cache(maxsize=2)
def agent_script(diagnose: bool = False) -> str:
    """The text of agent.ps1 (with probes.ps1 in place for a diagnose request), checked to start
    with the protocol marker and to be ASCII.

    ASCII matters: stdin travels in the console's codepage, and only ASCII survives every one.
    """
    package = resources.files("casdesired.agent")
    text = package.joinpath("agent.ps1").read_text(encoding="ascii")
    if not text.startswith(protocol.AGENT_MARKER):
        raise RuntimeError("agent.ps1 does not start with the protocol marker")  # packaging bug
    lines = text.splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.startswith(PROBES_PLACEHOLDER)), None)
    if at is None:
        raise RuntimeError("agent.ps1 has no probes placeholder")  # packaging bug
    if not diagnose:
        return compact(text)
    probes = package.joinpath("probes.ps1").read_text(encoding="ascii")
    if not probes.startswith(PROBES_MARKER):
        raise RuntimeError("probes.ps1 does not start with its marker")  # packaging bug
    return compact("".join(lines[:at]) + probes.rstrip("\n") + "\n" + "".join(lines[at + 1:]))


_KEPT = (protocol.AGENT_MARKER, PROBES_PLACEHOLDER, PROBES_MARKER)


def compact(text: str) -> str:
    """``text`` without its comment lines: the lines inside a ``<#`` ... ``#>`` block that
    opens and closes on lines of their own, and every line whose first non-blank character is
    ``#`` — except the protocol marker, the probes' placeholder and marker, which say what the
    script is. agent.ps1 and probes.ps1 have no here-string and no multi-line string literal
    (tests/agent/test_agent_script.py holds them to it), so no such line is inside a string."""
    kept: list[str] = []
    in_block = False
    for line in text.splitlines(keepends=True):
        bare = line.strip()
        if in_block:
            in_block = bare != "#>"
        elif bare == "<#":
            in_block = True
        elif not bare.startswith("#") or line.startswith(_KEPT):
            kept.append(line)
    return "".join(kept)
