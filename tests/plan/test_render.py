"""Renderers: text (symbols, colour rules), JSON (schema), Markdown (escaping hostile values)."""

from __future__ import annotations

import io
import json
import re

from changes.estates import plan_of, seed_input
from jsonschema import Draft202012Validator

from casdesired import model
from casdesired.changes.diff import diff_input
from casdesired.plan.plan import Plan, plan_schema
from casdesired.plan.render_json import JsonRenderer
from casdesired.plan.render_markdown import MarkdownRenderer, cell
from casdesired.plan.render_text import TextRenderer, wants_colour

HOSTILE = "Evil|DB <script>alert(1)</script> `rm` *x* [l](http://e) @team #1\nline2 \x1b[31mred"


def make_plan(hostile: bool = False) -> Plan:
    inp = seed_input()
    if hostile:
        db = model.DatabaseBinding(HOSTILE, "hq-cas02.contoso.local", mailbox_count=5)
        inp.live.databases[db.key] = db
        inp.bindings[db.key] = model.DatabaseBinding(HOSTILE, "outlook-hq.contoso.local")  # type: ignore[index]
    return plan_of(
        diff_input(inp), live_fingerprint="sha256:" + "0" * 64, desired_digest="1" * 64
    )


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_has_symbols_summary_and_no_colour_when_not_a_tty() -> None:
    out = io.StringIO()
    TextRenderer().render(make_plan(), out)
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "  + create CAS array outlook-branch.contoso.local" in text
    assert "  ~ rebind database HQ-DB05: hq-cas02.contoso.local -> outlook-hq.contoso.local" in text
    assert text.rstrip().splitlines()[-1].startswith("Plan: 2 to create, 5 to change")
    assert "Outlook 2007/2010" in text


def test_text_colours_a_tty_unless_no_color(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = FakeTty()
    TextRenderer().render(make_plan(), tty)
    assert "\x1b[" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = FakeTty()
    TextRenderer().render(make_plan(), tty)
    assert "\x1b[" not in tty.getvalue()
    assert wants_colour(FakeTty(), {"NO_COLOR": ""}) is True


def test_text_escapes_control_characters_in_names() -> None:
    out = io.StringIO()
    TextRenderer().render(make_plan(hostile=True), out)
    text = out.getvalue()
    assert "\x1b" not in text and "\\x1b[31mred" in text
    assert "#1\\nline2" in text


def test_json_renderer_output_validates() -> None:
    out = io.StringIO()
    JsonRenderer().render(make_plan(hostile=True), out)
    document = json.loads(out.getvalue())
    Draft202012Validator(plan_schema()).validate(document)
    assert any(c["identity"] == HOSTILE for c in document["changes"])


def test_markdown_changes_and_safety_are_separate_tables() -> None:
    text = MarkdownRenderer().lines(make_plan())
    joined = "\n".join(text)
    changes_at = joined.index("#### Changes")
    safety_at = joined.index("#### Safety decisions")
    assert changes_at < safety_at
    change_table = joined[changes_at:safety_at]
    assert "Outlook" not in change_table  # warnings live in their own section
    assert "create CAS array outlook-branch.contoso.local" in change_table


def test_markdown_escapes_every_hostile_value() -> None:
    text = "\n".join(MarkdownRenderer().lines(make_plan(hostile=True)))
    for raw in ("<script>", "`rm`", "*x*", "[l](", "@team", " #1", "Evil|DB", "\x1b"):
        assert raw not in text, raw
    # Every table row still has the same number of cells as its header.
    for block in re.split(r"\n\n", text):
        rows = [r for r in block.splitlines() if r.startswith("|")]
        if rows:
            widths = {r.count("|") for r in rows}
            assert len(widths) == 1, rows
    assert "Evil&#124;DB &#60;script&#62;" in text
    assert "&#64;team &#35;1<br>line2" in text


def test_cell_escapes_the_markdown_and_html_specials() -> None:
    assert cell("a|b") == "a&#124;b"
    assert cell("<b>") == "&#60;b&#62;"
    assert cell("x`y") == "x&#96;y"
    assert cell("one\r\ntwo\nthree") == "one<br>two<br>three"
    assert cell("Zürich-DB") == "Zürich-DB"
    assert cell(None) == ""
