"""agent.ps1 and the bootstrap on a real PowerShell syntax tree (tree-sitter-powershell, PyPI;
https://github.com/airbus-cert/tree-sitter-powershell): both parse without an ERROR or MISSING
node, so the text is PowerShell a grammar that follows the language reads.
"""

from __future__ import annotations

import pytest

from casdesired.agent import protocol
from casdesired.agent.script import agent_script

from .ps_tree import broken_nodes, line, parse, text

SCRIPTS = {"agent.ps1": agent_script(), "bootstrap": protocol.BOOTSTRAP_SCRIPT}

@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_scripts_parse_without_error_or_missing_nodes(name: str) -> None:
    broken = broken_nodes(parse(SCRIPTS[name]))
    assert broken == [], [f"line {line(n)}: {n.type} {text(n)[:60]!r}" for n in broken]


def test_the_parse_check_finds_what_the_grammar_cannot_read() -> None:
    # The old bootstrap passed a member-access chain unparenthesised as a command argument.
    old_tail = "& ([scriptblock]::Create($s.Substring(0,$i))) $s.Substring($i+21).Trim()"
    assert broken_nodes(parse(old_tail))
    assert broken_nodes(parse("if ($a) { Get-X"))  # a missing '}'
    assert broken_nodes(parse(old_tail.replace(" $s.Sub", " ($s.Sub") + ")")) == []
