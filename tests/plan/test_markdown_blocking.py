"""The Markdown summary table counts every finding that blocks apply for a site.

Through the real CLI against the lab, read back with a CommonMark + GFM parser: a site whose
plan text says "1 DNS finding(s) block apply" must not show "Blocking findings 0".
"""

from __future__ import annotations

import json
import re

import pytest
from apply.labenv import Env, cli

from plan.gfm import tables


def blocking_column(markdown: str) -> dict[str, str]:
    table = next(t for t in tables(markdown) if t.header[0] == "Site")
    return dict(zip(table.column("Site"), table.column("Blocking findings"), strict=True))


def leading_number(cell: str) -> int:
    match = re.match(r"\d+", cell)
    assert match is not None, cell
    return int(match.group())


def test_a_dns_finding_that_blocks_apply_is_counted_for_its_site(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    records = env.organisation.dns_records()
    records["outlook-branch.contoso.local"] = ["10.2.0.99"]  # not Branch's VIP 10.2.0.50
    env.organisation.set_dns_records(records)
    code, text, err = cli(capsys, "plan", str(env.org_dir))
    assert code == 0, err
    assert text.rstrip().endswith("; 1 DNS finding(s) block apply")
    code, markdown, err = cli(capsys, "plan", str(env.org_dir), "--format", "markdown")
    assert code == 0, err
    column = blocking_column(markdown)
    assert column["Branch"] == "1 (1 DNS, unless --force)"
    assert column["HQ"] == "0" and column["DR"] == "0"
    # The table adds up to what the plan says blocks apply.
    _, out, _ = cli(capsys, "plan", str(env.org_dir), "--format", "json")
    document = json.loads(out)
    blocks = sum(f["blocking"] for f in document["findings"]) + sum(
        d["blocks_apply"] for d in document["dns"])
    assert sum(leading_number(cell) for cell in column.values()) == blocks == 1
    assert "Branch: 1 to create, 3 to change, 0 to delete; 166 mailboxes; 1 DNS finding(s) " \
           "block apply" in markdown


def test_withheld_and_dns_blocking_findings_add_up_in_one_cell(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    branch = env.org_dir / "branch.yaml"
    text = branch.read_text("utf-8")
    assert "servers:\n" in text
    branch.write_text(text.replace(
        "servers:\n", "servers:\n  - name: BR-CAS09\n    fqdn: br-cas09.contoso.local\n", 1),
        "utf-8")  # server-missing: Branch's changes are withheld
    records = env.organisation.dns_records()
    records["outlook-hq.contoso.local"] = ["10.1.0.99"]  # HQ rebinds to it: blocks apply
    env.organisation.set_dns_records(records)
    code, markdown, err = cli(capsys, "plan", str(env.org_dir), "--format", "markdown")
    assert code == 1, err
    column = blocking_column(markdown)
    assert column["Branch"] == "1 (4 withheld)"
    assert column["HQ"] == "1 (1 DNS, unless --force)"
