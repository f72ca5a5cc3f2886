"""``casdesired doctor``: prove every assumption casdesired makes, on the administrator's hosts.

Read-only, in one command execution on the endpoint: a checklist of what casdesired relies on
(the connection, the host, WinRM's quotas, Exchange and RBAC, NLB, the lock, DNS, static RPC
ports, the clock), each PASS, WARN, FAIL or SKIPPED with the evidence seen and, for a WARN or a
FAIL, what to change. One module per family of checks; :mod:`.run` ties them together,
:mod:`.model` is the report, :mod:`.render` shows it. docs/first-contact.md explains every check.
"""

from casdesired.doctor.model import Check, Report, Status
from casdesired.doctor.run import diagnose

__all__ = ["Check", "Report", "Status", "diagnose"]
