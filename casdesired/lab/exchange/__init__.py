"""The lab's Exchange side: organisation state, cmdlet semantics and the agent executor.

Split like moto: :mod:`.models` and :mod:`.state` hold the organisation and its rules,
:mod:`.cmdlets` binds parameters, :mod:`.agent` runs a protocol request as agent.ps1 does,
:mod:`.powershell` is the lab's powershell.exe, :mod:`.statefile` reads and writes the state
file, and :mod:`.organisation` ties them together behind one lock. Nothing here knows WS-Man.
"""

from casdesired.lab.exchange.organisation import Organisation

__all__ = ["Organisation"]
