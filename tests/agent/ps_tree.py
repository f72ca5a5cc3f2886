"""Reading a PowerShell syntax tree: tree-sitter-powershell, plus the few facts tests need.

The grammar (https://github.com/airbus-cert/tree-sitter-powershell, on PyPI as
``tree-sitter-powershell``) parses PowerShell up to 7.x, so it also accepts what 2.0 lacks; the
checks in ``ps2_language`` and ``ps2_dotnet`` look for those constructs in the tree. This
module holds what they read: ERROR/MISSING nodes, commands and their elements, type names,
member access, and what the tree proves about a variable (every value assigned to it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

LANGUAGE = Language(tree_sitter_powershell.language())

STRING_TYPES = frozenset(
    {
        "string_literal",
        "expandable_string_literal",
        "verbatim_string_characters",
        "expandable_here_string_literal",
        "verbatim_here_string_characters",
    }
)

# How PowerShell 2.0 resolves the short names the checks meet (the accelerators, plus a few
# 3.0+ ones so that their full names reach the namespace checks). Any other name without a
# namespace is looked up with "System." in front, as PowerShell does.
ACCELERATORS = {
    "array": "system.array",
    "bigint": "system.numerics.biginteger",
    "bool": "system.boolean",
    "byte": "system.byte",
    "char": "system.char",
    "cimclass": "microsoft.management.infrastructure.cimclass",
    "cimconverter": "microsoft.management.infrastructure.cimconverter",
    "ciminstance": "microsoft.management.infrastructure.ciminstance",
    "cimsession": "microsoft.management.infrastructure.cimsession",
    "cimtype": "microsoft.management.infrastructure.cimtype",
    "double": "system.double",
    "float": "system.single",
    "hashtable": "system.collections.hashtable",
    "int": "system.int32",
    "long": "system.int64",
    "nullstring": "system.management.automation.language.nullstring",
    "psobject": "system.management.automation.psobject",
    "regex": "system.text.regularexpressions.regex",
    "scriptblock": "system.management.automation.scriptblock",
    "single": "system.single",
    "switch": "system.management.automation.switchparameter",
    "xml": "system.xml.xmldocument",
}


def parse(text: str) -> Node:
    """The root node of ``text``'s syntax tree."""
    return Parser(LANGUAGE).parse(text.encode("utf-8")).root_node


def walk(node: Node) -> Iterator[Node]:
    """Every node under ``node`` (itself included), depth first, in source order."""
    yield node
    for child in node.children:
        yield from walk(child)


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8")


def line(node: Node) -> int:
    return node.start_point.row + 1


def broken_nodes(root: Node) -> list[Node]:
    """Every ERROR node (text the grammar could not parse) and MISSING node (a token it made up)."""
    return [n for n in walk(root) if n.is_error or n.is_missing]


def core(node: Node) -> Node:
    """``node`` without the single-child wrappers the grammar nests expressions in.

    ``$x`` alone is pipeline > pipeline_chain > logical_expression > ... > variable; this returns
    the variable. A parenthesised expression is kept: its parentheses mean something.
    """
    while node.child_count == 1 and node.children[0].is_named:
        node = node.children[0]
    return node


def string_value(node: Node) -> str | None:
    """The characters of a quoted string literal (without quotes), or None for anything else."""
    node = core(node)
    if node.type not in STRING_TYPES:
        return None
    raw = text(node)
    for quote in ('@"', "@'"):
        if raw.startswith(quote):
            return raw[2:-2].strip("\r\n")
    return raw[1:-1]


def word_value(node: Node) -> str | None:
    """A bare word (``Stop``) or a quoted string's characters; None for any other expression."""
    node = core(node)
    if node.type in ("generic_token", "command_name", "simple_name"):
        return text(node)
    return string_value(node)


def variable_name(node: Node) -> str | None:
    """``$script:Name`` -> ``name``: the name a variable node refers to, lowercased, no scope."""
    node = core(node)
    if node.type not in ("variable", "braced_variable"):
        return None
    name = text(node).lstrip("$@").strip("{}").lower()
    for scope in ("script:", "global:", "local:", "private:"):
        if name.startswith(scope):
            return name[len(scope) :]
    return name


@dataclass(frozen=True)
class Command:
    """A command as written: its name (None for ``& $expression``) and its elements."""

    node: Node
    name: str | None
    elements: tuple[Node, ...]

    def parameters(self) -> Iterator[tuple[str, Node | None]]:
        """Each ``-Name`` (lowercased, without ``-`` or ``:``) with the element after it, if any.

        The element after a parameter is its value when the parameter takes one; the tree
        cannot tell a switch from a parameter with a value, so the checks that use this only
        ask about parameters that always take one.
        """
        for i, element in enumerate(self.elements):
            if element.type == "command_parameter":
                name = text(element).lstrip("-").rstrip(":").lower()
                after = self.elements[i + 1] if i + 1 < len(self.elements) else None
                if after is not None and after.type == "command_parameter":
                    after = None
                yield name, after

    def positional(self) -> list[Node]:
        """The elements not preceded by a parameter (a parameter's value is not positional)."""
        out: list[Node] = []
        previous: Node | None = None
        for element in self.elements:
            if element.type not in ("command_parameter", "redirection") and (
                previous is None or previous.type != "command_parameter"
            ):
                out.append(element)
            previous = element
        return out


def commands(root: Node) -> Iterator[Command]:
    for node in walk(root):
        if node.type != "command":
            continue
        name_node = node.child_by_field_name("command_name")
        named = name_node is not None and name_node.type == "command_name"
        name = text(name_node) if name_node is not None and named else None
        elements_node = node.child_by_field_name("command_elements")
        elements = tuple(
            c
            for c in (elements_node.children if elements_node is not None else [])
            if c.type != "command_argument_sep"
        )
        yield Command(node, name, elements)


def type_names(node: Node) -> Iterator[Node]:
    """Every complete type name under ``node``: ``System.IO.File`` once, not ``System.IO`` too."""
    for n in walk(node):
        if n.type == "type_name" and (n.parent is None or n.parent.type != "type_name"):
            yield n


def resolve_type(written: str) -> str:
    """A type name as PowerShell 2.0 resolves it, lowercased and without generic arguments.

    ``[string]`` -> ``system.string``; ``[IO.File]`` -> ``system.io.file``;
    ``'System.Collections.Generic.List[string]'`` -> ``system.collections.generic.list``.
    """
    name = written.strip().lower().split("[", 1)[0].strip()
    if name in ACCELERATORS:
        return ACCELERATORS[name]
    if not name.startswith(("system.", "microsoft.")):
        return "system." + name
    return name


def type_literal_name(node: Node) -> tuple[str, bool] | None:
    """A type literal's resolved name and whether it is an array type (``[string[]]``)."""
    node = core(node)
    if node.type != "type_literal":
        return None
    spec = next((c for c in node.children if c.type == "type_spec"), None)
    if spec is None or not spec.named_children:
        return None
    first = spec.named_children[0]
    is_array = first.type == "array_type_name"
    base = first if first.type == "type_name" else first.named_children[0]
    return resolve_type(text(base)), is_array


def new_object_written(command: Command) -> str | None:
    """The type name ``New-Object`` is given, as written: -TypeName or the first positional
    argument (``'System.Collections.Generic.List[string]'``)."""
    if command.name is None or command.name.lower() != "new-object":
        return None
    for name, value in command.parameters():
        if "typename".startswith(name) and value is not None:
            return word_value(value)
    positional = command.positional()
    return word_value(positional[0]) if positional else None


def new_object_type(command: Command) -> str | None:
    """The resolved type ``New-Object`` creates (see :func:`resolve_type`)."""
    written = new_object_written(command)
    return resolve_type(written) if written else None


@dataclass
class Variables:
    """What each assignment to a variable name puts in it, as far as the tree shows.

    A variable name (any scope, any case) maps to one entry per place that sets it: the value
    node of ``$x = ...``, the type of ``[T]$x = ...`` or of a typed parameter ``[T]$x``, or
    nothing known (a ``foreach`` variable, an untyped parameter). Compound assignments
    (``+=``), ``-OutVariable``, ``Set-Variable`` and scope rules are not followed.
    """

    values: dict[str, list[Node | None]] = field(default_factory=lambda: defaultdict(list))
    declared: dict[str, list[tuple[str, bool] | None]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @classmethod
    def of(cls, root: Node) -> Variables:
        found = cls()
        for node in walk(root):
            if node.type == "assignment_expression":
                found._assignment(node)
            elif node.type == "foreach_statement":
                loop_variable = next((c for c in node.children if c.type == "variable"), None)
                name = variable_name(loop_variable) if loop_variable is not None else None
                if name:
                    found.values[name].append(None)
            elif node.type == "script_parameter":
                found._parameter(node)
        return found

    def _assignment(self, node: Node) -> None:
        operator = next((c for c in node.children if c.type == "assignement_operator"), None)
        if operator is None or text(operator) != "=":
            return
        left = core(node.children[0])
        value = node.child_by_field_name("value")
        typed = None
        if left.type in ("expression_with_unary_operator", "cast_expression"):
            literal = next((c for c in left.children if c.type == "type_literal"), None)
            target = next((c for c in left.children if c.type != "type_literal"), None)
            typed = type_literal_name(literal) if literal is not None else None
            left = core(target) if target is not None else left
        name = variable_name(left)
        if name is None:
            return
        self.values[name].append(value)
        if typed is not None:
            self.declared[name].append(typed)

    def _parameter(self, node: Node) -> None:
        variable = next((c for c in node.children if c.type == "variable"), None)
        name = variable_name(variable) if variable is not None else None
        if name is None:
            return
        # [T]$x is an attribute node holding a type literal; [Parameter(...)] holds a name.
        attributes = next((c for c in node.children if c.type == "attribute_list"), None)
        literal = next(
            (
                c
                for a in (attributes.children if attributes is not None else [])
                for c in a.children
                if a.type == "attribute" and c.type == "type_literal"
            ),
            None,
        )
        typed = type_literal_name(literal) if literal is not None else None
        if typed is None:
            self.values[name].append(None)
        else:
            self.declared[name].append(typed)


def member(node: Node) -> tuple[Node, str, str] | None:
    """For ``target.member`` or ``target::member``, called or not: the target node, the
    operator (``.`` or ``::``) and the member's name lowercased. None for anything else."""
    if node.type not in ("member_access", "invokation_expression") or not node.children:
        return None
    operator = next((c for c in node.children if c.type in (".", "::")), None)
    name = next((c for c in node.children if c.type == "member_name"), None)
    if operator is None or name is None:
        return None
    return node.children[0], operator.type, text(name).lower()


def arguments(node: Node) -> list[Node]:
    """The arguments of a method call ``x.M(a, b)``."""
    argument_list = next((c for c in node.children if c.type == "argument_list"), None)
    if argument_list is None:
        return []
    expressions = argument_list.child_by_field_name("argument_expression_list")
    if expressions is None:
        return []
    return [c for c in expressions.children if c.type == "argument_expression"]

