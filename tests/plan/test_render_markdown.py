"""The Markdown plan, read back with a real CommonMark + GFM parser (markdown-it-py).

What a reviewer must get from a pull-request comment: the verdict, the per-site summary and
every ``--force`` reason before the first ``<details>``; every hostile name shown exactly as
typed (controls made visible) without breaking a table, starting markup, math, a mention or an
issue link; and a comment that stays within ``--max-bytes`` for 10,000 databases.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

import pytest
from changes.estates import plan_of, seed_input

from casdesired import model
from casdesired.changes.diff import diff_input
from casdesired.changes.types import ArrayDelete, BindingChange
from casdesired.desired.config import Policy
from casdesired.findings import Finding, Location, Severity, Source
from casdesired.plan.markdown_text import ZWSP, html, md
from casdesired.plan.plan import Plan
from casdesired.plan.render_markdown import DEFAULT_MAX_BYTES, MarkdownRenderer
from casdesired.plan.thresholds import needs_force
from casdesired.visible import clean
from plan.gfm import PARSER, Table, html_tags, source_cells, tables, visible

HOSTILE_NAMES = [
    "Evil|DB <script>alert(1)</script> `rm` *x* _y_ [l](http://e) ~~s~~ &amp; \\|",
    "O'Brien's DB ($x)",
    "cost $5 and $6",
    "@team and #1 and a@b.example",
    "line1\nline2\r\nline3\ttab",
    "bidi \u202eevil\u202c and \u2066iso\u2069 and zero\u200bwidth\u200f",
    "trailing backslash \\",
    "<!-- comment --> &#60; <details>",
]
INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200f]")


HOSTILE = "Evil|DB <script>alert(1)</script> `rm` *x* [l](http://e) @team #1\nline2 \x1b[31mred"


def make_plan(hostile: bool = False) -> Plan:
    inp = seed_input()
    if hostile:
        db = model.DatabaseBinding(HOSTILE, "hq-cas02.contoso.local", mailbox_count=5)
        inp.live.databases[db.key] = db
        inp.bindings[db.key] = model.DatabaseBinding(HOSTILE, "outlook-hq.contoso.local")  # type: ignore[index]
    return plan_of(diff_input(inp))


def seed_plan() -> Plan:
    return plan_of(diff_input(seed_input()))


def with_force(plan: Plan, total_databases: int) -> Plan:
    """The plan with its ``--force`` reasons, as ``assemble`` computes them."""
    reasons = needs_force(plan.changes, total_databases, Policy(), plan.findings)
    return replace(plan, needs_force=tuple(reasons))


def hostile_plan() -> Plan:
    """Each hostile name as a database rebound in a site of the same name, with findings."""
    changes = []
    findings = []
    for i, name in enumerate(HOSTILE_NAMES):
        changes.append(BindingChange(name, name, "old|cas", "outlook-hq.contoso.local", 10 + i))
        findings.append(Finding(Severity.WARNING, "rule|x", name, site=name,
                                location=Location("/runner/org/hq.yaml", 3, 4)))
        findings.append(Finding(Severity.ERROR, "dns-x", name, site=name, name=name,
                                source=Source.DNS))
    return Plan(
        organisation="contoso <b>",
        endpoint="lab",
        live_fingerprint="sha256:" + "0" * 64,
        desired_digest="1" * 64,
        changes=tuple(changes),
        findings=tuple(findings),
        needs_force=("deletes need --force: the plan deletes 1 object(s) (x|y $a$ @z)",),
        dns_checked=tuple(HOSTILE_NAMES),
        root="/runner/org",
    )


def render(plan: Plan, **options: object) -> str:
    return MarkdownRenderer(**options).text(plan)  # type: ignore[arg-type]


def first_screen(text: str) -> str:
    return text.split("<details>", 1)[0]


def table_with(text: str, header: str) -> Table:
    return next(t for t in tables(text) if header in t.header)


def assert_tables_keep_their_shape(text: str) -> None:
    """Every row of every table has as many cells as its header, in the source (unescaped
    pipes) and for the parser (the same count as its source row)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            block = []
            for row in lines[i:]:
                if not row.startswith("|"):
                    break
                block.append(row)
            assert len({source_cells(r) for r in block}) == 1, block
    for table in tables(text):
        assert all(len(row) == len(table.header) for row in table.rows)


# --- the example plan ---------------------------------------------------------------------


def test_the_first_screen_has_the_verdict_the_summary_and_every_force_reason() -> None:
    plan = with_force(seed_plan(), total_databases=12)
    assert plan.needs_force  # 4 of 12 databases rebound: above 30%
    text = render(plan)
    top = first_screen(text)
    assert top.splitlines()[2].startswith("**Verdict: ⚠️ apply needs `--force` (1 reason(s)")
    assert "Plan: 2 to create, 5 to change, 0 to destroy; 398 mailboxes affected." in top
    summary = table_with(top, "Site")
    assert summary.header == [
        "Site", "Creates", "Changes", "Deletes", "Mailboxes", "Needs --force",
        "Blocking findings", "DNS checked",
    ]
    assert summary.rows == [
        ["Branch", "1", "2", "0", "53", "yes: rebind threshold (org-wide)", "0", "not recorded"],
        ["HQ", "1", "3", "0", "345", "yes: rebind threshold (org-wide)", "0", "not recorded"],
    ]
    safety = top.split("#### Safety decisions")[1]
    for reason in plan.needs_force:
        assert f"- **needs `--force`**: {md(reason)}" in safety
    assert "threshold max_rebind_percent: the plan rebinds 4 of 12" in safety  # no escapes
    assert_tables_keep_their_shape(text)


def test_each_site_has_one_outlook_note_with_its_mailbox_total() -> None:
    text = render(seed_plan())
    for site, mailboxes, databases in (("Branch", 53, 2), ("HQ", 345, 2)):
        details = text.split(f"<details><summary>{site}: ")[1].split("</details>")[0]
        assert details.count("**Outlook 2007/2010**") == 1
        assert (
            f"**Outlook 2007/2010**: {mailboxes} mailboxes get a new RPC endpoint "
            f"({databases} database(s) rebound); existing Outlook 2007/2010 profiles keep"
        ) in details
    changes = table_with(text.split("<summary>HQ: ")[1], "Change")
    assert changes.rows[-1] == [
        "7",
        "rebind database HQ-DB06: hq-cas02.contoso.local -> outlook-hq.contoso.local "
        "(45 mailboxes)",
        "45",
    ]
    assert "Outlook" not in " ".join(" ".join(r) for r in changes.rows)
    assert "&#" not in text and "binding:" not in text  # words, not entities or change ids


def test_dns_checked_and_fine_reads_differently_from_not_checked() -> None:
    plan = seed_plan()
    checked = render(replace(plan, dns_checked=("HQ", "Branch")))
    dns = checked.split("#### DNS")[1]
    assert dns.startswith("\n\nChecked for 2 site(s) (HQ, Branch): no findings ✓.")
    assert table_with(checked, "Site").column("DNS checked") == ["✓", "✓"]
    assert checked.count("**DNS**: checked, no findings ✓") == 2
    unchecked = render(replace(plan, dns_checked=()))
    assert "✗ Not checked: no resolvers are configured" in unchecked
    assert table_with(unchecked, "Site").column("DNS checked") == [
        "✗ not checked", "✗ not checked"
    ]
    assert "checked, no findings" not in unchecked


def test_a_site_in_sync_is_listed_when_dns_checked_it() -> None:
    text = render(replace(seed_plan(), dns_checked=("Branch", "DR", "HQ")))
    rows = table_with(text, "Site").rows
    assert rows[1] == ["DR", "0", "0", "0", "0", "no", "0", "✓"]
    assert "<summary>DR" not in text  # nothing to detail


def test_every_force_reason_is_attributed_to_its_sites() -> None:
    plan = seed_plan()
    gate = Finding(Severity.ERROR, "dns-array-wrong-address", "outlook-hq resolves to 10.9.9.9",
                   site="HQ", name="outlook-hq.contoso.local", source=Source.DNS)
    delete = ArrayDelete("DR", "outlook-dr.contoso.local", "outlook-dr")
    plan = with_force(
        replace(plan, changes=(*plan.changes, delete), findings=(gate,)), total_databases=12
    )
    assert [r.split(" ")[0] for r in plan.needs_force] == ["threshold", "deletes", "DNS"]
    text = render(plan)
    force = dict(zip(*(table_with(text, "Site").column(c) for c in ("Site", "Needs --force")),
                     strict=True))
    assert force == {
        "Branch": "yes: rebind threshold (org-wide)",
        "DR": "yes: deletes",
        "HQ": "yes: rebind threshold (org-wide), DNS gate",
    }
    top = first_screen(text)
    assert "(3 reason(s) under Safety decisions)" in top
    assert all(md(reason) in top for reason in plan.needs_force)
    dns = table_with(text, "DNS")
    assert dns.rows[0][0] == "BLOCKS APPLY (unless --force)"
    assert "**BLOCKS APPLY (unless --force)**" in text


def test_blocked_and_in_sync_verdicts() -> None:
    plan = seed_plan()
    blocking = Finding(Severity.ERROR, "server-missing", "CAS server X is unknown", site="HQ")
    blocked = replace(plan, changes=(), withheld=plan.changes, findings=(blocking,))
    text = render(blocked)
    assert "**Verdict: ⛔ No changes can run: 7 withheld by 1 blocking finding(s)" in text
    assert table_with(text, "Site").column("Blocking findings") == [
        "0 (3 withheld)", "1 (4 withheld)"
    ]
    in_sync = render(replace(plan, changes=()))
    assert "**Verdict: ✅ No changes. The live organisation matches the desired state.**" \
        in in_sync
    ready = render(plan)
    assert "**Verdict: ✅ ready to apply: no blocking findings, no `--force` needed**" in ready
    assert "- No `--force` needed" in ready


# --- hostile names ------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_md_shows_a_hostile_value_exactly_as_typed(name: str) -> None:
    paragraph = PARSER.parse("x " + md(name))[1]
    assert visible(paragraph).replace(ZWSP, "") == "x " + clean(name)
    # Only text: no emphasis, code, link, strikethrough, HTML or line break was started.
    assert {c.type for c in paragraph.children or ()} <= {"text", "text_special"}


def test_a_hostile_plan_keeps_every_table_and_shows_every_name_as_typed() -> None:
    plan = hostile_plan()
    text = render(plan)
    assert_tables_keep_their_shape(text)
    shown = [clean(n) for n in HOSTILE_NAMES]

    def seen(cells: list[str]) -> list[str]:
        return [c.replace(ZWSP, "") for c in cells]

    summary = table_with(text, "Site")
    assert sorted(seen(summary.column("Site"))) == sorted(shown)
    changes = [t for t in tables(text) if t.header == ["#", "Change", "Mailboxes"]]
    described = seen([row[1] for t in changes for row in t.rows])
    assert sorted(described) == sorted(
        f"rebind database {s}: old|cas -> outlook-hq.contoso.local ({10 + i} mailboxes)"
        for i, s in enumerate(shown)
    )
    findings = [t for t in tables(text) if t.header[:2] == ["Severity", "Rule"]]
    assert sorted(seen([r[3] for t in findings for r in t.rows])) == sorted(shown)
    assert {r[1] for t in findings for r in t.rows} == {"rule|x"}
    assert {r[2] for t in findings for r in t.rows} == {"hq.yaml:3:4"}  # no runner path
    dns = [t for t in tables(text) if t.header[0] == "DNS"]
    assert sorted(seen([r[2] for t in dns for r in t.rows])) == sorted(shown)
    assert "x|y &#36;a&#36; @" not in text and "(x\\|y &#36;a&#36; @" + ZWSP + "z)" in text


def test_a_hostile_plan_carries_no_html_markup_math_or_mentions() -> None:
    text = render(hostile_plan())
    assert html_tags(text) <= {"details", "/details", "summary", "/summary"}
    rendered = PARSER.render(text)
    tags = set(re.findall(r"<(/?[a-z0-9]+)", rendered))
    assert tags <= {
        "h3", "/h3", "h4", "/h4", "p", "/p", "strong", "/strong", "em", "/em", "code", "/code",
        "table", "/table", "thead", "/thead", "tbody", "/tbody", "tr", "/tr", "th", "/th",
        "td", "/td", "ul", "/ul", "li", "/li", "hr", "details", "/details", "summary",
        "/summary",
    }, tags
    assert "<s>" not in rendered and "<a " not in rendered and "<script" not in rendered
    assert "$" not in text  # GitHub renders $…$ as math and ignores \$
    seen = unescape(re.sub(r"<[^>]*>", "", rendered))  # where GitHub links mentions, issues
    assert "@team" in seen.replace(ZWSP, "") and not re.search(r"@\w|#\d", seen)
    assert not re.search(r"[\u202a-\u202e\u2066-\u2069\u200c-\u200f]", text)
    assert all(text[m.start() - 1] in "@#" for m in re.finditer(ZWSP, text))
    assert "\\\\u202eevil\\\\u202c" in text  # shown as the text renderer shows it
    assert "line1\\\\nline2\\\\r\\\\nline3\\\\ttab" in text
    assert "<summary>contoso" not in text and "contoso \\<b>" in text


def test_summary_html_is_escaped_as_html() -> None:
    assert html("a<b>&c \"$x\" @t #1\n") == (
        "a&lt;b&gt;&amp;c &quot;&#36;x&quot; @" + ZWSP + "t #" + ZWSP + "1\\n"
    )
    assert md("max_rebind_percent _x_ a_") == "max_rebind_percent \\_x\\_ a\\_"


def test_the_seed_plan_with_a_hostile_database_name() -> None:
    # (moved from test_render.py: the same hostile name, now checked through the parser)
    plan = make_plan(hostile=True)
    text = render(plan)
    assert_tables_keep_their_shape(text)
    assert html_tags(text) <= {"details", "/details", "summary", "/summary"}
    rows = [r for t in tables(text) if t.header[:2] == ["#", "Change"] for r in t.rows]
    [row] = [r for r in rows if "Evil" in r[1]]
    assert row[1].replace(ZWSP, "") == (
        f"rebind database {clean(HOSTILE)}: hq-cas02.contoso.local -> outlook-hq.contoso.local "
        "(5 mailboxes)"
    )
    assert "#1\\\\nline2 \\\\x1b\\[31mred" in text.replace(ZWSP, "") and "\x1b" not in text
    [cell] = re.findall(r"<td>(rebind database Evil.*?)</td>", PARSER.render(text), re.S)
    assert "<" not in cell  # all text: no tag, code, emphasis or link was started
    assert "@team" not in cell and " #1" not in cell  # no ping, no issue link
    assert "Evil\\|DB \\<script>alert(1)\\</script>" in text  # readable: backslashes only


def test_md_escapes_the_markdown_specials_and_nothing_else() -> None:
    assert md("a|b") == "a\\|b"
    assert md("<b>") == "\\<b>"
    assert md("x`y") == "x\\`y"
    assert md("one\r\ntwo\nthree") == "one\\\\r\\\\ntwo\\\\nthree"  # shown, one line
    assert md("Zürich-DB hq-cas01.contoso.local -> x (1.5)") == (
        "Zürich-DB hq-cas01.contoso.local -> x (1.5)"
    )
    assert md(None) == ""


# --- the size bound -----------------------------------------------------------------------


def big_plan(databases: int = 10_000) -> Plan:
    """The seed with ``databases`` databases in all, every extra one rebound in Branch, and
    a DNS gate and a delete, so every kind of ``--force`` reason is there."""
    inp = seed_input()
    for i in range(databases - len(inp.live.databases)):
        name = f"BR-DB-{i:05d}"
        db = model.DatabaseBinding(name, "br-cas01.contoso.local", server="MBX", mailbox_count=40)
        inp.live.databases[db.key] = db
        inp.bindings[db.key] = model.DatabaseBinding(name, "outlook-branch.contoso.local")
    plan = plan_of(diff_input(inp))
    gate = Finding(Severity.ERROR, "dns-array-nxdomain", "outlook-branch does not resolve",
                   site="Branch", name="outlook-branch.contoso.local", source=Source.DNS)
    delete = ArrayDelete("DR", "outlook-dr.contoso.local", "outlook-dr")
    plan = replace(plan, changes=(*plan.changes, delete), findings=(gate,),
                   dns_checked=("Branch", "DR", "HQ"))
    return with_force(plan, databases)


def test_ten_thousand_databases_stay_under_max_bytes_with_verdict_summary_and_reasons() -> None:
    plan = big_plan()
    assert len(plan.changes) > 10_000 and len(plan.needs_force) == 3
    full = render(plan, max_bytes=10**9)
    assert len(full.encode()) > DEFAULT_MAX_BYTES  # the full plan does not fit in a comment
    for limit, link in ((DEFAULT_MAX_BYTES, "https://ci.example/run/1/plan.json"),
                        (12_000, "plan.json")):
        text = render(plan, max_bytes=limit, full_plan=link)
        assert len(text.encode()) <= limit
        top = first_screen(text)
        assert "**Verdict: ⚠️ apply needs `--force` (3 reason(s)" in top
        assert [r[0] for r in table_with(top, "Site").rows] == ["Branch", "DR", "HQ"]
        assert all(f"- **needs `--force`**: {md(r)}" in top for r in plan.needs_force)
        assert "details below are shortened. Full plan: " in top
        assert (f"<{link}>" if link.startswith("https") else link) in top
        assert_tables_keep_their_shape(text)
    text = render(plan)
    branch = text.split("<summary>Branch: ")[1].split("</details>")[0]
    rebound = sum(1 for c in plan.changes if c.site == "Branch")
    assert f"… and {rebound - 200:,} more changes (in the full plan)." in branch
    assert len(table_with(branch, "Change").rows) == 200  # as many as fit, in steps
    hq = text.split("<summary>HQ: ")[1].split("</details>")[0]
    assert len(table_with(hq, "Change").rows) == 4  # small sites keep their details


def test_a_limit_below_the_first_screen_leaves_every_detail_out_but_keeps_it() -> None:
    plan = big_plan(2_000)
    text = render(plan, max_bytes=1_000)
    assert len(text.encode()) > 1_000  # the first screen is never cut
    assert "The details of 3 part(s) are left out to keep this comment short." in text
    assert "<details>" not in text
    assert table_with(text, "Site").column("Site") == ["Branch", "DR", "HQ"]
    assert all(f"- **needs `--force`**: {md(r)}" in text for r in plan.needs_force)
    assert text.rstrip().endswith("live fingerprint sha256:aaaaaaaaaaaa.")
    counts = render(plan, max_bytes=3_000)  # room for each site's counts, not its changes
    branch = counts.split("<summary>Branch: ")[1].split("</details>")[0]
    assert "Left out to keep this comment short: 1,997 change(s), 1 DNS finding(s)." in branch
    assert len(counts.encode()) <= 3_000


def test_the_full_plan_link_is_said_when_details_are_left_out() -> None:
    plan = big_plan(2_000)
    text = render(plan, max_bytes=20_000)
    assert "Full plan: not saved by this run (`casdesired plan --out FILE` saves it)" in text
    hostile_link = render(plan, max_bytes=20_000, full_plan="x <b>|@y")
    assert "Full plan: x \\<b>\\|@" + ZWSP + "y" in hostile_link
