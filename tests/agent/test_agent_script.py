"""Static checks on agent.ps1's text: its shape, its one framed line, a short bootstrap.

No PowerShell runs here (the lab executes what the agent does); these tests read the script.
What PowerShell 2.0 lacks and what would turn data into code are looked for on the syntax
tree, in test_agent_syntax.py.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from casdesired.agent import framing, protocol
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.agent.script import PROBES_MARKER, PROBES_PLACEHOLDER, agent_script, compact

ROOT = Path(__file__).resolve().parents[2]


def strip_comments(script: str) -> str:
    """The script without ``<# ... #>`` blocks and ``#`` line comments, strings kept intact.

    Quote-aware, so a ``#`` inside a string literal is not taken for a comment.
    """
    out: list[str] = []
    i, n = 0, len(script)
    quote: str | None = None
    while i < n:
        ch = script[i]
        if quote:
            out.append(ch)
            if ch == "`" and quote == '"' and i + 1 < n:  # escaped character in "..."
                out.append(script[i + 1])
                i += 2
                continue
            if ch == quote:
                if i + 1 < n and script[i + 1] == quote:  # doubled quote stays in the string
                    out.append(script[i + 1])
                    i += 2
                    continue
                quote = None
            i += 1
            continue
        if script.startswith("<#", i):
            end = script.find("#>", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch == "#":
            end = script.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in "'\"":
            quote = ch
        out.append(ch)
        i += 1
    return "".join(out)


CODE = strip_comments(agent_script(diagnose=True))
"""agent.ps1 with probes.ps1 in place: every function the agent can have."""

def test_comment_stripper_keeps_strings_and_drops_comments() -> None:
    text = "a # gone\n<# block\n gone #>b '# kept' \"x`\"# kept\" # gone"
    assert strip_comments(text) == "a \nb '# kept' \"x`\"# kept\" "


def test_agent_starts_with_the_marker_and_is_ascii() -> None:
    for raw in (agent_script(), agent_script(diagnose=True)):
        assert raw.splitlines()[0] == protocol.AGENT_MARKER
        raw.encode("ascii")  # raises if not


def test_only_a_diagnose_requests_agent_carries_the_probes_before_main() -> None:
    plain, full = agent_script(), agent_script(diagnose=True)
    probes = [f"function {p}" for p in protocol.READ_CMDLETS if p.startswith("Get-Casdesired")
              and p not in ("Get-CasdesiredLock", "Get-CasdesiredPlanRecord")]
    assert len(probes) == 5
    assert not any(p in plain for p in probes)
    main = full.index("\n$response = New-Map")  # the Main section's first line
    assert all(0 < full.index(p) < main for p in probes)
    # Everything else is the same agent: probes.ps1 stands where the placeholder line was.
    probes_text = (ROOT / "casdesired" / "agent" / "probes.ps1").read_text("ascii")
    placeholder = next(line for line in plain.splitlines(keepends=True)
                       if line.startswith(PROBES_PLACEHOLDER))
    assert full.replace(compact(probes_text).rstrip("\n") + "\n", placeholder) == plain
    assert probes_text.startswith(PROBES_MARKER)
    # Every other run's agent fits, with its request, in one 64 KiB Send of stdin.
    assert len(plain) < 60 * 1024


def _code_lines(script: str) -> list[str]:
    return [line.rstrip() for line in strip_comments(script).splitlines() if line.strip()]


def test_the_agent_travels_without_its_comments_and_with_all_of_its_code() -> None:
    package = ROOT / "casdesired" / "agent"
    for name in ("agent.ps1", "probes.ps1"):
        text = (package / name).read_text("ascii")
        # compact() drops whole comment lines; a here-string could hold one that is not.
        assert not re.search(r"@['\"]\s*$", text, re.M), f"{name} has a here-string"
    plain = agent_script()
    shipped = (package / "agent.ps1").read_text("ascii")
    assert _code_lines(plain) == _code_lines(shipped)
    probes = (package / "probes.ps1").read_text("ascii").rstrip() + "\n"
    with_probes = re.sub(f"^{re.escape(PROBES_PLACEHOLDER)}.*\n", lambda _: probes, shipped,
                         flags=re.M)
    assert _code_lines(agent_script(diagnose=True)) == _code_lines(with_probes)
    # What is left of comments: the lines that say what the script is, nothing else.
    comments = [line for line in plain.splitlines() if line.lstrip().startswith("#")]
    assert [c.split(" casdesired/")[0] for c in comments] == [
        protocol.AGENT_MARKER, PROBES_PLACEHOLDER]
    assert len(plain) < len(shipped) * 3 // 4


def test_agent_takes_the_request_as_its_first_parameter() -> None:
    # The bootstrap runs the agent as a script block with the request as its one argument.
    first_statement = CODE.strip().splitlines()[0]
    assert re.match(r"param\s*\(\s*\[string\]\$RequestBase64", first_statement, re.IGNORECASE)


def test_agent_takes_the_credential_as_its_second_parameter_when_the_request_has_none() -> None:
    # The file delivery's bootstrap passes it from the shell's environment (never a file).
    first_statement = CODE.strip().splitlines()[0]
    assert re.match(
        r"param\s*\(\s*\[string\]\$RequestBase64[^,]*,\s*\[string\]\$CredentialBase64",
        first_statement, re.IGNORECASE,
    )
    assert re.search(r"\$null -eq \$AgentState\['credential'\] -and \$CredentialBase64", CODE)


def test_agent_splats_request_parameters_and_writes_one_framed_line() -> None:
    # Locally, and on another computer through the fixed remote script block: both splat.
    assert re.search(r"&\s*\$cmdlet\s+@parameters", CODE, re.IGNORECASE)
    assert re.search(r"&\s*\$name\s+@parameters", CODE, re.IGNORECASE)
    assert re.search(r"-ArgumentList\s+\$Cmdlet,\s*\$Parameters", CODE)
    assert "[Console]::Out.Write(" in CODE
    assert framing.RESPONSE_BEGIN + framing.GZIP_PREFIX in CODE and framing.RESPONSE_END in CODE
    assert "System.IO.Compression.GZipStream" in CODE
    assert "JavaScriptSerializer" in CODE and "MaxJsonLength" in CODE
    # Nothing reaches the formatter: PowerShell 2.0 wraps formatted output at 80 columns.
    assert not re.search(r"Write-Host|Write-Output|Format-(Table|List)|Out-Host", CODE, re.I)


def test_agent_refuses_exchange_2013_with_the_shared_message() -> None:
    assert "casdesired manages Exchange 2010 only." in CODE
    assert re.search(r"-ge\s+15", CODE)


def test_bootstrap_command_line_stays_far_under_the_cmd_limit() -> None:
    executable, arguments = stdin_delivery.command_line()
    line = " ".join([executable, *arguments])
    assert len(line) < 2000, len(line)  # cmd.exe's limit is 8,191
    assert framing.decode_command(arguments[-1]) == stdin_delivery.BOOTSTRAP_SCRIPT


def test_request_values_travel_as_base64_data_never_as_script_text() -> None:
    hostile = "DB'\"$(Remove-Item C:\\)`;|\n\u00e9\u00df\u0416"
    request = protocol.Request(
        invocations=(
            protocol.Invocation("set", "Set-MailboxDatabase", {"Identity": hostile}),
        )
    )
    stdin = stdin_delivery.encode_stdin(agent_script(), request)
    text = stdin.decode("ascii")  # pure ASCII whatever the names
    script, _, payload = text.partition(stdin_delivery.REQUEST_SEPARATOR)
    assert "Remove-Item" not in text
    assert script.rstrip() == agent_script().rstrip()
    decoded = json.loads(base64.b64decode(payload.strip()).decode("utf-8"))
    assert decoded["invocations"][0]["parameters"]["Identity"] == hostile
    assert stdin_delivery.decode_stdin(stdin)[1] == request
