"""The admin audit log check: would Exchange record casdesired's changes, and may drift read it?

Exchange 2010 SP1 logs a cmdlet only when logging is on, the cmdlet is on the cmdlet list and
not excluded, and one of its parameters is on the parameter list (field §4). casdesired's own
changes then leave Exchange's trail, and ``casdesired drift`` names who changed what from it
(``Search-AdminAuditLog``, which needs the View-Only Audit Logs role). From doctor's run:
``Get-AdminAuditLogConfig``, and ``Get-CasdesiredCommand``'s view of ``Search-AdminAuditLog``.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from casdesired.agent.protocol import JsonValue
from casdesired.doctor.model import Check, Status, check
from casdesired.doctor.probe import AUDIT_CONFIG, AUDIT_SEARCH, COMMANDS, WRITES, ProbeRun, texts

TITLE = "admin audit logging records casdesired's changes (drift attribution needs it)"
REMEDY = (
    "In the Exchange Management Shell: 'Set-AdminAuditLogConfig -AdminAuditLogEnabled $true "
    "-AdminAuditLogCmdlets * -AdminAuditLogParameters * -AdminAuditLogExcludedCmdlets $null' "
    "(shells already open see the change within 60 minutes)."
)


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(name.lower(), p.strip().lower()) for p in patterns if p.strip())


def logged(config: Mapping[str, JsonValue], cmdlet: str, parameters: tuple[str, ...]) -> bool:
    """Whether Exchange logs ``cmdlet`` run with ``parameters`` under ``config``."""
    return (
        config.get("AdminAuditLogEnabled") is True
        and _matches(cmdlet, texts(config.get("AdminAuditLogCmdlets")))
        and not _matches(cmdlet, texts(config.get("AdminAuditLogExcludedCmdlets")))
        and any(_matches(p, texts(config.get("AdminAuditLogParameters"))) for p in parameters)
    )


def audit_check(run: ProbeRun) -> Check:
    result = run.result(AUDIT_CONFIG)
    if result is None or not result.ok or not result.objects:
        said = result.error.message if result is not None and result.error else "no answer"
        return check("exchange.audit", TITLE, Status.FAIL,
                     (f"Get-AdminAuditLogConfig: {said}",),
                     "Give the account the Audit Logs or View-Only Audit Logs role "
                     "('Add-RoleGroupMember \"Organization Management\" -Member ACCOUNT'); on "
                     "Exchange 2010 RTM, install SP1 or later (SP1 brought the searchable log).")
    config = result.objects[0]
    facts = [
        f"AdminAuditLogEnabled {config.get('AdminAuditLogEnabled')}, cmdlets "
        f"{{{', '.join(texts(config.get('AdminAuditLogCmdlets')))}}}, parameters "
        f"{{{', '.join(texts(config.get('AdminAuditLogParameters')))}}}, excluded "
        f"{{{', '.join(texts(config.get('AdminAuditLogExcludedCmdlets')))}}}, kept "
        f"{config.get('AdminAuditLogAgeLimit')}",
    ]
    unlogged = [c for c, parameters in WRITES.items() if not logged(config, c, parameters)]
    if unlogged:
        why = ("logging is off" if config.get("AdminAuditLogEnabled") is not True else
               "the cmdlet or parameter lists leave them out, or they are excluded")
        return check("exchange.audit", TITLE, Status.FAIL,
                     (*facts, f"not logged: {', '.join(unlogged)} ({why}): casdesired's changes "
                      "leave no trail in Exchange, and drift cannot say who made a change"),
                     REMEDY)
    facts.append(f"every cmdlet casdesired writes with is logged ({', '.join(WRITES)})")
    commands = run.result(COMMANDS)
    search = next((o for o in (commands.objects if commands is not None and commands.ok else ())
                   if o.get("Name") == AUDIT_SEARCH), None)
    if search is None or search.get("Available") is not True:
        return check("exchange.audit", TITLE, Status.WARN,
                     (*facts, "Search-AdminAuditLog is not published to the account: casdesired "
                      "drift can say what changed, not who changed it"),
                     "Give the account the View-Only Audit Logs role (Organization Management "
                     "has it): 'New-ManagementRoleAssignment -Role \"View-Only Audit Logs\" "
                     "-User ACCOUNT'.")
    facts.append("Search-AdminAuditLog is published to the account (casdesired drift)")
    return check("exchange.audit", TITLE, Status.PASS, facts)
