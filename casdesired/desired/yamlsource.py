"""Reading one YAML file into plain data that remembers where every key and value came from.

PyYAML's ``safe_load`` loses positions, keeps the last of two duplicate keys without a word,
expands aliases without limit and raises on bad bytes with messages an administrator cannot act
on. This module composes the node tree itself (on ``SafeLoader``), so that:

* every mapping, sequence and scalar gets a 1-based ``Location`` (keys too, separately);
* duplicate keys, tabs used for indentation, non-UTF-8 bytes, malformed YAML, custom tags and
  oversized files become :class:`Finding` s with ``path:line:column``;
* aliases are refused outright (``*name``): desired-state files have no use for them, and
  refusing them removes the "billion laughs" expansion attack instead of merely capping it;
* nesting deeper than :data:`MAX_DEPTH` is refused while composing, before PyYAML's recursive
  composer (or anything after it) can run out of stack;
* a scalar that cannot be read as its tag says (``!!int HQ``, ``!!bool maybe``, ``0x_``, a
  number thousands of digits long) is a located error, never PyYAML's ValueError.

It never raises for bad content; :func:`read_yaml` returns ``(document or None, diagnostics)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from casdesired.findings import Finding, Location, Severity

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Larger files are refused unread: 10,000 database names take well under 1 MiB."""

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists read; the schemas need 5 levels at most."""

MAX_NUMBER_CHARACTERS = 64
"""Longest text read as a number: longer ones are refused before PyYAML converts them (a
number thousands of digits long, or a base-60 one, costs PyYAML time quadratic in its length)."""

YamlPath = tuple[str | int, ...]
"""Where a value sits in a document: keys and list indexes from the root."""

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
# Timestamps and binary are legal YAML but never meaningful here: keep their text.
_TEXT_TAGS = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_MAPPING_TAG = "tag:yaml.org,2002:map"
_SEQUENCE_TAG = "tag:yaml.org,2002:seq"


class _AliasRefused(yaml.MarkedYAMLError):
    """Raised by the composer on the first ``*alias``."""


class _TooDeep(yaml.MarkedYAMLError):
    """Raised by the composer on the first node nested deeper than :data:`MAX_DEPTH`."""


class _LocatingLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses aliases (anchors alone are harmless) and deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _AliasRefused(
                problem=(
                    f"YAML aliases are not allowed (found '*{event.anchor}'); "
                    "write the value out in full"
                ),
                problem_mark=event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _TooDeep(
                problem=(
                    f"nesting deeper than {MAX_DEPTH} levels of mappings and lists; "
                    "casdesired files need only a few"
                ),
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass
class Document:
    """One YAML file as plain Python data plus the location of every key and value."""

    path: Path
    display: str
    """The path as diagnostics print it (relative to the working directory when possible)."""
    data: Any
    values: dict[YamlPath, Location] = field(default_factory=dict)
    keys: dict[YamlPath, Location] = field(default_factory=dict)
    first_line: str = ""

    def location(self, where: YamlPath, *, key: bool = False) -> Location:
        """Where ``where`` is written; its key when ``key``; else the nearest written ancestor."""
        if key and where in self.keys:
            return self.keys[where]
        probe = where
        while probe:
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Location(self.display, 1, 1))


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def read_yaml(path: Path) -> tuple[Document | None, list[Finding]]:
    """Read and compose ``path``; a ``None`` document means nothing usable could be read."""
    display = display_path(path)

    def error(message: str, line: int = 1, column: int = 1, rule: str = "yaml") -> Finding:
        return Finding.at(Location(display, line, column), Severity.ERROR, message, rule)

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [
                error(f"file is {size} bytes; the limit is {MAX_FILE_BYTES}", rule="file-too-large")
            ]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [error(f"cannot read file: {exc.strerror or exc}", rule="file-unreadable")]

    text, problem = _decode(raw, display)
    if problem is not None:
        return None, [problem]
    if not text.strip():
        return None, [error("empty file: not a casdesired file", rule="not-casdesired")]

    tabs = _tab_indentation(text, display)
    if tabs:
        return None, tabs

    loader: _LocatingLoader | None = None
    try:
        # The constructor already scans the text for characters YAML forbids.
        loader = _LocatingLoader(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_error(exc, display)]
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        return None, [_reader_error(exc, text, display)]
    finally:
        if loader is not None:
            loader.dispose()

    document = Document(path, display, None, first_line=text.splitlines()[0])
    if root is None:  # only comments
        return None, [
            error("file holds no YAML content: not a casdesired file", rule="not-casdesired")
        ]
    diagnostics: list[Finding] = []
    document.data = _plain(root, (), document, loader, diagnostics)
    return document, diagnostics


def _location(display: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(display, 1, 1)
    return Location(display, mark.line + 1, mark.column + 1)


def _decode(raw: bytes, display: str) -> tuple[str, Finding | None]:
    """UTF-8 text (a BOM is allowed), or a diagnostic naming the first bad byte's place."""
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        offset = exc.start
        line = raw.count(b"\n", 0, offset) + 1
        column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
        message = (
            f"not UTF-8: byte 0x{raw[offset]:02X} at offset {offset} (line {line}); "
            "save the file as UTF-8"
        )
        return "", Finding.at(Location(display, line, column), Severity.ERROR, message, "encoding")


def _tab_indentation(text: str, display: str) -> list[Finding]:
    """A diagnostic per line indented with a tab (YAML allows only spaces there)."""
    found: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            found.append(
                Finding.at(
                    Location(display, number, indent.index("\t") + 1),
                    Severity.ERROR,
                    "tab used for indentation; YAML indents with spaces only",
                    "yaml-tab",
                )
            )
    return found


def _yaml_error(exc: yaml.MarkedYAMLError, display: str) -> Finding:
    """PyYAML's problem and its mark, without the source snippet (it may quote a secret)."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "malformed YAML"
    ours = isinstance(exc, (_AliasRefused, _TooDeep))
    message = problem if ours else f"invalid YAML: {problem}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    rule = {_AliasRefused: "yaml-alias", _TooDeep: "yaml-too-deep"}.get(type(exc), "yaml")
    return Finding.at(_location(display, mark), Severity.ERROR, message, rule)


def _reader_error(exc: yaml.YAMLError, text: str, display: str) -> Finding:
    position = getattr(exc, "position", 0)
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = getattr(exc, "character", None)  # PyYAML gives the code point as an int
    if isinstance(character, str) and character:
        character = ord(character)
    code = f"U+{character:04X}" if isinstance(character, int) else "?"
    message = f"invalid YAML: character {code} is not allowed in YAML"
    return Finding.at(Location(display, line, column), Severity.ERROR, message, "yaml")


def _plain(
    node: Node,
    where: YamlPath,
    document: Document,
    loader: _LocatingLoader,
    diagnostics: list[Finding],
) -> Any:
    """Turn a composed node into dict/list/scalars, recording locations and problems."""
    location = _location(document.display, node.start_mark)
    document.values[where] = location
    if isinstance(node, MappingNode):
        if node.tag != _MAPPING_TAG:
            diagnostics.append(_tag_error(node, location))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_location = _location(document.display, key_node.start_mark)
            if not isinstance(key_node, ScalarNode):
                diagnostics.append(
                    Finding.at(key_location, Severity.ERROR, "a key must be plain text", "yaml")
                )
                continue
            # Keys are always text here: `yes:` or `1:` mean the words, not True or 1.
            name = str(key_node.value)
            child: YamlPath = (*where, name)
            if name in result:
                first = document.keys[child]
                diagnostics.append(
                    Finding.at(
                        key_location,
                        Severity.ERROR,
                        f"duplicate key '{name}' (first at line {first.line}:{first.column}); "
                        "YAML would silently keep only the last one",
                        "yaml-duplicate-key",
                    )
                )
                continue
            document.keys[child] = key_location
            result[name] = _plain(value_node, child, document, loader, diagnostics)
        return result
    if isinstance(node, SequenceNode):
        if node.tag != _SEQUENCE_TAG:
            diagnostics.append(_tag_error(node, location))
        return [
            _plain(item, (*where, index), document, loader, diagnostics)
            for index, item in enumerate(node.value)
        ]
    assert isinstance(node, ScalarNode)
    if node.tag in _PLAIN_TAGS:
        return _scalar(node, location, loader, diagnostics)
    if node.tag not in _TEXT_TAGS:
        diagnostics.append(_tag_error(node, location))
    return str(node.value)


_TAG_WORDS = {
    "tag:yaml.org,2002:int": "a whole number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false",
}


def _scalar(
    node: ScalarNode,
    location: Location,
    loader: _LocatingLoader,
    diagnostics: list[Finding],
) -> Any:
    """A plain scalar's value, or its text (with a diagnostic) when its tag cannot read it.

    The value itself is never quoted: it may be a secret typed in the wrong place.
    """
    text = str(node.value)
    numeric = node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    if numeric and len(text) > MAX_NUMBER_CHARACTERS:
        diagnostics.append(
            Finding.at(
                location,
                Severity.ERROR,
                f"number {len(text)} characters long; numbers here have at most "
                f"{MAX_NUMBER_CHARACTERS}",
                "bad-number",
            )
        )
        return text
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, KeyError, IndexError):
        # PyYAML's int/float/bool constructors fail on texts their tag does not fit:
        # `!!int HQ`, `!!bool maybe`, `!!float ''`, and the implicit `0x_`.
        pass
    written = _explicit_tag(node)
    wanted = _TAG_WORDS.get(node.tag, "a plain value")
    if written:
        message = (
            f"the tag '{written}' needs {wanted}, and this value is not one; "
            "remove the tag or fix the value"
        )
    else:
        message = f"not a valid number: write {wanted}, or quote it to mean text"
    diagnostics.append(
        Finding.at(location, Severity.ERROR, message, "yaml-tag" if written else "bad-number")
    )
    return text


def _explicit_tag(node: ScalarNode) -> str:
    """The tag as written before the value (``!!int``), or "" when YAML resolved it implicitly."""
    mark = node.start_mark
    buffer = getattr(mark, "buffer", None)
    if not isinstance(buffer, str):
        return ""
    # The node starts at its properties: an anchor (`&name`) and/or a tag, in either order.
    start = getattr(mark, "pointer", 0)
    for token in buffer[start : start + 1024].split(None, 2)[:2]:
        if token.startswith("!"):
            return token
        if not token.startswith("&"):
            break
    return ""


def _tag_error(node: Node, location: Location) -> Finding:
    return Finding.at(
        location,
        Severity.ERROR,
        f"YAML tag '{node.tag}' is not supported; write plain values",
        "yaml-tag",
    )
