"""A check on a PowerShell syntax tree: what it looks for, since when that exists, and where
a script uses it (``Finding``). The checks themselves are in ``ps2_language`` and
``ps2_dotnet``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from tree_sitter import Node

from .ps_tree import (
    Command,
    Variables,
    commands,
    line,
    member,
    parse,
    text,
    type_literal_name,
    walk,
    word_value,
)


class Script:
    """A parsed script and the facts every check reads."""

    def __init__(self, source: str) -> None:
        self.root = parse(source)
        self.commands = list(commands(self.root))
        self.variables = Variables.of(self.root)

    def nodes(self, *types: str) -> Iterator[Node]:
        return (n for n in walk(self.root) if n.type in types)

    def command_at(self, node: Node) -> Command | None:
        return next((c for c in self.commands if c.node == node), None)

    def static_members(self) -> Iterator[tuple[Node, str, str]]:
        """Each ``[Type]::Member`` with the type's resolved name and the member lowercased."""
        for node in self.nodes("member_access", "invokation_expression"):
            found = member(node)
            if found is None or found[1] != "::":
                continue
            resolved = type_literal_name(found[0])
            if resolved is not None:
                yield node, resolved[0], found[2]

    def instance_members(self) -> Iterator[tuple[Node, Node, str]]:
        """Each ``target.Member`` (called or not): the node, the target and the member name."""
        for node in self.nodes("member_access", "invokation_expression"):
            found = member(node)
            if found is not None and found[1] == ".":
                yield node, found[0], found[2]

    def words(self) -> Iterator[tuple[Node, str]]:
        """Command names, bare-word arguments and quoted strings, lowercased: everywhere a
        command's name can be written (``Get-Command ConvertTo-Json``, ``& 'iex'``)."""
        for command in self.commands:
            if command.name is not None:
                yield command.node, command.name.lower()
        for node in self.nodes("generic_token", "string_literal", "expandable_string_literal"):
            value = word_value(node)
            if value is not None:
                yield node, value.strip().lower()


@dataclass(frozen=True)
class Finding:
    """Where a script uses what a check looks for: ``line 3: -in / -notin operators
    (PowerShell 3.0): -in``."""

    check: str
    since: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.check} ({self.since}): {self.code}"


@dataclass(frozen=True)
class Check:
    """One construct to look for: its name, since when it exists, and how to find it."""

    name: str
    since: str
    find: Callable[[Script], Iterable[Node]]

    def findings(self, script: Script) -> list[Finding]:
        out: dict[tuple[int, int], Finding] = {}
        for node in self.find(script):
            first_line = (text(node).splitlines() or [""])[0]
            found = Finding(self.name, self.since, line(node), first_line[:100])
            out.setdefault(node.byte_range, found)
        return list(out.values())


def check(name: str, since: str) -> Callable[[Callable[[Script], Iterable[Node]]], Check]:
    """Decorator: the function becomes a :class:`Check` (its docstring says what it finds)."""

    def make(find: Callable[[Script], Iterable[Node]]) -> Check:
        return Check(name, since, find)

    return make
