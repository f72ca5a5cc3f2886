"""A database whose name is hostile to any shell, end to end through the real CLI.

The name holds quotes, ``$()``, backticks, ``;``, ``|``, a newline and non-ASCII letters. It is
declared in YAML (a double-quoted scalar), shown escaped in every plan format (never able to
break a table or drive a terminal) and applied: the lab's journal shows the Identity parameter
Exchange received byte for byte, and the lab's state shows the new binding.
"""

from __future__ import annotations

import json

import pytest
from plan.gfm import tables

from apply.labenv import Env, cli
from casdesired.agent.delivery import files

HOSTILE = (
    "Q'uo\"te $(Remove-Item C:\\) `back`tick; semi | pipe\nnew line "
    "\u00c5ngstr\u00f6m \u0416\u0443\u043a \u65e5\u672c"
)
BINDING = "outlook-hq.contoso.local"


@pytest.fixture
def hostile(env: Env) -> Env:
    """The lab gains an HQ database of that name (bound to HQ-CAS02); hq.yaml names it."""
    data = env.organisation.snapshot()
    copy = json.loads(json.dumps(next(d for d in data["databases"] if d["name"] == "HQ-DB05")))
    copy["name"] = HOSTILE
    data["databases"].append(copy)
    env.organisation.load(data)
    site = env.org_dir / "hq.yaml"
    text = site.read_text()
    assert "names: [HQ-DB01, HQ-DB02]" in text
    # Written by hand as a YAML double-quoted scalar: \" \\ \n are YAML's escapes.
    quoted = (
        '"Q\'uo\\"te $(Remove-Item C:\\\\) `back`tick; semi | pipe\\nnew line '
        'Ångström Жук 日本"'
    )
    site.write_text(text.replace("names: [HQ-DB01, HQ-DB02]",
                                 f"names: [HQ-DB01, HQ-DB02, {quoted}]"))
    return env


@pytest.mark.parametrize("env", ["stdin", "file"], indirect=True)
def test_a_hostile_name_is_planned_escaped_and_applied_byte_for_byte(
    hostile: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = hostile
    code, out, err = cli(capsys, "validate", str(env.org_dir))
    assert code == 0, err

    # JSON: the exact name, as data.
    code, out, err = cli(capsys, "plan", str(env.org_dir), "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    change = next(c for c in plan["changes"] if c["identity"] == HOSTILE)
    assert change["invocations"][0]["parameters"] == {
        "Identity": HOSTILE, "RpcClientAccessServer": BINDING
    }
    assert change["data"]["database"] == HOSTILE

    # Text: the newline shown as \n, so the change stays on one line; nothing interpreted.
    code, out, err = cli(capsys, "plan", str(env.org_dir))
    assert code == 0, err
    shown = HOSTILE.replace("\n", "\\n")
    line = next(x for x in out.splitlines() if "Remove-Item" in x)
    assert f"~ rebind database {shown}: hq-cas02.contoso.local -> {BINDING}" in line
    assert "new line" not in out.replace(shown, "")  # no line of its own

    # Markdown: backslash escapes (readable as text), the newline shown as \n, and $ as a
    # character reference (GitHub renders $…$ as math); a CommonMark+GFM parser reads the name
    # back exactly as the text renderer shows it.
    code, out, err = cli(capsys, "plan", str(env.org_dir), "--format", "markdown")
    assert code == 0, err
    escaped = (
        "Q'uo\"te &#36;(Remove-Item C:\\\\) \\`back\\`tick; semi \\| pipe\\\\nnew line "
        "Ångström Жук 日本"
    )
    row = next(x for x in out.splitlines() if "Remove-Item" in x)
    assert f"| rebind database {escaped}: hq-cas02.contoso.local -> {BINDING} (" in row
    header = next(x for x in out.splitlines() if x.startswith("| # |"))
    assert row.count(" | ") == header.count(" | ")  # the name's | did not add a column
    [cell] = [r[1] for t in tables(out) for r in t.rows if "Remove-Item" in r[1]]
    assert cell.startswith(f"rebind database {shown}: hq-cas02.contoso.local -> {BINDING} (")

    # Apply through the CLI: Exchange receives the name byte for byte, as a parameter value.
    mark = int(env.lab.journal.entries()[-1]["seq"])
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force")
    assert code == 0, err
    assert f"applied: rebind database {shown}" in out
    calls = [
        e for e in env.cmdlets(mark)
        if e["cmdlet"] == "Set-MailboxDatabase"
        and str(e["parameters"]["Identity"]).encode("utf-8") == HOSTILE.encode("utf-8")
    ]
    assert len(calls) == 1 and calls[0]["ok"] is True
    assert calls[0]["parameters"]["RpcClientAccessServer"] == BINDING
    lines = [str(e["command_line"]) for e in env.lab.journal.entries(["command"])]
    if env.delivery == "stdin":
        assert len(lines) >= 3 and len(set(lines)) == 1  # one fixed command line: data on stdin
    else:
        # Fixed templates with only base64 and hex in them; the name travels as data, gzip'd.
        assert len(lines) >= 6 and all(files.check_line(line) for line in lines)
        assert not any(part in line for line in lines for part in ("Remove-Item", "$(", "|"))
    stored = next(d for d in env.organisation.snapshot()["databases"] if d["name"] == HOSTILE)
    assert stored["rpc_client_access_server"]["shown"] == BINDING
    code, out, err = cli(capsys, "plan", str(env.org_dir), "--detailed-exitcode")
    assert code == 0 and "No changes." in out, err
