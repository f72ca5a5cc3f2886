"""PowerShell 2.0's .NET 3.5 and collections on the syntax tree: type accelerators, types and
members that came with later PowerShell or .NET 4+, and member enumeration (3.0).

The receiver of a member is known where the tree shows it (a type literal, ``New-Object``, a
cast, a variable every assignment of which shows the same). The sources of the version facts
and the limits of what the tree proves are in the docstring of ``test_agent_syntax``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from .ps_check import Script, check
from .ps_tree import (
    arguments,
    core,
    member,
    new_object_type,
    new_object_written,
    resolve_type,
    string_value,
    text,
    type_literal_name,
    type_names,
    variable_name,
)

# --- types ---------------------------------------------------------------------------------

NEW_ACCELERATORS = {
    "ordered": "3.0",
    "pscustomobject": "3.0",
    "ciminstance": "3.0",
    "cimclass": "3.0",
    "cimtype": "3.0",
    "cimconverter": "3.0",
    "cimsession": "3.0",
    "nullstring": "3.0",
    "bigint": "3.0 (.NET 4)",
    "argumentcompleter": "5.0",
    "dscresource": "5.0",
    "dscproperty": "5.0",
    "dsclocalconfigurationmanager": "5.0",
    "semver": "6.0",
}


@check("type accelerators added after 2.0", "PowerShell 3.0-6.0")
def new_accelerators(script: Script) -> Iterator[Node]:
    for node in script.nodes("type_literal", "attribute_name"):
        if any(text(name).lower() in NEW_ACCELERATORS for name in type_names(node)):
            yield node


NEWER_TYPES = {
    "system.threading.tasks": ".NET 4",
    "system.collections.concurrent": ".NET 4",
    "system.numerics": ".NET 4",
    "system.dynamic": ".NET 4",
    "system.io.memorymappedfiles": ".NET 4",
    "system.runtime.caching": ".NET 4",
    "system.lazy": ".NET 4",
    "system.tuple": ".NET 4",
    "system.aggregateexception": ".NET 4",
    "system.iobservable": ".NET 4",
    "system.iobserver": ".NET 4",
    "system.collections.generic.sortedset": ".NET 4",
    "system.threading.cancellationtoken": ".NET 4",
    "system.threading.cancellationtokensource": ".NET 4",
    "system.threading.semaphoreslim": ".NET 4",
    "system.threading.manualreseteventslim": ".NET 4",
    "system.threading.countdownevent": ".NET 4",
    "system.threading.barrier": ".NET 4",
    "system.threading.spinlock": ".NET 4",
    "system.net.http": ".NET 4.5",
    "system.io.compression.zipfile": ".NET 4.5",
    "system.io.compression.ziparchive": ".NET 4.5",
    "microsoft.management.infrastructure": "PowerShell 3.0 (CIM)",
    "system.management.automation.language": "PowerShell 3.0 (the AST API)",
}


@check(".NET 4+ types and namespaces", ".NET 4 / 4.5, PowerShell 3.0")
def newer_types(script: Script) -> Iterator[Node]:
    """In type literals, attributes, generic arguments and New-Object's type name."""
    written: list[tuple[Node, str]] = [
        (node, resolve_type(text(name)))
        for node in script.nodes("type_literal", "attribute_name")
        for name in type_names(node)
    ]
    for command in script.commands:
        created = new_object_written(command)
        for name in re.findall(r"[A-Za-z_][\w.]*", created or ""):
            written.append((command.node, resolve_type(name)))
    for node, resolved in written:
        if any(resolved == t or resolved.startswith(t + ".") for t in NEWER_TYPES):
            yield node


# --- .NET members --------------------------------------------------------------------------

NEWER_STATIC_MEMBERS = {
    "system.string": {"isnullorwhitespace"},
    "system.enum": {"tryparse"},
    "system.guid": {"tryparse", "tryparseexact", "parseexact"},
    "system.timespan": {"tryparseexact", "parseexact"},
    "system.environment": {"is64bitoperatingsystem", "is64bitprocess"},
    "system.io.file": {"readlines", "appendalllines"},
    "system.io.directory": {"enumeratefiles", "enumeratedirectories",
                            "enumeratefilesystementries"},
    "system.threading.thread": {"yield"},
}


@check(".NET 4+ static members", ".NET 4")
def newer_static_members(script: Script) -> Iterator[Node]:
    """Listed members, Path.Combine with more than two parts, Monitor.Enter(object, ref bool)."""
    for node, type_name, name in script.static_members():
        count = len(arguments(node))
        if (
            name in NEWER_STATIC_MEMBERS.get(type_name, set())
            or ((type_name, name) == ("system.io.path", "combine") and count > 2)
            or ((type_name, name) == ("system.threading.monitor", "enter") and count == 2)
        ):
            yield node


@check("String.Join overloads of .NET 4", ".NET 4")
def string_join(script: Script) -> Iterator[Node]:
    """``[string]::Join(sep, values)`` binds on .NET 4 to Join(String, IEnumerable<String>) or
    Join(String, params Object[]), which .NET 3.5 lacks; only a provable array (or ``-join``)
    means the same on both. Join(String, String[], Int32, Int32) is .NET 2.0."""
    for node, type_name, name in script.static_members():
        if (type_name, name) != ("system.string", "join"):
            continue
        given = arguments(node)
        if len(given) == 4 and not any(string_value(a) is not None for a in given[2:]):
            continue
        if len(given) != 2 or collection_kinds(script, given[1]) != {"array"}:
            yield node


STREAMS = (
    "system.io.stream", "system.io.memorystream", "system.io.filestream",
    "system.io.bufferedstream", "system.io.compression.gzipstream",
    "system.io.compression.deflatestream", "system.net.sockets.networkstream",
    "system.security.cryptography.cryptostream",
)
NEWER_INSTANCE_METHODS = {
    "system.text.stringbuilder": {"clear"},
    "system.diagnostics.stopwatch": {"restart"},
    **{s: {"copyto", "copytoasync", "readasync", "writeasync", "flushasync"} for s in STREAMS},
}
FACTORIES = {
    ("system.diagnostics.stopwatch", "startnew"): "system.diagnostics.stopwatch",
    **{("system.io.file", m): "system.io.filestream"
       for m in ("open", "openread", "openwrite", "create")},
}


def type_of(script: Script, node: Node, seen: frozenset[str] = frozenset()) -> str | None:
    """The .NET type ``node`` certainly has, where the tree shows it; else None."""
    node = core(node)
    if node.type == "parenthesized_expression" and node.named_children:
        return type_of(script, node.named_children[0], seen)
    if node.type == "cast_expression":
        literal = type_literal_name(node.children[0])
        return literal[0] if literal is not None and not literal[1] else None
    command = script.command_at(node)
    if command is not None:
        return new_object_type(command)
    found = member(node)
    if found is not None and found[1] == "::":
        literal = type_literal_name(found[0])
        return FACTORIES.get((literal[0], found[2])) if literal is not None else None
    name = variable_name(node)
    if name is None or name in seen:
        return None
    types = {
        type_of(script, v, seen | {name}) if v is not None else None
        for v in script.variables.values.get(name, [])
    }
    types |= {
        d[0] if d is not None and not d[1] else None
        for d in script.variables.declared.get(name, [])
    }
    return types.pop() if len(types) == 1 else None


@check(".NET 4+ instance methods", ".NET 4")
def newer_instance_methods(script: Script) -> Iterator[Node]:
    """On a receiver of known type; HasFlag (Enum's, no 3.5 type has one) on any receiver."""
    for node, target, name in script.instance_members():
        if node.type != "invokation_expression":
            continue
        if name == "hasflag" or name in NEWER_INSTANCE_METHODS.get(
            type_of(script, target) or "", set()
        ):
            yield node


# --- member enumeration --------------------------------------------------------------------

LIST_TYPES = {
    "system.collections.arraylist": "arraylist",
    "system.collections.generic.list": "list",
}
_OBJECT = {"tostring", "gettype", "equals", "gethashcode", "psobject", "psbase", "psadapted",
           "psextended", "pstypenames"}
_ICOLLECTION = {"count", "syncroot", "issynchronized", "copyto", "getenumerator"}
COLLECTION_MEMBERS = {
    # System.Array, and what PowerShell 2.0 adds to arrays (Count, Get, Set, Address).
    "array": _OBJECT | _ICOLLECTION | {
        "length", "longlength", "rank", "isreadonly", "isfixedsize", "clone", "getlength",
        "getlonglength", "getlowerbound", "getupperbound", "getvalue", "setvalue", "initialize",
        "get", "set", "address",
    },
    "arraylist": _OBJECT | _ICOLLECTION | {
        "add", "addrange", "binarysearch", "capacity", "clear", "clone", "contains", "getrange",
        "indexof", "insert", "insertrange", "isfixedsize", "isreadonly", "item", "lastindexof",
        "remove", "removeat", "removerange", "reverse", "setrange", "sort", "toarray",
        "trimtosize",
    },
    "list": _OBJECT | _ICOLLECTION | {
        "add", "addrange", "asreadonly", "binarysearch", "capacity", "clear", "contains",
        "convertall", "exists", "find", "findall", "findindex", "findlast", "findlastindex",
        "foreach", "getrange", "indexof", "insert", "insertrange", "item", "lastindexof",
        "remove", "removeall", "removeat", "removerange", "reverse", "sort", "toarray",
        "trimexcess", "trueforall",
    },
}


def _declared_kind(declared: tuple[str, bool] | None) -> set[str] | None:
    if declared is None:
        return None
    kind = "array" if declared[1] else LIST_TYPES.get(declared[0])
    return {kind} if kind else None


def collection_kinds(
    script: Script, node: Node, seen: frozenset[str] = frozenset()
) -> set[str] | None:
    """Which collections ``node`` certainly is ({"array"}, {"arraylist"}, ...), or None when
    the tree does not prove it is one."""
    node = core(node)
    if node.type == "parenthesized_expression" and node.named_children:
        return collection_kinds(script, node.named_children[0], seen)
    if (
        node.type == "array_expression"
        or (node.type == "array_literal_expression" and any(c.type == "," for c in node.children))
        or (node.type == "expression_with_unary_operator" and text(node.children[0]) == ",")
    ):
        return {"array"}
    if node.type == "cast_expression":
        return _declared_kind(type_literal_name(node.children[0]))
    command = script.command_at(node)
    if command is not None:
        kind = LIST_TYPES.get(new_object_type(command) or "")
        return {kind} if kind else None
    name = variable_name(node)
    if name is None or name in seen:
        return None
    facts = [
        collection_kinds(script, v, seen | {name}) if v is not None else None
        for v in script.variables.values.get(name, [])
    ]
    facts += [_declared_kind(d) for d in script.variables.declared.get(name, [])]
    if not facts or any(f is None for f in facts):
        return None
    return set().union(*(f for f in facts if f is not None))


@check("member enumeration on a collection", "PowerShell 3.0")
def member_enumeration(script: Script) -> Iterator[Node]:
    """``@(...).Name`` or ``$list.Name`` where Name is not the collection's own member: 3.0
    returns each element's Name, 2.0 returns $null (or fails, for a method)."""
    for node, target, name in script.instance_members():
        kinds = collection_kinds(script, target)
        if kinds and any(name not in COLLECTION_MEMBERS[k] for k in kinds):
            yield node


SINGLE_OBJECT_COMMANDS = {"get-date", "new-object", "join-path", "get-location", "get-host",
                          "get-culture", "get-uiculture", "convertto-securestring"}


NESTED = {"script_block", "parenthesized_expression", "sub_expression", "array_expression",
          "hash_literal_expression", "argument_list"}


def _runs_in(node: Node, parentheses: Node) -> bool:
    """Whether command ``node`` is a stage of the pipeline directly inside ``parentheses``
    (not of one nested deeper, in a script block or another sub-expression)."""
    parent = node.parent
    while parent is not None and parent != parentheses:
        if parent.type in NESTED:
            return False
        parent = parent.parent
    return parent == parentheses


@check("member access on a command's output", "PowerShell 3.0")
def command_output_member(script: Script) -> Iterator[Node]:
    """``(Get-ChildItem).FullName`` is 3.0's idiom; in 2.0 it works only when the command
    returns exactly one object, so only commands that always return one are allowed."""
    for node, target, _ in script.instance_members():
        target = core(target)
        if target.type != "parenthesized_expression" or not target.named_children:
            continue
        found = [c for c in script.commands if _runs_in(c.node, target)]
        if found and not (
            len(found) == 1 and (found[0].name or "").lower() in SINGLE_OBJECT_COMMANDS
        ):
            yield node


DOTNET = (
    new_accelerators, newer_types, newer_static_members, string_join, newer_instance_methods,
    member_enumeration, command_output_member,
)
