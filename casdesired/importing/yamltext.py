"""Writing YAML text that reads back byte for byte: scalars, lists, comments, whole files.

The files ``casdesired import`` writes are laid out by hand — keys in a fixed order, comments
where they explain something, short lists in flow style as the example in ``sites/`` has them —
but every value goes through :func:`scalar`, which decides how to write it so that YAML reads
back exactly that text:

* plain when PyYAML's emitter (the library's own analysis of what a plain scalar may hold,
  in the context it is written in: a flow list ``[...]`` allows less than a block) writes it
  plain, and neither YAML 1.1 nor 1.2 could read it as anything but text: ``no``,
  ``on``, ``null``, ``~``, ``1e3``, ``0o17``, ``.inf`` are quoted although PyYAML would leave
  some of them plain (editors read YAML 1.2);
* single-quoted when it holds only printable characters on one line (leading or trailing
  spaces, ``#``, ``: ``, quotes, flow indicators…): nothing is escaped there but ``'``;
* double-quoted, by PyYAML with escapes, for everything else: line breaks (``\\n``, and NEL,
  LS, PS, which YAML 1.1 also breaks lines at), tabs, control characters, a BOM.

So no written value ever spans two lines, and a name can also go into a comment as it is
written (:func:`comment`) without ending the comment early. :func:`check_round_trip` reads a
rendered file back and compares it with the data it was made from: import refuses to write a
file that would not read back as the organisation it read.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from casdesired.errors import CasdesiredError

COMMENT_WIDTH = 96
"""Comments wrap before this column (the files' longest lines are FQDNs and URIs)."""

_ALWAYS_QUOTED_WORDS = re.compile(r"(?i)y|n|yes|no|on|off|true|false|null|~|=|<<")
"""Words some YAML reads as a boolean, null, or a merge key (1.1's y/n included)."""
_NUMBER = re.compile(
    r"[-+]?(?:[0-9][0-9_]*(?::[0-5]?[0-9])*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?0[xXoObB][0-9a-fA-F_]+"
    r"|[-+]?\.(?:inf|nan)",
    re.IGNORECASE,
)
"""Text YAML 1.1 or 1.2 could read as a number: ``12``, ``1_000``, ``1e3``, ``.5``, ``0x1F``,
``0o17``, ``1:20`` (1.1's base 60), ``.inf``, ``.nan``."""
_ONE_LINE_PRINTABLE = re.compile(
    "[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)
"""What a single-quoted scalar may hold as it is: printable, and no line break of any YAML
version (NEL U+0085, LS U+2028, PS U+2029), no tab, no BOM U+FEFF."""


_QUOTED = re.compile(
    r"""(?<![^\s(\[])(?:'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")(?=$|[\s,.;:)\]])"""
)
"""A quoted scalar inside a comment's text: it starts after a space or bracket and ends before
one or punctuation (so the apostrophe of "site's" starts nothing)."""


class NotRoundTrip(CasdesiredError):
    """A rendered file would not read back as the data it was made from (a bug: reported, and
    nothing is written)."""


def scalar(value: str, *, flow: bool = False) -> str:
    """``value`` as a YAML scalar on one line that reads back as exactly ``value``: as a
    mapping's value or a block list's item, or (``flow``) inside ``[...]`` or ``{...}``."""
    if not isinstance(value, str):
        raise TypeError(f"scalar() writes text, not {type(value).__name__}")
    if value and _plain_allowed(value, flow=flow):
        return value
    if _ONE_LINE_PRINTABLE.fullmatch(value):
        return "'" + value.replace("'", "''") + "'"
    return _pyyaml_flow(value, style='"')


def _plain_allowed(value: str, *, flow: bool) -> bool:
    if _ALWAYS_QUOTED_WORDS.fullmatch(value) or _NUMBER.fullmatch(value):
        return False
    if not _ONE_LINE_PRINTABLE.fullmatch(value):
        return False
    return (_pyyaml_flow(value) if flow else _pyyaml_block(value)) == value


def _pyyaml_block(value: str) -> str:
    """How PyYAML writes ``value`` as a block mapping's value (its text after ``k: ``)."""
    text = yaml.dump(
        {"k": value}, Dumper=yaml.SafeDumper, default_flow_style=False, allow_unicode=True,
        width=2**31 - 1,
    )
    inner = text.rstrip("\n")
    if not inner.startswith("k: ") or "\n" in inner:
        return ""  # not one plain line: quote it
    return inner[3:]


def _pyyaml_flow(value: str, style: str | None = None) -> str:
    """How PyYAML writes ``value`` as the item of a flow sequence (its text between ``[ ]``)."""
    text = yaml.dump(
        [value],
        Dumper=yaml.SafeDumper,
        default_flow_style=True,
        default_style=style,
        allow_unicode=True,
        width=2**31 - 1,
    )
    inner = text.rstrip("\n")
    if not (inner.startswith("[") and inner.endswith("]")) or "\n" in inner:
        raise NotRoundTrip(f"PyYAML wrote {value!r} on more than one line")
    return inner[1:-1]


def flow_list(values: Iterable[str]) -> str:
    """``[a, 'b c', "d\\ne"]``."""
    return "[" + ", ".join(scalar(v, flow=True) for v in values) + "]"


def flow_map(items: Mapping[str, str]) -> str:
    """``{database: X, server: Y}`` (keys are this module's callers' own plain words)."""
    return "{" + ", ".join(f"{k}: {scalar(v, flow=True)}" for k, v in items.items()) + "}"


def comment(text: str, indent: int = 0) -> list[str]:
    """``text`` as ``# `` lines wrapped before :data:`COMMENT_WIDTH`.

    ``text`` must already show every name through :func:`scalar` (so it holds no line break);
    a quoted name is never split across two lines.
    """
    if "\n" in text or not _ONE_LINE_PRINTABLE.fullmatch(text.replace("\t", " ")):
        raise NotRoundTrip("a comment would hold a line break")
    glue = _unused_character(text)
    protected = _QUOTED.sub(lambda m: m[0].replace(" ", glue), text)
    prefix = " " * indent + "# "
    lines = textwrap.wrap(
        protected,
        width=max(COMMENT_WIDTH - len(prefix), 40),
        break_long_words=False,
        break_on_hyphens=False,
    ) or [""]
    return [(prefix + line.replace(glue, " ")).rstrip() for line in lines]


def _unused_character(text: str) -> str:
    """A private-use character that ``text`` does not hold (it stands for a protected space)."""
    for code in range(0xE000, 0xF900):
        if chr(code) not in text:
            return chr(code)
    raise NotRoundTrip("a comment uses every private-use character")  # pragma: no cover


def check_round_trip(text: str, expected: Mapping[str, Any], what: str) -> None:
    """Raise :class:`NotRoundTrip` unless ``text`` reads back (as casdesired reads YAML: the
    safe loader) as exactly ``expected``."""
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise NotRoundTrip(f"casdesired import wrote {what} as YAML it cannot read: {exc}") from (
            None
        )
    if data != expected:
        raise NotRoundTrip(
            f"casdesired import would write {what} as YAML that does not read back as what was "
            "read from Exchange; nothing was written (please report this as a bug)"
        )
