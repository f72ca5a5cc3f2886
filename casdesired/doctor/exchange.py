"""Exchange checks: the session, the versions, what the account may run, the recipient scope.

From doctor's run: the agent's loading steps (the session, its import, the endpoint's version,
the recipient scope, the session's removal), plan's own read of servers, CAS, arrays and
databases with one mailbox, and ``Get-CasdesiredCommand`` over the session's proxies for the
cmdlets casdesired writes with (the restricted /PowerShell session publishes exactly what the
account's role assignments give it, so nothing is tried to find out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from casdesired.agent.protocol import JsonValue
from casdesired.doctor import outcome
from casdesired.doctor.audit import TITLE, audit_check
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.doctor.probe import COMMANDS, READS, WRITES, ProbeRun, texts

TITLES = {
    "exchange.session": "the Exchange session opens, and is removed",
    "exchange.endpoint-version": "the endpoint runs Exchange 2010",
    "exchange.servers": "every Exchange server's version and roles",
    "exchange.read": "the account may run the cmdlets casdesired reads with",
    "exchange.rbac": "the account may run the cmdlets casdesired writes with (RBAC)",
    "exchange.recipient-scope": "the recipient scope covers the whole forest",
    "exchange.audit": TITLE,
}
SERVICE_PACKS = {0: "RTM", 1: "SP1", 2: "SP2", 3: "SP3"}
_VERSION = re.compile(r"Version\s+(\d+)\.(\d+)")


def _version(text: str) -> tuple[int, int] | None:
    match = _VERSION.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def describe_version(text: str) -> str:
    found = _version(text)
    if found is None:
        return text or "no version"
    major, minor = found
    if major == 14:
        return f"{text}: Exchange 2010 {SERVICE_PACKS.get(minor, f'14.{minor}')}"
    if major >= 15:
        return f"{text}: Exchange 2013 or later"
    return f"{text}: older than Exchange 2010"


def checks(run: ProbeRun, username: str | None) -> list[Check]:
    mode = run.request.exchange.mode
    if mode == "none":
        return [skipped(i, t, "connection.exchange.mode is none: casdesired loads no Exchange")
                for i, t in TITLES.items()]
    if not run.ran:
        return [skipped(i, t, outcome.not_run(run.error)) for i, t in TITLES.items()]
    session = _session(run, mode)
    if session.status is Status.FAIL:
        why = "not checked: the Exchange session did not open (see exchange.session)"
        return [session, *(skipped(i, t, why) for i, t in TITLES.items()
                           if i != "exchange.session")]
    return [
        session,
        _endpoint_version(run),
        _servers(run),
        _reads(run, mode),
        _rbac(run, mode, username),
        _recipient_scope(run),
        audit_check(run),
    ]


def _session(run: ProbeRun, mode: str) -> Check:
    title = TITLES["exchange.session"]
    opened = run.step("exchange-session")
    if opened is None:
        return skipped("exchange.session", title, "the agent reported no Exchange session")
    if not opened.ok:
        return check("exchange.session", title, Status.FAIL, (opened.detail,),
                     _session_remedy(opened.detail, mode), anchor="exchange-session")
    if mode == "snapin":
        facts = [f"the snap-in {opened.detail} loaded (Microsoft does not support it: it "
                 "bypasses RBAC)"]
    else:
        facts = [f"New-PSSession to {opened.detail} with your credential inside the session"]
    imported = run.step("import-session")
    if imported is not None:
        if not imported.ok:
            return check("exchange.session", title, Status.FAIL,
                         (*facts, f"Import-PSSession failed: {imported.detail}"),
                         "The session opened but publishes none of casdesired's cmdlets: see "
                         "exchange.rbac's remedy.", anchor="exchange-session")
        facts.append(f"Import-PSSession: {imported.detail}")
    removed = run.step("exchange-session-removed")
    if mode == "remote" and (removed is None or not removed.ok):
        said = removed.detail if removed is not None else "not reported"
        return check("exchange.session", title, Status.WARN,
                     (*facts, f"Remove-PSSession failed: {said}"),
                     "A session left open counts against Exchange's 18 per user until its "
                     "application pool recycles: on the endpoint, 'Restart-WebAppPool "
                     "MSExchangePowerShellAppPool'.", anchor="exchange-session")
    if mode == "remote":
        facts.append("Remove-PSSession removed it at the end of the run")
    return check("exchange.session", title, Status.PASS, facts)


def _session_remedy(detail: str, mode: str) -> str:
    if "concurrent shells" in detail:
        return (
            "The account already has as many /PowerShell sessions as Exchange's throttling "
            "policy allows (PowerShellMaxConcurrency, 18): other tools leaked them. On the "
            "endpoint, recycle the pool: 'Restart-WebAppPool MSExchangePowerShellAppPool' "
            "(IIS 7.5: appcmd recycle apppool /apppool.name:MSExchangePowerShellAppPool)."
        )
    if "0x8009030e" in detail:
        return (
            "The agent had no credential to pass inside the session: name "
            "connection.credentials.password_env (docs/connecting.md)."
        )
    if "Access is denied" in detail:
        return (
            "Check the password, and that the account may use Exchange's remote PowerShell: "
            "in the Exchange Management Shell, 'Set-User ACCOUNT -RemotePowerShellEnabled "
            "$true'."
        )
    if "cannot be resolved" in detail or "cannot complete the operation" in detail:
        return (
            "Set connection.exchange.uri to http://FQDN/PowerShell/ of an Exchange 2010 Client "
            "Access server the endpoint reaches."
        )
    if mode == "snapin":
        return (
            "Install the Exchange 2010 management tools on the endpoint, or use exchange.mode: "
            "remote (the default)."
        )
    return "See the error (docs/first-contact.md#exchange-session)."


def _endpoint_version(run: ProbeRun) -> Check:
    title = TITLES["exchange.endpoint-version"]
    step = run.step("exchange-version")
    if step is not None and not step.ok:
        return check("exchange.endpoint-version", title, Status.FAIL, (step.detail,),
                     "Point connection.endpoint (and exchange.uri) at an Exchange 2010 server: "
                     "casdesired manages Exchange 2010 only, and refuses to plan or apply "
                     "through a later one.", anchor="exchange-endpoint-version")
    version = run.response.exchange_version if run.response else None
    if not version:
        return check("exchange.endpoint-version", title, Status.WARN,
                     ("the endpoint host has no Exchange server object (a host with only the "
                      "management tools?)",),
                     "Prefer an Exchange 2010 Client Access server as connection.endpoint: "
                     "casdesired's lock lives on the endpoint, and its version is checked there.",
                     anchor="exchange-endpoint-version")
    found = _version(version)
    if found is not None and found == (14, 0):
        return check("exchange.endpoint-version", title, Status.WARN,
                     (describe_version(version),
                      "Exchange 2010 RTM: no administrator audit log (SP1), no static address "
                      "book port setting (SP1)"),
                     "Install Exchange 2010 SP3 and its latest rollup.",
                     anchor="exchange-endpoint-version")
    return check("exchange.endpoint-version", title, Status.PASS, (describe_version(version),))


def _servers(run: ProbeRun) -> Check:
    title = TITLES["exchange.servers"]
    result = run.result("read:servers")
    if result is None or not result.ok:
        said = result.error.message if result is not None and result.error else "not run"
        return check("exchange.servers", title, Status.FAIL, (f"Get-ExchangeServer: {said}",),
                     "See exchange.read.", anchor="exchange-read")
    facts, later, older = [], [], []
    for server in result.objects:
        name, version = str(server.get("Name")), str(server.get("AdminDisplayVersion") or "")
        roles = server.get("ServerRole") or "no roles"
        site = str(server.get("Site") or "").rsplit("/", 1)[-1]
        facts.append(f"{name} ({server.get('Fqdn')}), site {site}: "
                     f"{describe_version(version)}; {roles}")
        found = _version(version)
        if found is not None and found[0] >= 15:
            later.append(name)
        elif found is not None and found[0] < 14:
            older.append(name)
    if later or older:
        notes = []
        if later:
            notes.append(
                f"{', '.join(later)}: Exchange 2013 or later. Never a member of a 2010 CAS "
                "array; casdesired leaves it alone (a warning in the plan), refuses it as a "
                "declared server, and withholds rebinding databases hosted on it"
            )
        if older:
            notes.append(f"{', '.join(older)}: older than Exchange 2010; casdesired leaves it "
                         "alone")
        return check("exchange.servers", title, Status.WARN, (*facts, *notes),
                     "Nothing to change for casdesired: keep the array FQDNs on the Exchange "
                     "2010 VIPs until the last 2010 mailbox has moved, and do not declare "
                     "these servers in the YAML.", anchor="exchange-servers")
    return check("exchange.servers", title, Status.PASS, facts)


def _reads(run: ProbeRun, mode: str) -> Check:
    title = TITLES["exchange.read"]
    facts, failed = [], []
    for invocation_id, cmdlet in READS.items():
        result = run.result(invocation_id)
        if result is not None and result.ok:
            facts.append(f"{cmdlet}: ran, {len(result.objects)} object(s)"
                         + (" (-ResultSize 1)" if cmdlet == "Get-Mailbox" else ""))
        else:
            said = result.error.message if result is not None and result.error else "not run"
            failed.append(f"{cmdlet}: {said}")
    if failed:
        remedy = (
            "Give the account at least the View-Only Organization Management role group "
            "('Add-RoleGroupMember \"View-Only Organization Management\" -Member ACCOUNT'); "
            "casdesired's writes need more (exchange.rbac)."
        )
        if mode == "snapin" and any("operations error" in f or "Value cannot be null" in f
                                    for f in failed):
            remedy = ("The snap-in cannot reach a domain controller from this logon (the double "
                      "hop): use exchange.mode: remote, or transport: credssp.")
        return check("exchange.read", title, Status.FAIL, (*failed, *facts), remedy,
                     anchor="exchange-read")
    return check("exchange.read", title, Status.PASS, facts)


def _rbac(run: ProbeRun, mode: str, username: str | None) -> Check:
    title = TITLES["exchange.rbac"]
    result = run.result(COMMANDS)
    if result is None or not result.ok:
        said = result.error.message if result is not None and result.error else "not run"
        return check("exchange.rbac", title, Status.FAIL, (f"Get-CasdesiredCommand: {said}",),
                     "Run casdesired doctor again; see the error.", anchor="exchange-rbac")
    found: dict[str, Mapping[str, JsonValue]] = {str(o.get("Name")): o for o in result.objects}
    facts, missing = [], []
    for cmdlet, parameters in WRITES.items():
        command = found.get(cmdlet)
        if command is None or command.get("Available") is not True:
            missing.append(f"{cmdlet}: the session does not publish it")
            continue
        published = {p.lower() for p in texts(command.get("Parameters"))}
        lacking = [p for p in parameters if p.lower() not in published]
        if lacking:
            missing.append(f"{cmdlet}: the session publishes it without "
                           f"{', '.join('-' + p for p in lacking)}")
        else:
            facts.append(f"{cmdlet} {' '.join('-' + p for p in parameters)}")
    how = ("the snap-in bypasses RBAC: every cmdlet is there" if mode == "snapin" else
           "looked up with Get-Command over the proxies of the /PowerShell session, which "
           "publishes exactly what the account's role assignments give it; nothing was run")
    if missing:
        who = username or "ACCOUNT"
        return check("exchange.rbac", title, Status.FAIL, (*missing, how),
                     f"Give {who} the roles casdesired writes with: 'Add-RoleGroupMember "
                     f"\"Organization Management\" -Member \"{who}\"' (or a role group holding "
                     "the Exchange Servers and Databases roles [inferred]); the session sees "
                     "the change from its next connection.", anchor="exchange-rbac")
    return check("exchange.rbac", title, Status.PASS, (*facts, how))


def _recipient_scope(run: ProbeRun) -> Check:
    title = TITLES["exchange.recipient-scope"]
    step = run.step("recipient-scope")
    if step is None:
        return skipped("exchange.recipient-scope", title, "the agent reported no recipient scope")
    if not step.ok:
        return check("exchange.recipient-scope", title, Status.FAIL,
                     (f"Set-AdServerSettings -ViewEntireForest $true failed: {step.detail}",
                      "without it the recipient cmdlets see only the server's own domain: "
                      "mailbox counts would leave out child domains"),
                     "Give the account a role that includes Set-AdServerSettings (every "
                     "built-in role group's roles do).", anchor="exchange-recipient-scope")
    return check("exchange.recipient-scope", title, Status.PASS,
                 ("Set-AdServerSettings -ViewEntireForest $true ran in the session: recipient "
                  "cmdlets see every domain of the forest",))
