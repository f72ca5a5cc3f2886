"""agent.ps1 and the bootstrap on a real PowerShell syntax tree: they parse, and they use
nothing Windows PowerShell 2.0 (on .NET 3.5, next to Exchange 2010) lacks.

The grammar is tree-sitter-powershell (PyPI; https://github.com/airbus-cert/tree-sitter-powershell).
It parses PowerShell up to 7, so a clean parse says the text is PowerShell; the checks in
``ps2_language`` and ``ps2_dotnet`` then look on the tree (command names and parameters, type
literals, member access and invocations, operators, statements) for what came after 2.0. Every
check flags its own samples below, so none can silently match nothing; the real scripts pass.

Where the version facts come from:

- New V3 Language Features (PowerShell team blog, 2012-06-13,
  https://devblogs.microsoft.com/powershell/new-v3-language-features/): member enumeration,
  e.g. ``(dir).FullName``, "in PowerShell V2.0 you'd write dir | % { $_.FullName }".
- about_Comparison_Operators: ``-in``/``-notin`` are in the 3.0 topic
  (learn.microsoft.com/previous-versions/windows/powershell-scripting/hh847759(v=wps.620)) and
  not in the 2.0 one (learn.microsoft.com/previous-versions/dd315321(v=technet.10));
  about_Arithmetic_Operators: "Beginning in PowerShell 3.0, the -shr and -shl are added";
  about_Hash_Tables: "Beginning in PowerShell 3.0, you can use the [ordered] attribute".
- about_Redirection (3.0): the All (*), Warning (3), Verbose (4) and Debug (5) redirection
  operators were introduced in 3.0; about_Output_Streams: Information (6) in 5.0.
  about_Parsing: the stop-parsing token ``--%`` was introduced in 3.0.
- about_Automatic_Variables: ``$PSItem`` is 3.0; ``$PSScriptRoot`` is valid only in script
  modules in 2.0 (the agent is a script block). ``$using:``, ``$PSDefaultParameterValues``,
  ``-ErrorAction Ignore`` and the simplified ``Where-Object Name -eq X`` syntax are 3.0
  (about_Remote_Variables, about_Parameters_Default_Values, about_CommonParameters;
  ForEach-Object's help: "Starting in Windows PowerShell 3.0, there are two different ways to
  construct a ForEach-Object command", the script block and the operation statement).
- ``.Where()``/``.ForEach()`` came with 4.0 (MicrosoftDocs/PowerShell-Docs#2307,
  PowerShell-RFC RFC0034); classes, enums, ``using`` and ``::new()`` with 5.0.
- Type accelerators: ``[ordered]`` and ``[pscustomobject]`` literals are 3.0 (above); the CIM
  accelerators ``[ciminstance]``, ``[cimclass]``, ``[cimtype]``, ``[cimconverter]``,
  ``[CimSession]`` "appeared in PowerShell v3" (Richard Siddaway, "WMI and CIM accelerators");
  full names as in PSScriptAnalyzer's Engine/Settings/typeAccelerators.json. ``[NullString]``
  lives in System.Management.Automation.Language, the AST API that came with 3.0.
- ``[Parameter(Mandatory)]`` without ``= $true``: "not needed since PowerShell 3.0" (WinSCP's
  PowerShell guide, changed back "for compatibility with PowerShell 2").
- Commands: PSScriptAnalyzer's inventory of 2.0 (Engine/Settings/desktop-2.0-windows.json)
  has none of ConvertTo/From-Json, Invoke-RestMethod/-WebRequest, the CIM cmdlets, and its
  Get-Content has no -Raw, its Where-Object only -FilterScript/-InputObject, its ForEach-Object
  only -Process/-Begin/-End/-InputObject. Get-FileHash is 4.0; New-Guid, Compress-Archive,
  Format-Hex, ... 5.0.
- .NET: PowerShell 2.0 runs on the 2.0 CLR (.NET 3.5). "What's New in the .NET Framework 4"
  (learn.microsoft.com/previous-versions/dotnet/netframework-4.0/ms171868(v=vs.100)) and "New
  Types and Members in System Namespaces" (ff652744(v=vs.100)) list String.IsNullOrWhiteSpace,
  the IEnumerable<T> overloads of String.Join, StringBuilder.Clear, Stopwatch.Restart,
  Enum.HasFlag/TryParse, Guid.TryParse, Stream.CopyTo, Lazy<T>, Tuple, Path.Combine(params),
  Environment.Is64BitOperatingSystem, File.ReadLines, Directory.EnumerateFiles,
  System.Threading.Tasks, System.Collections.Concurrent, System.Numerics; System.Net.Http and
  ZipFile are .NET 4.5.

What the tree can prove, and so what these checks cannot see:

- Member enumeration is flagged where the receiver is certainly a collection: ``@(...)``,
  ``a, b``, ``, $x``, a ``[T[]]`` cast, ``New-Object`` ArrayList or List[T], a ``[T[]]`` or
  ArrayList parameter, or a variable every assignment of which is one of those; a member the
  collection has itself (``Count``, ``Add``, ``ToArray``, ...) is fine. A variable set from a
  command's output may hold one object or many and is not followed; ``(command).Member`` is
  flagged instead, unless the command always returns one object (Get-Date, New-Object,
  Join-Path, ...). ``.Count`` on what may be a single object (``$null`` in 2.0) is not seen.
- Variables are followed by name through the whole script, whatever the scope; ``+=``,
  ``-OutVariable`` and ``Set-Variable`` are not followed.
- .NET members are checked where the receiver's type shows: a type literal (``[IO.File]::``)
  or a variable every assignment of which shows one type (``New-Object
  System.Text.StringBuilder``, ``[Diagnostics.Stopwatch]::StartNew()``). ``HasFlag``, which no
  .NET 3.5 type has, is flagged on any receiver. ``[string]::Join`` must be given a provable
  array (or be written ``-join``): on .NET 4 the same call may bind to an overload 3.5 lacks.
- List[T].ForEach is .NET 2.0 but is flagged with 4.0's ``.ForEach()``. The grammar cannot parse
  ``.ForEach(``, ``-iin``/``-cin`` or an empty ``{ }``: those fail the parse test instead.
- Module auto-loading (3.0) is not visible in a script: the agent imports each module itself.
"""

from __future__ import annotations

import pytest

from casdesired.agent import protocol
from casdesired.agent.delivery import files as file_delivery
from casdesired.agent.delivery import stdin as stdin_delivery
from casdesired.agent.script import agent_script

from .ps2_dotnet import DOTNET
from .ps2_language import LANGUAGE, NEVER_EVAL
from .ps_check import Check, Script
from .ps_tree import broken_nodes, line, parse, text

POWERSHELL_2 = {c.name: c for c in (*LANGUAGE, *DOTNET)}
NEVER = {c.name: c for c in NEVER_EVAL}
FILE_BOOTSTRAP = file_delivery.bootstrap("ab" * 32, "0123456789abcdef" * 2, "cd" * 32)
SCRIPTS = {
    "agent.ps1": agent_script(diagnose=True),  # with probes.ps1 in place: all of it
    "agent.ps1 without probes": agent_script(),
    "bootstrap": stdin_delivery.BOOTSTRAP_SCRIPT,
    "file bootstrap": FILE_BOOTSTRAP,
}

# Each check against snippets it must flag: the construct PowerShell 2.0 lacks.
SAMPLES: dict[str, list[str]] = {
    "commands added after 2.0": [
        "$x | ConvertTo-Json",
        "$o = ConvertFrom-Json $text",
        "Invoke-RestMethod -Uri $u",
        "iwr $u",
        "Get-CimInstance Win32_OperatingSystem",
        "& 'Invoke-WebRequest' $u",
        "Get-FileHash $path",
    ],
    "parameters added after 2.0": [
        "Get-Content -Raw $path",
        "gc $path -Tail 5",
        "Get-ChildItem -File",
        "Get-X -PipelineVariable p",
        "$o | Add-Member -NotePropertyName a -NotePropertyValue 1",
    ],
    "simplified Where-Object / ForEach-Object syntax": [
        "Get-X | Where-Object Name -eq 'a'",
        "Get-X | Where-Object -Property Name -EQ 'a'",
        "Get-X | ? Enabled",
        "Get-X | ForEach-Object Name",
        "Get-X | % -MemberName ToString",
    ],
    "ErrorAction / WarningAction Ignore": [
        "Get-X -ErrorAction Ignore",
        "Get-X -EA:'Ignore'",
        "Get-X -WarningAction Ignore",
        "$p = @{ ErrorAction = 'Ignore' }",
        "$p['ErrorAction'] = 'Ignore'",
        "$ErrorActionPreference = 'Ignore'",
        "[System.Management.Automation.ActionPreference]::Ignore",
    ],
    "automatic variables added after 2.0": [
        "Get-X | ForEach-Object { $PSItem.Name }",
        "$PSDefaultParameterValues['*:Verbose'] = $true",
        "Join-Path $PSScriptRoot 'x'",
        '"running $PSCommandPath"',
    ],
    "$using: scope": ["Invoke-Command -Session $s -ScriptBlock { $using:name }", "${using:x}"],
    "-in / -notin operators": ["if ($a -in $b) { 1 }", "$a -NotIn $b"],
    "-shl / -shr operators": ["$x = 1 -shl 4", "$x -SHR 1"],
    "redirection of streams 3-6 and *": ["Get-X *> $null", "Get-X 3>&1", "Get-X 4> v.txt"],
    "stop-parsing token --%": ["icacls.exe --% X:\\VMS /grant Dom\\HVAdmin:(CI)(OI)F"],
    "pipeline chain operators && / ||": ["Get-X && Get-Y", "Get-X || Get-Y"],
    "class definitions": ["class Lock { [string]$Id }"],
    "enum definitions": ["enum Mode { Snapin; Remote }"],
    "using statements": ["using namespace System.IO", "using module Foo"],
    "workflows and DSC configurations": [
        "workflow Run { parallel { Get-X } }",
        "Configuration Web { Node 'a' { 1 } }",
    ],
    "attribute arguments without a value": [
        "function f {\n  param([Parameter(Mandatory)][string]$Name)\n  $Name\n}",
        "function f {\n  [CmdletBinding(SupportsShouldProcess)]\n  param()\n  1\n}",
    ],
    "::new()": ["$l = [System.Collections.ArrayList]::new()", "$f = [Text.StringBuilder]::new"],
    ".Where() / .ForEach() methods": [
        "$big = $all.Where({ $_.Size -gt 1 })",
        "$names = $all.ForEach{ $_.Name }",
        "$names = $all.ForEach({ $_.Name })",  # the grammar cannot parse this form: ERROR
    ],
    "type accelerators added after 2.0": [
        "$h = [ordered]@{ a = 1 }",
        "[pscustomobject]@{ Name = 'a' }",
        "[ciminstance]$i = $null",
        "[CimSession]$s = $null",
        "$v = [NullString]::Value",
        "function f {\n  param([ArgumentCompleter({ 1 })]$x)\n  $x\n}",
    ],
    ".NET 4+ types and namespaces": [
        "$t = [System.Threading.Tasks.Task]::Factory",
        "$d = New-Object 'System.Collections.Concurrent.ConcurrentDictionary[string,int]'",
        "$l = New-Object 'System.Lazy[int]'",
        "[Tuple]::Create(1, 2)",
        "[System.Numerics.BigInteger]1",
        "$c = New-Object System.Net.Http.HttpClient",
        "$l = New-Object 'System.Collections.Generic.List[System.Threading.Tasks.Task]'",
    ],
    ".NET 4+ static members": [
        "[string]::IsNullOrWhiteSpace($x)",
        "[System.IO.Directory]::EnumerateFiles($path)",
        "[Enum]::TryParse('a', [ref]$mode)",
        "[Guid]::TryParse($s, [ref]$g)",
        "[Environment]::Is64BitOperatingSystem",
        "[IO.File]::ReadLines($path)",
        "[IO.Path]::Combine($a, $b, $c)",
    ],
    "String.Join overloads of .NET 4": [
        "[string]::Join(', ', $names)",
        "$l = New-Object System.Collections.ArrayList\n[String]::Join(',', $l)",
        "[System.String]::Join(', ', 'a', 'b', 'c')",
    ],
    ".NET 4+ instance methods": [
        "$sb = New-Object System.Text.StringBuilder\n[void]$sb.Clear()",
        "$w = [Diagnostics.Stopwatch]::StartNew()\n$w.Restart()",
        "$m = New-Object -TypeName IO.MemoryStream\n$m.CopyTo($other)",
        "$f = [IO.File]::OpenRead($p)\n$f.CopyTo($other)",
        "if ($mode.HasFlag($flag)) { 1 }",
    ],
    "member enumeration on a collection": [
        "@(Get-Process).Name",
        "$servers = @(Get-ExchangeServer)\n$servers.Name",
        "$all = 1, 2\n$all.Foo",
        "$one = , $x\n$one.Name",
        "$l = New-Object System.Collections.ArrayList\n$l.Name",
        "function f {\n  param([string[]]$Names)\n  $Names.ToUpper()\n}",
        "$a = @(1)\n$b = $a\n$b.Trim()",
    ],
    "member access on a command's output": [
        "(Get-ChildItem).FullName",
        "(Get-Mailbox | Where-Object { $_.Database }).Name",
        "(Get-Item $p).Length",
    ],
}

NEVER_EVAL_SAMPLES: dict[str, list[str]] = {
    "Invoke-Expression / iex": ["iex $text", "Invoke-Expression $text", "$c = 'iex'"],
    "[scriptblock]::Create": [
        "& ([scriptblock]::Create($text))",
        "[System.Management.Automation.ScriptBlock]::Create($text)",
    ],
    "Add-Type compiling code": [
        "Add-Type -TypeDefinition $code",
        "Add-Type 'public class X { }'",
        "Add-Type -Path x.cs",
        "Add-Type -MemberDefinition $m -Name N",
    ],
    "$ExecutionContext.InvokeCommand and script-building methods": [
        "$ExecutionContext.InvokeCommand.InvokeScript($text)",
        "$sb = $ExecutionContext.InvokeCommand.NewScriptBlock($text)",
        "[void]$ps.AddScript($text)",
    ],
}

# PowerShell 2.0 code near each construct: no check may flag any of it.
TWO_POINT_O = [
    "Get-X | Where-Object { $_.Name -eq 'a' }",
    "Get-X | Where-Object -FilterScript { $_ } -ErrorAction Stop",
    "Get-X | ForEach-Object -Begin { 1 } -Process { $_ } -End { 2 }",
    "Get-X | % { $_.Name }",
    "Get-X -ErrorAction SilentlyContinue -WarningAction Continue",
    "$p = @{ ErrorAction = 'Stop' }",
    "if ($b -contains $a) { 1 }",
    "$x = 1 -band 4",
    "Get-X 2>&1",
    "Get-X 2> $null",
    "function f {\n  param([Parameter(Mandatory = $true)][string]$Name, [switch]$F)\n  $Name\n}",
    "$h = @{ a = 1 }",
    "$o = New-Object PSObject -Property @{ Name = 'a' }",
    "$d = New-Object 'System.Collections.Generic.Dictionary[string,object]'",
    "[string]::IsNullOrEmpty($x)",
    "[IO.Path]::Combine($a, $b)",
    "[IO.File]::ReadAllLines($path)",
    "[string]::Join(', ', [string[]]$names)",
    "[string]::Join(', ', @($names))",
    "[string]::Join(', ', $array, 0, 2)",
    "$names -join ', '",
    "$l = New-Object System.Collections.ArrayList\n[void]$l.Add(1)\n$l.Clear()\n$l.ToArray()",
    "$w = [Diagnostics.Stopwatch]::StartNew()\n$w.Elapsed.TotalSeconds",
    "$a = @(Get-Process)\n$a.Count\n$a[0].Name\nforeach ($p in $a) { $p.Name }",
    "@(Get-X).Count",
    "(1, 2).Length",
    "$wanted = @(Get-X) | ForEach-Object { [string]$_ }\n$wanted.Foo",
    "(Get-Date).AddSeconds(5)",
    "(New-Object System.Text.StringBuilder).Append('a')",
    "([Uri]$u).Host.Split('.')[0]",
    "Add-Type -AssemblyName 'System.Web.Extensions'",
    "& $cmdlet @parameters",
    "[System.Management.Automation.PSObject]$x = $null",
]


def _findings(source: str, checks: dict[str, Check]) -> list[str]:
    script = Script(source)
    return [str(f) for c in checks.values() for f in c.findings(script)]


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


@pytest.mark.parametrize("check", sorted(POWERSHELL_2))
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_scripts_use_nothing_powershell_2_lacks(name: str, check: str) -> None:
    assert _findings(SCRIPTS[name], {check: POWERSHELL_2[check]}) == []


@pytest.mark.parametrize("check", sorted(NEVER))
def test_the_agent_never_turns_data_into_code(check: str) -> None:
    assert _findings(SCRIPTS["agent.ps1"], {check: NEVER[check]}) == []


def test_the_bootstraps_one_script_block_is_the_agent_text() -> None:
    # The bootstrap builds exactly one script block (the agent's text, from stdin) and
    # nothing else that turns text into code.
    assert _findings(stdin_delivery.BOOTSTRAP_SCRIPT, NEVER) == [
        "line 1: [scriptblock]::Create (never, in the agent):"
        " [scriptblock]::Create($s.Substring(0,$i))"
    ]


def test_the_file_bootstraps_one_script_block_is_the_checked_agent_file() -> None:
    # Likewise: one script block, made from the agent file's bytes once their SHA-256 matched.
    assert _findings(FILE_BOOTSTRAP, NEVER) == [
        "line 1: [scriptblock]::Create (never, in the agent):"
        " [scriptblock]::Create([Text.Encoding]::ASCII.GetString($a))"
    ]


def test_every_check_has_samples() -> None:
    assert set(SAMPLES) == set(POWERSHELL_2)
    assert set(NEVER_EVAL_SAMPLES) == set(NEVER)


@pytest.mark.parametrize(
    ("check", "sample"),
    [(c, s) for c, samples in {**SAMPLES, **NEVER_EVAL_SAMPLES}.items() for s in samples],
)
def test_each_check_flags_its_samples(check: str, sample: str) -> None:
    """The checker provably fails on the construct (and the sample is PowerShell the grammar
    reads, so it is the check, not a parse error, that catches it)."""
    if ".ForEach(" not in sample:
        assert broken_nodes(parse(sample)) == []
    found = _findings(sample, {check: {**POWERSHELL_2, **NEVER}[check]})
    assert found, f"{check!r} does not flag {sample!r}"


@pytest.mark.parametrize("sample", TWO_POINT_O)
def test_the_checks_leave_powershell_2_code_alone(sample: str) -> None:
    assert broken_nodes(parse(sample)) == []
    assert _findings(sample, {**POWERSHELL_2, **NEVER}) == []


# What tests/agent/test_agent_script.py checked with regular expressions until the tree did:
# every former pattern has a check here that flags its example.
FORMER_REGEX_CHECKS = {
    "ConvertTo-Json": ("commands added after 2.0", "$x | ConvertTo-Json"),
    "ConvertFrom-Json": ("commands added after 2.0", "ConvertFrom-Json $t"),
    "[ordered]": ("type accelerators added after 2.0", "$h = [ordered]@{}"),
    "[pscustomobject]": ("type accelerators added after 2.0", "[pscustomobject]@{ a = 1 }"),
    "-in operator": ("-in / -notin operators", "$a -in $b"),
    "-notin operator": ("-in / -notin operators", "if ($a -notin $b) { 1 }"),
    "::new()": ("::new()", "[Foo]::new()"),
    ".Where()": (".Where() / .ForEach() methods", "$x.Where({ $_ })"),
    ".ForEach()": (".Where() / .ForEach() methods", "$x.ForEach({ $_ })"),
    "class definitions": ("class definitions", "class Foo { [int]$a }"),
    "$PSItem": ("automatic variables added after 2.0", "$PSItem"),
    "Invoke-RestMethod": ("commands added after 2.0", "Invoke-RestMethod $u"),
    "Invoke-WebRequest": ("commands added after 2.0", "Invoke-WebRequest $u"),
    "-ErrorAction Ignore": ("ErrorAction / WarningAction Ignore", "Get-X -ErrorAction:'Ignore'"),
    "Get-CimInstance": ("commands added after 2.0", "Get-CimInstance Win32_Service"),
    "Get-Content -Raw": ("parameters added after 2.0", "Get-Content -Raw f"),
    "$using:": ("$using: scope", "$using:x"),
    "-shl / -shr": ("-shl / -shr operators", "1 -shl 2"),
    "$PSDefaultParameterValues": (
        "automatic variables added after 2.0", "$PSDefaultParameterValues = @{}"
    ),
    "simplified Where-Object / ForEach-Object syntax": (
        "simplified Where-Object / ForEach-Object syntax", "Get-X | Where-Object Name -eq 1"
    ),
    "enum definitions": ("enum definitions", "enum E { A }"),
    "using statements": ("using statements", "using namespace System.IO"),
    "Invoke-Expression": ("Invoke-Expression / iex", "Invoke-Expression $t"),
    "iex": ("Invoke-Expression / iex", "iex $t"),
    "[scriptblock]::Create": ("[scriptblock]::Create", "[scriptblock]::Create($t)"),
    "Add-Type -TypeDefinition (compiles code)": (
        "Add-Type compiling code", "Add-Type -TypeDefinition $t"
    ),
    "$ExecutionContext.InvokeCommand": (
        "$ExecutionContext.InvokeCommand and script-building methods",
        "$ExecutionContext.InvokeCommand.InvokeScript($t)",
    ),
}


@pytest.mark.parametrize("feature", sorted(FORMER_REGEX_CHECKS))
def test_every_former_regex_check_has_a_tree_check(feature: str) -> None:
    check, sample = FORMER_REGEX_CHECKS[feature]
    assert _findings(sample, {check: {**POWERSHELL_2, **NEVER}[check]}), feature


# The commands agent.ps1 runs by name besides its own functions and the allow-list: each is in
# the PowerShell 2.0 inventory (PSScriptAnalyzer desktop-2.0-windows.json).
POWERSHELL_2_CMDLETS = {
    "Add-Member", "Add-PSSnapin", "Add-Type", "ConvertTo-SecureString", "ForEach-Object",
    "Get-Command", "Get-Date", "Get-ExecutionPolicy", "Get-Item", "Get-Module", "Get-PSSnapin",
    "Get-WmiObject", "Import-Module", "Import-PSSession", "Invoke-Command", "Join-Path",
    "New-Object", "New-PSSession", "Remove-PSSession", "Start-Sleep",
}
# Exchange cmdlets the agent runs itself, with fixed arguments, outside the allow-list: the
# session's recipient scope (exchange2010-field.md §3), set once after Exchange is loaded.
AGENT_OWN_EXCHANGE_CALLS = {"Set-AdServerSettings"}


def test_the_agent_runs_only_powershell_2_cmdlets_its_functions_and_allowed_cmdlets() -> None:
    script = Script(SCRIPTS["agent.ps1"])
    functions = {
        text(n.named_children[0]) for n in script.nodes("function_statement")
        if n.named_children and n.named_children[0].type == "function_name"
    }
    called = {c.name for c in script.commands if c.name is not None}
    unknown = (
        called - functions - POWERSHELL_2_CMDLETS - AGENT_OWN_EXCHANGE_CALLS
        - set(protocol.ALLOWED_CMDLETS)
    )
    assert unknown == set()
    # The tree sees the calls (a guard against a parse that finds no commands at all).
    assert {"New-Object", "ForEach-Object", "Get-Field", "New-Map"} <= called
    # Every other command is run through `& $cmdlet @parameters`, from the allow-list: here,
    # or on the invocation's computer by the fixed remote script block (`& $Name @Parameters`).
    invoked = [text(c.node) for c in script.commands if c.name is None]
    splats = ("& $cmdlet @parameters", "& $name @parameters")
    assert invoked and all(i.lower().startswith(splats) for i in invoked), invoked
