"""An object with a hostile name: its audit entry is matched to it exactly, and shown escaped.

Two databases: one whose name holds quotes, ``$()``, backticks, ``;``, ``|``, a newline and
non-ASCII letters, and one whose name is a piece of it. Two administrators each change one out
of band; drift names the right one for each (whole names compared, never a part of one), and
every format shows the names as data.
"""

from __future__ import annotations

import json

import pytest
from apply.labenv import Env, cli
from plan.gfm import tables

from casdesired.lab.exchange.administrators import run_as

HOSTILE = (
    "Q'uo\"te $(Remove-Item C:\\) `back`tick; semi | pipe\nnew line "
    "\u00c5ngstr\u00f6m \u0416\u0443\u043a \u65e5\u672c"
)
PIECE = "semi | pipe"
"""A part of the hostile name: a substring match would take one's entry for the other's."""


@pytest.fixture
def hostile(env: Env) -> Env:
    data = env.organisation.snapshot()
    template = next(d for d in data["databases"] if d["name"] == "HQ-DB05")
    for name in (HOSTILE, PIECE):
        copy = json.loads(json.dumps(template))
        copy["name"] = name
        data["databases"].append(copy)
    env.organisation.load(data)
    site = env.org_dir / "hq.yaml"
    quoted = (
        '"Q\'uo\\"te $(Remove-Item C:\\\\) `back`tick; semi | pipe\\nnew line '
        'Ångström Жук 日本"'
    )
    site.write_text(site.read_text().replace(
        "names: [HQ-DB01, HQ-DB02]", f'names: [HQ-DB01, HQ-DB02, {quoted}, "{PIECE}"]'))
    return env


def test_a_hostile_names_entry_is_matched_exactly_and_shown_as_data(
    hostile: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = hostile
    code, out, err = cli(capsys, "apply", str(env.org_dir), "--auto-approve", "--force",
                         "--audit-log", str(env.audit))
    assert code == 0, err + out
    run_as(env.organisation, "CONTOSO\\alice", "Set-MailboxDatabase",
           {"Identity": HOSTILE, "RpcClientAccessServer": "hq-cas02.contoso.local"})
    run_as(env.organisation, "CONTOSO\\bob", "Set-MailboxDatabase",
           {"Identity": PIECE, "RpcClientAccessServer": "hq-cas01.contoso.local"})
    args = ("drift", str(env.org_dir), "--audit-log", str(env.audit))

    code, out, err = cli(capsys, *args, "--format", "json")
    assert code == 2, err
    found = {i["identity"]: i["attribution"] for i in json.loads(out)["drift"]}
    assert set(found) == {HOSTILE, PIECE}
    assert found[HOSTILE]["caller"] == "contoso.local/Users/alice"
    assert found[HOSTILE]["object_modified"] == HOSTILE  # byte for byte
    assert found[PIECE]["caller"] == "contoso.local/Users/bob"

    code, out, err = cli(capsys, *args)
    shown = HOSTILE.replace("\n", "\\n")
    assert f"  ! database {shown}  [HQ]" in out
    assert "\nnew line" not in out  # the newline is shown as \\n, never a line break

    code, out, err = cli(capsys, *args, "--format", "markdown")
    (table,) = [t for t in tables(out) if "Changed by" in t.header]
    rows = {row[0]: row for row in table.rows}
    assert set(rows) == {f"database {shown}", f"database {PIECE}"}
    assert rows[f"database {shown}"][4] == "contoso.local/Users/alice"
    assert rows[f"database {shown}"][6] == (
        f"Set-MailboxDatabase -Identity '{shown.replace(chr(39), chr(39) * 2)}' "
        "-RpcClientAccessServer hq-cas02.contoso.local"
    )
    assert rows[f"database {PIECE}"][4] == "contoso.local/Users/bob"
    assert all(len(row) == len(table.header) for row in table.rows)  # no | broke a row
