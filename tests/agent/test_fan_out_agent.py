"""Fan-out (``for_each``) in agent.ps1 and in the protocol's JSON.

agent.ps1 is read as text (comments stripped), as test_allow_list_and_lock.py reads it: its
refusals and failures must be casdesired.agent.fanout's texts, which the lab's agent and the
Python side use (tests/transport/test_fan_out.py runs them). An invocation without a fan-out
must write the JSON it always wrote: plan files record invocations and compare them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agent.test_agent_script import CODE
from agent.test_allow_list_and_lock import MAIN, function_body
from casdesired.agent import fanout
from casdesired.agent.protocol import ForEach, Invocation, Request
from casdesired.errors import ProtocolError


def _joined(expression: str) -> str:
    """The text of a PowerShell expression of string literals joined with ``+``."""
    literals = re.findall(r"\"([^\"]*)\"|'([^']*)'", expression)
    return "".join(double or single for double, single in literals)


def test_agent_ps1_refuses_a_bad_fan_out_with_the_protocols_text() -> None:
    body = function_body("Assert-AgentFanOuts")
    thrown = body.split("throw (", 1)[1].split(")\n", 1)[0]
    text = _joined(thrown).replace("$id", "{id}").replace("$sourceId", "{source}")
    assert text.replace("$why", "{why}") == fanout.REFUSED
    for why in (fanout.NOT_EARLIER, fanout.FANS_OUT, fanout.COUNTS, fanout.OWN_COMPUTER):
        assert f"$why = '{why}'" in body
    assert '$why = "' + fanout.NOT_RETURNED.replace("{property}", "$name") + '"' in body
    # Properties and ids compare as the Python side compares them.
    assert "$returned -contains $name" in body and "$earlier.ContainsKey($id)" in body


def test_agent_ps1_fails_a_fan_out_it_cannot_run_with_the_protocols_texts() -> None:
    body = function_body("Get-AgentRuns")
    refusals = [
        _joined(part.split("))", 1)[0])
        for part in body.split("New-AgentRun $Invocation (")[1:]
    ]
    expected = [
        fanout.SOURCE_FAILED.format(id="$id", source="$sourceId"),
        fanout.NO_COMPUTER.format(id="$id", source="$sourceId", property="$property"),
    ]
    assert refusals == expected
    # The run id: <id>@<computer>, the computer as the object holds it.
    assert fanout.run_id("$id", "$computer") == "$id@$computer"
    assert "$copy['id'] = $id + '" + fanout.SEPARATOR + "' + $computer" in body
    assert "$copy['computer'] = $computer" in body
    # `throw "text"`, as the lab's refusal says (category RuntimeException, target the text).
    assert "throw [string]$Run['refused']" in function_body("New-AgentRefusal")


def test_agent_ps1_checks_fan_outs_before_it_loads_anything() -> None:
    main = CODE[CODE.index(MAIN):]
    checked = main.index("Assert-AgentFanOuts $invocations")
    assert "Assert-AgentFanOuts @(Get-Field (Get-Field $request 'keepalive') 'invocation')" in main
    assert checked < main.index("Add-PSSnapin") and checked < main.index("New-PSSession")
    loop = main[main.rindex("foreach ($invocation in $invocations) {"):]
    assert loop.index("Get-AgentRuns $invocation $results") < loop.index("Invoke-AgentKeepalive")


def test_an_invocation_without_a_fan_out_writes_the_json_it_always_wrote() -> None:
    step = Invocation("step:1", "Stop-NlbClusterNode", {"Drain": True, "Timeout": 30},
                      computer="hq-cas02.contoso.local", on_error="continue")
    assert json.dumps(step.to_json()) == (
        '{"id": "step:1", "cmdlet": "Stop-NlbClusterNode", "parameters": {"Drain": true, '
        '"Timeout": 30}, "properties": [], "on_error": "continue", '
        '"computer": "hq-cas02.contoso.local"}'
    )
    assert Invocation.from_json(step.to_json()) == step


def test_a_fan_out_round_trips_as_data() -> None:
    request = Request(invocations=(
        Invocation("servers", "Get-ExchangeServer", properties=("Fqdn", "IsClientAccessServer")),
        Invocation("nlb", "Get-NlbCluster", for_each=ForEach(
            "servers", "Fqdn", where="IsClientAccessServer", values=("True",))),
        Invocation("nodes", "Get-NlbClusterNode", for_each=ForEach("servers", "Fqdn")),
    ))
    data = request.to_json()
    invocations: Any = data["invocations"]
    assert invocations[1]["for_each"] == {
        "invocation": "servers", "computer": "Fqdn",
        "where": {"property": "IsClientAccessServer", "values": ["True"]},
    }
    assert invocations[2]["for_each"] == {"invocation": "servers", "computer": "Fqdn"}
    assert "for_each" not in invocations[0]
    assert Request.from_json(json.loads(json.dumps(data))) == request


def test_reading_a_request_refuses_a_bad_fan_out_as_the_agent_does() -> None:
    data = Request(invocations=(Invocation("servers", "Get-ExchangeServer",
                                           properties=("Fqdn",)),)).to_json()
    assert isinstance(data["invocations"], list)
    data["invocations"].insert(0, Invocation("nlb", "Get-NlbCluster",
                                             for_each=ForEach("servers", "Fqdn")).to_json())
    with pytest.raises(ProtocolError) as refused:
        Request.from_json(data)
    assert str(refused.value) == fanout.REFUSED.format(
        id="nlb", source="servers", why=fanout.NOT_EARLIER)
    with pytest.raises(ProtocolError, match="for_each must be an object"):
        Invocation.from_json({"id": "x", "cmdlet": "Get-NlbCluster", "for_each": "servers"})
