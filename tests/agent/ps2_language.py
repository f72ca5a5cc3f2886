"""PowerShell 2.0's language on the syntax tree: commands, parameters, variables, operators,
statements and attributes that came later, and the ways of turning data into code.

Each :class:`~.ps_check.Check` finds nodes; the sources of the version facts and the limits of
what the tree proves are in the docstring of ``test_agent_syntax``.
"""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from .ps_check import Script, check
from .ps_tree import core, text, variable_name, word_value

# --- commands and parameters ---------------------------------------------------------------

NEW_COMMANDS = {
    "convertto-json": "3.0",
    "convertfrom-json": "3.0",
    "invoke-restmethod": "3.0",
    "irm": "3.0",
    "invoke-webrequest": "3.0",
    "iwr": "3.0",
    "unblock-file": "3.0",
    "update-help": "3.0",
    "save-help": "3.0",
    "show-command": "3.0",
    "get-filehash": "4.0",
    "new-guid": "5.0",
    "new-temporaryfile": "5.0",
    "compress-archive": "5.0",
    "expand-archive": "5.0",
    "get-clipboard": "5.0",
    "set-clipboard": "5.0",
    "format-hex": "5.0",
    "write-information": "5.0",
    "convertfrom-string": "5.0",
    "import-powershelldatafile": "5.0",
}


@check("commands added after 2.0", "PowerShell 3.0-5.0")
def new_commands(script: Script) -> Iterator[Node]:
    """A listed command, or any Verb-Cim* (the CIM cmdlets), by name or quoted."""
    for node, word in script.words():
        verb, _, noun = word.partition("-")
        if word in NEW_COMMANDS or (verb.isalpha() and noun.startswith("cim")):
            yield node


ANY_COMMAND_PARAMETERS = {
    "raw": "3.0 (no 2.0 cmdlet has -Raw)",
    "pipelinevariable": "4.0",
    "pv": "4.0",
    "informationaction": "5.0",
    "infa": "5.0",
    "informationvariable": "5.0",
    "iv": "5.0",
}
COMMAND_PARAMETERS = {
    ("get-content", "gc", "cat", "type"): {"tail"},
    ("get-childitem", "gci", "dir", "ls"): {"file", "directory", "hidden", "readonly", "system",
                                            "attributes", "depth"},
    ("export-csv", "epcsv"): {"append"},
    ("out-file", "set-content", "sc", "add-content", "ac"): {"nonewline"},
    ("add-member",): {"notepropertyname", "notepropertyvalue", "notepropertymembers", "typename"},
}


@check("parameters added after 2.0", "PowerShell 3.0-5.0")
def new_parameters(script: Script) -> Iterator[Node]:
    for command in script.commands:
        name = (command.name or "").lower()
        extra = next((p for names, p in COMMAND_PARAMETERS.items() if name in names), set())
        for element in command.elements:
            if element.type == "command_parameter":
                parameter = text(element).lstrip("-").rstrip(":").lower()
                if parameter in ANY_COMMAND_PARAMETERS or parameter in extra:
                    yield element


COMMON_PARAMETERS = ("verbose", "debug", "erroraction", "ea", "warningaction", "wa",
                     "errorvariable", "ev", "warningvariable", "wv", "outvariable", "ov",
                     "outbuffer", "ob")
PIPELINE_FILTERS = {
    ("where-object", "where", "?"): ("filterscript", "inputobject"),
    ("foreach-object", "foreach", "%"): ("process", "begin", "end", "inputobject"),
}


@check("simplified Where-Object / ForEach-Object syntax", "PowerShell 3.0")
def simplified_where(script: Script) -> Iterator[Node]:
    """2.0 takes a script block (or an expression holding one), never a property name, and
    has none of 3.0's -Property, -EQ, -MemberName, ... parameters."""
    for command in script.commands:
        name = (command.name or "").lower()
        known = next((p for names, p in PIPELINE_FILTERS.items() if name in names), None)
        if known is None:
            continue
        unknown = [
            p for p, _ in command.parameters()
            if not any(k.startswith(p) for k in (*known, *COMMON_PARAMETERS))
        ]
        if unknown or any(word_value(e) is not None for e in command.positional()):
            yield command.node


def _is_action(name: str) -> bool:
    name = name.lower().lstrip("$")
    return (
        name in ("ea", "wa", "erroractionpreference", "warningpreference")
        or (len(name) >= 6 and "erroraction".startswith(name))
        or (len(name) >= 8 and "warningaction".startswith(name))
    )


def _is_ignore(value: Node | None) -> bool:
    return value is not None and (word_value(value) or "").lower() == "ignore"


@check("ErrorAction / WarningAction Ignore", "PowerShell 3.0")
def ignore(script: Script) -> Iterator[Node]:
    """The Ignore action preference: as a parameter value, in a hashtable for splatting, in an
    indexed assignment or a preference variable, or as [ActionPreference]::Ignore."""
    for command in script.commands:
        if any(_is_action(p) and _is_ignore(v) for p, v in command.parameters()):
            yield command.node
    for node in script.nodes("hash_entry"):
        key = next((c for c in node.children if c.type == "key_expression"), None)
        value = next((c for c in node.children if c.type == "pipeline"), None)
        if key is not None and _is_action(word_value(key) or "") and _is_ignore(value):
            yield node
    for node in script.nodes("assignment_expression"):
        left = core(node.children[0])
        targets = [left, *(left.named_children if left.type == "element_access" else [])]
        names = [variable_name(t) or word_value(t) or "" for t in targets]
        if any(_is_action(n) for n in names) and _is_ignore(node.child_by_field_name("value")):
            yield node
    for node, type_name, member in script.static_members():
        if type_name.endswith(".actionpreference") and member == "ignore":
            yield node


# --- variables -----------------------------------------------------------------------------

NEW_VARIABLES = {
    "psitem": "3.0",
    "psdefaultparametervalues": "3.0",
    "psscriptroot": "3.0 (2.0: in script modules only)",
    "pscommandpath": "3.0",
    "psedition": "5.1",
    "iswindows": "6.0",
    "islinux": "6.0",
    "ismacos": "6.0",
    "iscoreclr": "6.0",
    "psstyle": "7.2",
}


@check("automatic variables added after 2.0", "PowerShell 3.0-7.2")
def new_variables(script: Script) -> Iterator[Node]:
    for node in script.nodes("variable", "braced_variable"):
        if variable_name(node) in NEW_VARIABLES:
            yield node


@check("$using: scope", "PowerShell 3.0")
def using_scope(script: Script) -> Iterator[Node]:
    for node in script.nodes("variable", "braced_variable"):
        if text(node).lower().lstrip("${").startswith("using:"):
            yield node


# --- operators, statements, attributes -----------------------------------------------------


@check("-in / -notin operators", "PowerShell 3.0")
def in_operator(script: Script) -> Iterator[Node]:
    return (n for n in script.nodes("comparison_operator") if text(n).lower() in ("-in", "-notin"))


@check("-shl / -shr operators", "PowerShell 3.0")
def shift_operator(script: Script) -> Iterator[Node]:
    return (n for n in script.nodes("comparison_operator") if text(n).lower() in ("-shl", "-shr"))


@check("redirection of streams 3-6 and *", "PowerShell 3.0 (6: 5.0)")
def redirection(script: Script) -> Iterator[Node]:
    """2.0 redirects only output and errors: >, >>, 2>, 2>>, 2>&1."""
    for node in script.nodes("file_redirection_operator", "merging_redirection_operator"):
        if text(node)[:1] in ("*", "3", "4", "5", "6"):
            yield node


@check("stop-parsing token --%", "PowerShell 3.0")
def stop_parsing(script: Script) -> Iterator[Node]:
    return script.nodes("stop_parsing")


@check("pipeline chain operators && / ||", "PowerShell 7.0")
def pipeline_chain(script: Script) -> Iterator[Node]:
    return script.nodes("pipeline_chain_tail")


@check("class definitions", "PowerShell 5.0")
def class_definition(script: Script) -> Iterator[Node]:
    return script.nodes("class_statement")


@check("enum definitions", "PowerShell 5.0")
def enum_definition(script: Script) -> Iterator[Node]:
    return script.nodes("enum_statement")


@check("using statements", "PowerShell 5.0")
def using_statement(script: Script) -> Iterator[Node]:
    """The grammar reads ``using namespace X`` as a command named ``using``."""
    return (c.node for c in script.commands if (c.name or "").lower() == "using")


@check("workflows and DSC configurations", "PowerShell 3.0 / 4.0")
def workflow(script: Script) -> Iterator[Node]:
    for node in script.nodes("function_statement"):
        if any(c.type == "workflow" for c in node.children):
            yield node
    yield from script.nodes(
        "parallel_statement", "sequence_statement", "inlinescript_statement", "foreach_parameter"
    )
    for command in script.commands:
        if (command.name or "").lower() == "configuration":
            yield command.node


@check("attribute arguments without a value", "PowerShell 3.0")
def bare_attribute_argument(script: Script) -> Iterator[Node]:
    """``[Parameter(Mandatory)]``: 2.0 needs ``Mandatory = $true``."""
    for node in script.nodes("attribute_argument"):
        if not any(c.type == "=" for c in node.children) and core(node).type == "simple_name":
            yield node


@check("::new()", "PowerShell 5.0")
def new_method(script: Script) -> Iterator[Node]:
    return (node for node, _, member in script.static_members() if member == "new")


@check(".Where() / .ForEach() methods", "PowerShell 4.0")
def where_method(script: Script) -> Iterator[Node]:
    """The grammar reads ``.ForEach(`` as an ERROR (foreach is a keyword to it; the parse test
    fails on it too) and ``.ForEach{`` as its own node."""
    yield from script.nodes("invokation_foreach_expression")
    for node in script.nodes("ERROR"):
        if text(node).lower().endswith(".foreach"):
            yield node
    for node, _, member in script.instance_members():
        if member in ("where", "foreach") and node.type == "invokation_expression":
            yield node


LANGUAGE = (
    new_commands, new_parameters, simplified_where, ignore, new_variables, using_scope,
    in_operator, shift_operator, redirection, stop_parsing, pipeline_chain, class_definition,
    enum_definition, using_statement, workflow, bare_attribute_argument, new_method, where_method,
)


# --- never turn data into code -------------------------------------------------------------


@check("Invoke-Expression / iex", "never, in the agent")
def invoke_expression(script: Script) -> Iterator[Node]:
    return (node for node, word in script.words() if word in ("invoke-expression", "iex"))


@check("[scriptblock]::Create", "never, in the agent")
def scriptblock_create(script: Script) -> Iterator[Node]:
    for node, type_name, member in script.static_members():
        if type_name == "system.management.automation.scriptblock" and member == "create":
            yield node


@check("Add-Type compiling code", "never, in the agent")
def add_type(script: Script) -> Iterator[Node]:
    """Only ``Add-Type -AssemblyName`` (loading an assembly) is allowed: -TypeDefinition,
    -MemberDefinition, -Path and Add-Type's positional source all compile or load code."""
    for command in script.commands:
        parameters = [p for p, _ in command.parameters()]
        if any(p.startswith(("typedef", "memberdef")) for p in parameters) or (
            (command.name or "").lower() == "add-type"
            and not any(len(p) >= 2 and "assemblyname".startswith(p) for p in parameters)
        ):
            yield command.node


@check("$ExecutionContext.InvokeCommand and script-building methods", "never, in the agent")
def invoke_command(script: Script) -> Iterator[Node]:
    for node, _, member in script.instance_members():
        if member in ("invokecommand", "newscriptblock", "invokescript", "addscript"):
            yield node


NEVER_EVAL = (invoke_expression, scriptblock_create, add_type, invoke_command)
