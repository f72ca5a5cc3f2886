"""Fuzzing the CLI with the example organisation in sites/, broken in every way we know of.

Shared by tests/desired/test_fuzz_cli.py (a bounded, derandomized run in the suite) and
bench/fuzz_desired.py (a long run). :func:`organisations` draws a whole directory — the four
example files, each possibly mutated — as ``{file name: bytes}``; :func:`run_case` runs the real
CLI on it and says what happened. The mutations:

* **bytes**: flip, insert (invalid UTF-8, NUL, tabs, a BOM, CR), delete, truncate;
* **values**: a ``key: value`` replaced by another YAML text (numbers, flow collections,
  quotes, block scalars, anchors, aliases, directives, documents, text that is no YAML);
* **structure**: the YAML parsed and a node deleted, replaced by random data, wrapped in a
  list, given an unknown sibling or moved to the top — then dumped again;
* **types and tags**: ``!!int``, ``!!float``, ``!!bool``, ``!!str``, ``!!null``, ``!!binary``,
  ``!!timestamp``, ``!!set``, ``!!omap``, ``!!python/...``, a local ``!tag`` before a value;
* **depth**: a value replaced by nested flow lists or mappings, or block lists, 1–600 deep;
* **numbers**: every number in a file replaced by NaN, infinities, huge, negative, hex,
  octal, base-60, exponents, digits by the thousand;
* **files**: a file deleted, duplicated, emptied, renamed to ``.yml`` or moved into a folder.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
import traceback
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from casdesired.cli import main
from casdesired.desired.config import LAB_RESOLVER
from casdesired.desired.loader import load_desired

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "sites"

Files = dict[str, bytes]
Draw = Callable[[st.SearchStrategy[Any]], Any]


def example_files() -> Files:
    return {path.name: path.read_bytes() for path in sorted(EXAMPLE.glob("*.yaml"))}


_VALUE_LINE = re.compile(rb"^(?P<head>\s*(?:- )?[A-Za-z_]+:[ ]+)(?P<value>[^\n#]*)", re.MULTILINE)
_NUMBER = re.compile(rb"(?<![\w.-])\d+(?:\.\d+)?(?![\w.-])")

TAGS = [
    "!!int", "!!float", "!!bool", "!!str", "!!null", "!!binary", "!!timestamp", "!!set",
    "!!omap", "!!pairs", "!!map", "!!seq", "!!merge", "!!python/object/apply:os.system",
    "!!python/name:os.system", "!local", "!<tag:yaml.org,2002:int>", "!<tag:example.com:x>",
]

NUMBER_TEXTS = [
    ".nan", ".NaN", ".NAN", ".inf", "+.inf", "-.inf", ".Inf", "-.INF", "0", "-0", "-1", "-0.0",
    "1e400", "1.0e+400", "-1.0e+400", "1.0e-400", "0x_", "0b_", "0x1F", "0o17", "017", "0b101",
    "1_000", "1__0", "190:20:30", "1:2:3:4:5:6:7:8:9", "3.", ".5", "1.5", "99.999999999999999",
    "1" * 70, "9" * 5000, "1" + ":59" * 5000, "2147483648", "18446744073709551616",
    "100.0000001", "1e3", "0.0000000001",
]

OTHER_TEXTS = [
    "", "~", "null", "yes", "no", "on", "off", "true", "True", "'true'", '"10"', "[]", "{}",
    "[a, b]", "{a: 1}", "[lab]", "{connect_seconds: .nan}", "'", '"', "[", "{", "]", "}", "|",
    ">", "|-\n  text", "&anchor value", "*anchor", "&a [1]", "? complex", "- item", "--- x",
    "... x", "%YAML 1.1", "!", "!!", "'unterminated", '"\\x00"', '"\\uD800"', "a: b: c",
    "@reserved", "`reserved", "2001-12-14t21:59:43.10-05:00", "=", "<<: {a: 1}", "\t",
    "\u0085", "\u2028", "\ufeff", "\x7f", "é", "🙂", "x" * 300, "Pa$$w0rd!",
]


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def number_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NUMBER_TEXTS),
        st.integers().map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(_yaml_float),
        st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    )


def _yaml_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return "-.inf" if value < 0 else ".inf"
    text = repr(value)
    return text if "." in text or "e" not in text else text.replace("e", ".0e", 1)


def value_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        number_texts(),
        st.sampled_from(OTHER_TEXTS),
        st.builds(lambda tag, value: f"{tag} {value}", st.sampled_from(TAGS),
                  st.sampled_from(["HQ", "10", "1.5", "true", "", "''", "[a]", "{a: 1}"])),
        st.text(max_size=40),
    )


def nested(draw: Draw) -> str:
    depth: int = draw(st.integers(min_value=1, max_value=600))
    shape = draw(st.sampled_from(["list", "map", "mixed", "block"]))
    if shape == "list":
        return "[" * depth + "]" * depth
    if shape == "map":
        return "{a: " * depth + "1" + "}" * depth
    if shape == "mixed":
        return "[{a: " * depth + "1" + "}]" * depth
    return "\n" + "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "x"


# --- mutations of one file ------------------------------------------------------------------


def mutate_bytes(draw: Draw, data: bytes) -> bytes:
    position = draw(st.integers(min_value=0, max_value=len(data)))
    action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
    if action == "flip" and position < len(data):
        bit = 1 << draw(st.integers(min_value=0, max_value=7))
        return data[:position] + bytes([data[position] ^ bit]) + data[position + 1 :]
    if action == "insert":
        inserted: bytes = draw(
            st.one_of(
                st.binary(min_size=1, max_size=8),
                st.sampled_from(
                    [b"\xff", b"\xe9", b"\x00", b"\t", b"\r", b"\xef\xbb\xbf", b"\xc3", b"\n\t"]
                ),
            )
        )
        return data[:position] + inserted + data[position:]
    if action == "delete":
        length = draw(st.integers(min_value=1, max_value=40))
        return data[:position] + data[position + length :]
    return data[:position]


def _value_lines(data: bytes) -> list[re.Match[bytes]]:
    return list(_VALUE_LINE.finditer(data))


def mutate_value(draw: Draw, data: bytes, replacement: bytes | None = None) -> bytes:
    lines = _value_lines(data)
    if not lines:
        return mutate_bytes(draw, data)
    line = draw(st.sampled_from(lines))
    new = replacement if replacement is not None else _text(draw(value_texts()))
    return data[: line.start("value")] + new + data[line.end("value") :]


def mutate_tag(draw: Draw, data: bytes) -> bytes:
    lines = _value_lines(data)
    if not lines:
        return mutate_bytes(draw, data)
    line = draw(st.sampled_from(lines))
    tag = _text(draw(st.sampled_from(TAGS))) + b" "
    return data[: line.start("value")] + tag + data[line.start("value") :]


def mutate_depth(draw: Draw, data: bytes) -> bytes:
    return mutate_value(draw, data, _text(nested(draw)))


def mutate_numbers(draw: Draw, data: bytes) -> bytes:
    numbers = list(_NUMBER.finditer(data))
    if not numbers:
        return mutate_value(draw, data, _text(draw(number_texts())))
    chosen = draw(st.sampled_from(numbers))
    new = _text(draw(number_texts()))
    return data[: chosen.start()] + new + data[chosen.end() :]


def random_data() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
        st.sampled_from(["lab", "HQ", "ntlm", "nlb", "external", "present", "absent"]),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.text(min_size=1, max_size=12), inner, max_size=4),
        ),
        max_leaves=12,
    )


def _depth(data: Any) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, (dict, list)):
            stack.extend((child, level + 1) for child in children)
    return deepest


def _paths(data: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [where]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*where, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*where, index))
    return found


def mutate_structure(draw: Draw, data: bytes) -> bytes:
    try:
        document = yaml.safe_load(data)
    except Exception:  # PyYAML raises more than YAMLError on bad input: that is the point
        return mutate_bytes(draw, data)
    if not isinstance(document, dict) or _depth(document) > 40:
        return mutate_bytes(draw, data)  # (PyYAML's dumper recurses deeper than its loader)
    paths = [p for p in _paths(document) if p]
    if not paths:
        return mutate_bytes(draw, data)
    where = draw(st.sampled_from(paths))
    parent: Any = document
    for part in where[:-1]:
        parent = parent[part]
    last = where[-1]
    action = draw(st.sampled_from(["delete", "replace", "wrap", "sibling", "hoist"]))
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = draw(random_data())
    elif action == "wrap":
        parent[last] = [parent[last]]
    elif action == "sibling" and isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=12))] = draw(random_data())
    elif action == "hoist":
        document[str(last)] = parent[last]
    first = data.split(b"\n", 1)[0]
    dumped = yaml.safe_dump(document, sort_keys=draw(st.booleans()), allow_unicode=True)
    return first + b"\n" + dumped.encode("utf-8", "surrogatepass")


FILE_MUTATIONS: list[Callable[[Draw, bytes], bytes]] = [
    mutate_bytes, mutate_value, mutate_tag, mutate_depth, mutate_numbers, mutate_structure,
]


def mutate_files(draw: Draw, files: Files) -> Files:
    name = draw(st.sampled_from(sorted(files)))
    action = draw(st.sampled_from(["delete", "duplicate", "empty", "rename", "subfolder"]))
    changed = dict(files)
    if action == "delete":
        del changed[name]
    elif action == "duplicate":
        changed["copy-" + name] = files[name]
    elif action == "empty":
        changed[name] = b""
    elif action == "rename":
        changed[name.rsplit(".", 1)[0] + ".yml"] = changed.pop(name)
    else:
        changed["sub/" + name] = changed.pop(name)
    return changed


@st.composite
def organisations(draw: Draw, *, max_mutations: int = 3) -> Files:
    """The example directory with 1 to ``max_mutations`` mutations, as ``{name: bytes}``."""
    files = example_files()
    for _ in range(draw(st.integers(min_value=1, max_value=max_mutations))):
        if not files:
            break
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            files = mutate_files(draw, files)
            continue
        name = draw(st.sampled_from(sorted(files)))
        mutation = draw(st.sampled_from(FILE_MUTATIONS))
        files[name] = mutation(draw, files[name])
    return files


def write(directory: Path, files: Files) -> Path:
    for name, data in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return directory


# --- running the CLI on a mutated directory ---------------------------------------------------


@dataclass
class Outcome:
    """What the CLI did with one mutated directory."""

    codes: dict[str, int] = field(default_factory=dict)
    """Command line (without the directory) → exit code."""
    crash: str | None = None
    """A traceback, or the command and its unexpected exit code; None when all went well."""

    @property
    def planned(self) -> bool:
        return "plan" in self.codes


def cli(*argv: str) -> tuple[int, str]:
    """Run the real CLI in this process; an exception escaping it propagates."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as stopped:  # argparse's own exit: not expected with these arguments
            code = stopped.code if isinstance(stopped.code, int) else -1
    return code, err.getvalue()


def plannable(directory: Path) -> bool:
    """Valid, on the embedded lab, and asking only the lab's DNS: plan stays on loopback."""
    desired = load_desired(directory)
    org = desired.organisation
    return (
        not desired.has_errors()
        and org.connection.is_lab
        and set(org.dns.resolvers) <= {LAB_RESOLVER}
        and not org.dns.external_resolvers
        and org.dns.management is None
    )


COMMANDS = (("validate",), ("validate", "--format", "json", "--strict"))


def run_case(files: Files, *, plan: bool = True) -> Outcome:
    """``validate`` (text, then JSON with --strict) and, when the files are valid and stay on
    the embedded lab, ``plan``. Every exit must be 0 or 1 and no exception may escape.

    The embedded lab keeps its state under ``$XDG_STATE_HOME``: callers point it somewhere
    temporary.
    """
    outcome = Outcome()
    with tempfile.TemporaryDirectory() as tmp:
        directory = write(Path(tmp) / "org", files)
        commands = list(COMMANDS)
        try:
            for argv in commands:
                code, err = cli(*argv, str(directory))
                outcome.codes[" ".join(argv)] = code
                if code not in (0, 1) or "Traceback" in err:
                    outcome.crash = f"{' '.join(argv)} exited {code}:\n{err}"
                    return outcome
            if plan and outcome.codes["validate"] == 0 and plannable(directory):
                code, err = cli("plan", str(directory))
                outcome.codes["plan"] = code
                if code not in (0, 1) or "Traceback" in err:
                    outcome.crash = f"plan exited {code}:\n{err}"
        except Exception:  # the property under test: nothing may escape the CLI
            outcome.crash = traceback.format_exc()
    return outcome
