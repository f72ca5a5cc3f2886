"""How the agent script and its request reach the Windows host: two deliveries.

``stdin`` (:mod:`.stdin`, the default): one command, the agent and the request on its standard
input. ``file`` (:mod:`.files`): no standard input at all; the agent is kept in a file under
``%ProgramData%\\casdesired\\agent\\`` (checked by its SHA-256 before every run), the request
is written beside it for the run, and the credential travels in the shell's environment.
The organisation file chooses (``connection.agent.delivery``); docs/agent.md compares them.
"""

from __future__ import annotations

from typing import Literal

Delivery = Literal["stdin", "file"]
DELIVERIES: tuple[Delivery, ...] = ("stdin", "file")
