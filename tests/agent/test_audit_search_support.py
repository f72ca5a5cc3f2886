"""What the audit search needs from the agent: ``dates`` (a date travels as a [DateTime], never
as text a server reads in its regional format), ``expand`` (an audit entry's CmdletParameters
with their values, not only their names), and cmdlets RBAC may not grant that never fail the
run."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from agent.test_allow_list_and_lock import CODE, function_body
from casdesired.agent import protocol
from casdesired.drift.sources import audit_invocations


def test_dates_and_expand_round_trip_and_stay_out_of_plain_invocations() -> None:
    search = protocol.Invocation(
        "s", "Search-AdminAuditLog", {"StartDate": "2024-05-01T08:00:00Z"}, ("Caller",),
        dates=("StartDate",), expand={"CmdletParameters": ("Name", "Value")},
    )
    again = protocol.Invocation.from_json(search.to_json())
    assert again == search
    plain = protocol.Invocation("w", "Set-MailboxDatabase", {"Identity": "DB01"})
    assert "dates" not in plain.to_json() and "expand" not in plain.to_json()


def test_a_utc_instant_has_one_text_form() -> None:
    moment = datetime(2024, 5, 1, 10, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert protocol.utc_text(moment) == "2024-05-01T08:00:05Z"
    with pytest.raises(ValueError, match="naive"):
        protocol.utc_text(datetime(2024, 5, 1))


def test_the_agent_parses_dates_with_the_invariant_culture_before_the_call() -> None:
    convert = function_body("ConvertFrom-AgentDate")
    assert "[System.Globalization.CultureInfo]::InvariantCulture" in convert
    assert "TryParseExact" in convert and "yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'" in convert
    assert "AdjustToUniversal" in convert
    invocation = function_body("Invoke-AgentInvocation")
    assert invocation.index("ConvertFrom-AgentDate") < invocation.index(
        "Invoke-AgentCmdlet $cmdlet $parameters"
    )
    # The agent's format is the protocol's.
    assert datetime(2024, 5, 1, 8, tzinfo=timezone.utc).strftime(protocol.DATE_FORMAT) == (
        "2024-05-01T08:00:00Z"
    )


def test_the_agent_expands_only_what_the_invocation_names() -> None:
    select = function_body("Select-AgentProperties")
    assert "Get-Field $Expand" in select
    assert len(re.findall(r"Select-AgentProperties \$\w+ \$properties \$expand", CODE)) == 2


def test_cmdlets_rbac_may_not_grant_are_imported_apart_and_never_fail_the_run() -> None:
    match = re.search(r"(?s)\$OptionalCmdlets\s*=\s*@\((.*?)\)", CODE)
    assert match, "agent.ps1 must spell out $OptionalCmdlets"
    optional = re.findall(r"'([A-Za-z]+-[A-Za-z0-9]+)'", match.group(1))
    assert optional == ["Get-AdminAuditLogConfig", "Search-AdminAuditLog"]
    assert set(optional) <= set(protocol.ALLOWED_CMDLETS)
    main = CODE[CODE.index("$remoteSession = New-PSSession"):]
    required = main.index("[void](Import-PSSession @importParameters)")
    apart = main.index("try { [void](Import-PSSession @optionalParameters) } catch")
    assert required < apart
    # drift runs them after the read, and their failure never stops the agent.
    since = datetime(2024, 5, 1, tzinfo=timezone.utc)
    audit = [i for i in audit_invocations(since, 10) if i.cmdlet in optional]
    assert len(audit) == 2 and all(i.on_error == "continue" for i in audit)
