"""Renderers: text (symbols, colour rules) and JSON (schema); Markdown: test_render_markdown."""

from __future__ import annotations

import io
import json

from changes.estates import plan_of, seed_input
from jsonschema import Draft202012Validator

from casdesired import model
from casdesired.changes.diff import diff_input
from casdesired.plan.plan import Plan
from casdesired.plan.planfile import plan_schema
from casdesired.plan.render_json import JsonRenderer
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
