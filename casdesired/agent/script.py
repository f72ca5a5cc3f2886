"""The agent script (agent.ps1) as shipped in the package."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from casdesired.agent import protocol


@lru_cache(maxsize=1)
def agent_script() -> str:
    """The text of agent.ps1, checked to start with the protocol marker and to be ASCII.

    ASCII matters: stdin travels in the console's codepage, and only ASCII survives every one.
    """
    text = resources.files("casdesired.agent").joinpath("agent.ps1").read_text(encoding="ascii")
    if not text.startswith(protocol.AGENT_MARKER):
        raise RuntimeError("agent.ps1 does not start with the protocol marker")  # packaging bug
    return text
