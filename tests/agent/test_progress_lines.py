"""The agent's progress lines: agent.ps1 writes the form the client reads, only numbers and
only when asked; whatever else stdout holds and wherever Receives cut it, the reader finds
exactly the progress lines and the response still decodes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.test_agent_script import CODE
from agent.test_allow_list_and_lock import MAIN, function_body
from casdesired.agent import framing
from casdesired.agent.framing import AgentProgress, ProgressReader, progress_line
from casdesired.agent.protocol import Invocation, Request, Response, Result
from casdesired.changes.types import (
    ArrayCreate,
    BindingChange,
    Change,
    NlbNodeAdd,
    NlbNodeRemove,
)

RESPONSE = Response(results=(Result("a", True, ({"Name": "HQ-DB01"},)),), host="HQ-CAS01")

marks = st.builds(
    AgentProgress,
    st.integers(min_value=1, max_value=999_999_999),
    st.none() | st.integers(min_value=0, max_value=999_999_999),
)
noise = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=120).filter(
    lambda t: framing.RESPONSE_BEGIN not in t and "<casdesired-progress" not in t
)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    st.lists(marks | noise, max_size=12),
    st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
)
def test_progress_lines_are_found_wherever_stdout_is_cut(
    lines: list[AgentProgress | str], cuts: list[int]
) -> None:
    text = "".join(
        (progress_line(x.invocation, x.left) if isinstance(x, AgentProgress) else x) + "\r\n"
        for x in lines
    ) + framing.encode_response(RESPONSE)
    data = text.encode("utf-8")
    reader = ProgressReader()
    found: list[AgentProgress] = []
    start = 0
    for cut in [*sorted({min(c, len(data)) for c in cuts}), len(data)]:
        found += reader.feed(data[start:cut])
        start = cut
    assert found == [x for x in lines if isinstance(x, AgentProgress)]
    assert framing.decode_response(text) == RESPONSE


def test_only_a_whole_progress_line_counts() -> None:
    reader = ProgressReader()
    assert reader.feed(b'<casdesired-progress invocation="3" le') == []
    assert reader.feed(b'ft="252"/>\r\nwarning: <casdesired-progress invocation="4"/>\r\n') == [
        AgentProgress(3, 252)
    ]
    # Cut, then a long line: nothing kept, nothing found in it.
    assert reader.feed(b"x" * 10_000 + b'<casdesired-progress invocation="5"/>\r\n') == []
    assert reader.feed(b'<casdesired-progress invocation="0"/>\n') == []  # positions from 1
    assert reader.feed(b'  <casdesired-progress invocation="6"/>  \n') == [AgentProgress(6)]


def test_agent_ps1_writes_the_line_the_client_reads_and_only_when_asked() -> None:
    body = function_body("Write-AgentProgress")
    assert "if (-not $AgentState['progress']) { return }" in body
    # What the three statements below write, for position 7 and 42 s left, is the framing's.
    assert "$line = '<casdesired-progress invocation=\"' + $Invocation + '\"'" in body
    assert "if ($Left -ge 0) { $line += ' left=\"' + $Left + '\"' }" in body
    assert "[Console]::Out.WriteLine($line + '/>')" in body
    written = '<casdesired-progress invocation="' + "7" + '"' + ' left="' + "42" + '"' + "/>"
    assert written == progress_line(7, 42)
    assert progress_line(7) == '<casdesired-progress invocation="' + "7" + '"' + "/>"
    assert "[Console]::Out.Flush()" in body
    assert "$AgentState['progress'] = (Get-Field $request 'progress' $false) -eq $true" in CODE
    # Only numbers: the position (counted in the main loop) and the seconds left.
    assert "param([int]$Invocation, [int]$Left = -1)" in body
    main = CODE[CODE.index(MAIN):]
    assert "$position += 1" in main
    assert main.index("Write-AgentProgress $position") < main.index(
        "Invoke-AgentInvocation $run['invocation'] $true $position")
    until = function_body("Invoke-AgentInvocation")
    assert until.index("Write-AgentProgress $Position") < until.index("Start-Sleep")


def test_a_request_asks_for_progress_in_its_json() -> None:
    request = Request(invocations=(Invocation("a", "Get-ExchangeServer"),), progress=True)
    assert request.to_json()["progress"] is True
    assert Request.from_json(request.to_json()).progress
    assert "progress" not in Request(invocations=request.invocations).to_json()


def test_every_change_names_one_step_per_invocation() -> None:
    changes: list[Change] = [
        ArrayCreate(site="HQ", fqdn="outlook-hq.contoso.local", name="HQ array"),
        BindingChange(site="HQ", database="HQ-DB01", before_target="a", target="b",
                      mailbox_count=1),
        NlbNodeAdd(site="HQ", cluster_host="hq-cas01.contoso.local", server="HQ-CAS02",
                   interface="NLB", server_fqdn="hq-cas02.contoso.local", node_interface="NLB"),
        NlbNodeRemove(site="HQ", cluster_host="hq-cas01.contoso.local", server="HQ-CAS03",
                      server_fqdn="hq-cas03.contoso.local"),
    ]
    for change in changes:
        steps, invocations = change.steps(), change.invocations()
        assert len(steps) == len(invocations), change
        for (_text, wait), invocation in zip(steps, invocations, strict=True):
            if invocation.until is not None:
                assert wait == invocation.until.timeout_seconds
