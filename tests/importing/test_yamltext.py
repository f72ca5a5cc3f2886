"""Every name import writes reads back byte for byte, through casdesired's own YAML reader.

Property-based (hypothesis, derandomized): names drawn from every Unicode character but lone
surrogates (which no UTF-8 file can hold) and from the words and characters YAML gives a
meaning to, written as a site name, database names, flow-list items, flow-map values and inside
comments; the file is read by ``casdesired.desired.loader.load_desired`` (the reader every
command uses) and must give exactly the text back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from casdesired.desired.loader import load_desired
from casdesired.desired.yamlsource import read_yaml
from casdesired.importing.documents import (
    ArrayEntry,
    LoadBalancerEntry,
    Note,
    Section,
    ServerEntry,
    SiteDocument,
)
from casdesired.importing.render import render_site
from casdesired.importing.yamltext import comment, flow_list, scalar

YAML_WORDS = [
    "no", "No", "NO", "yes", "on", "off", "y", "n", "true", "False", "null", "Null", "~", "",
    "1e3", "1E3", "-1", "+1", "0x1F", "0o17", "0b101", "1_000", "1:20", ".5", "5.", ".inf",
    "-.Inf", ".nan", "NaN", "2001-12-14", "=", "<<", "---", "...", "- a", "? a", ": a", "a: b",
    "a #b", "#a", "&a", "*a", "!a", "|", ">", "%a", "@a", "`a", "'", '"', "[a]", "{a}", "a,b",
    " a", "a ", "\ta", "a\n", "\n", "\r", "\x85", "\u2028", "\u2029", "\ufeff", "\x00", "\x7f",
]
"""What YAML reads as something else, or breaks a line at, when written carelessly."""

NAMES = st.one_of(
    st.sampled_from(YAML_WORDS),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=24),
    st.text(st.sampled_from(list(" #:-'\"\\,[]{}*?!&|>%@`\t\n\x85\u2028ÅЖ日$()a1")), max_size=12),
)
READER_RULES = {"yaml", "yaml-tab", "yaml-tag", "yaml-alias", "encoding", "bad-number",
                "not-casdesired", "yaml-duplicate-key"}


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("HQ-DB01", "HQ-DB01"),
        ("no", "'no'"),
        ("on", "'on'"),
        ("null", "'null'"),
        ("1e3", "'1e3'"),
        (" lead", "' lead'"),
        ("trail ", "'trail '"),
        ("#hash", "'#hash'"),
        ("$dollar", "$dollar"),
        ("it's", "it's"),
        ("a\nb", '"a\\nb"'),
        ("tab\there", '"tab\\there"'),
        ("Ångström", "Ångström"),
        ("https://autodiscover.contoso.local/a.xml", "https://autodiscover.contoso.local/a.xml"),
    ],
)
def test_a_value_is_quoted_only_when_yaml_would_read_it_otherwise(value: str, written: str) -> None:
    assert scalar(value) == written
    assert yaml.safe_load(f"k: {written}\n") == {"k": value}


def test_in_a_flow_list_flow_indicators_are_quoted() -> None:
    assert flow_list(["HQ", "a,b", "x]", "https://a.b/c"]) == "[HQ, 'a,b', 'x]', 'https://a.b/c']"


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    site=NAMES,
    names=st.lists(NAMES, max_size=6),
    scope=st.lists(NAMES, max_size=3),
    member=NAMES,
    noted=NAMES,
)
def test_any_name_reads_back_exactly_through_the_loader(
    site: str, names: list[str], scope: list[str], member: str, noted: str
) -> None:
    doc = SiteDocument(
        site=site,
        servers=[ServerEntry(member, "cas01.contoso.local", None, tuple(scope))],
        array=ArrayEntry(
            name=member,
            fqdn="outlook.contoso.local",
            load_balancer=LoadBalancerEntry(
                "nlb", "10.0.0.1", "cas01.contoso.local", member, (member, *scope)
            ),
            todo=f"a TODO about {scalar(noted)}",
        ),
        names=names,
        patterns=[f"{n}*" for n in names[:2]],
        server_bindings=[(n, member) for n in names[:3]],
        notes=[Note(section, f"database {scalar(noted)} is left out.", "test", noted)
               for section in Section],
    )
    text = render_site(doc, "../schemas/site.schema.json")  # itself checks the round trip
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "organisation.yaml").write_text(
            "# yaml-language-server: $schema=x\ncasdesired: 1\nkind: organisation\nname: t\n"
            "connection: {endpoint: lab, transport: ntlm}\n",
            encoding="utf-8",
        )
        path = directory / "site.yaml"
        path.write_bytes(text.encode("utf-8"))
        document, problems = read_yaml(path)
        assert problems == [] and document is not None
        assert document.data == doc.data()
        desired = load_desired(directory)
        assert not [d for d in desired.diagnostics if d.rule in READER_RULES]


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=4))
def test_a_comment_naming_anything_stays_a_comment(names: list[str]) -> None:
    text = " and ".join(f"database {scalar(n)} is left out" for n in names) + " " + "word " * 30
    lines = comment(text, indent=2)
    assert all(line.startswith("  # ") or line == "  #" for line in lines)
    assert yaml.safe_load("k: 1\n" + "\n".join(lines) + "\n") == {"k": 1}
