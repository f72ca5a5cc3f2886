"""Values made safe for a GitHub pull-request comment, readable in the Markdown source too.

A database or site name, a finding's message, anything from the YAML or from Exchange, goes
through :func:`md` (Markdown text: table cells, list items, paragraphs) or :func:`html` (the raw
HTML of a ``<summary>``, where Markdown is not parsed). Nothing a value holds can break a table,
start markup, a link, an HTML tag, a math formula, a mention or an issue link, or hide what it
says:

* control, bidi and invisible characters (newlines, ESC, U+202A–U+202E, U+2066–U+2069,
  U+200B–U+200F, ...) are shown as their escape (``\\n``, ``\\u202e``), exactly as the text
  renderer shows them (:func:`casdesired.visible.clean`), so a value stays on one line
  and cannot reorder or hide what follows it;
* Markdown's specials get a backslash (CommonMark escapes, readable as plain text):
  ``\\ ` * _ [ ] < & | ~`` (``_`` only where it could delimit emphasis: ``max_rebind_percent``
  stays as typed);
* ``$`` becomes ``&#36;``: GitHub renders ``$…$`` as math and does not honour ``\\$``;
* ``@`` and ``#`` are followed by an invisible U+200B (ZERO WIDTH SPACE, what Renovate does for
  the same reason): GitHub links mentions and issue references in the rendered text, where
  escapes and character references are already gone, so only a character in between stops
  ``@team`` from pinging a team and ``#1`` from linking an issue. A U+200B the value itself
  holds is shown as ``\\u200b``, so the one inserted here is never mistaken for it.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from pathlib import PurePath

from casdesired.findings import Location
from casdesired.visible import clean

ZWSP = "\u200b"
"""Inserted after ``@`` and ``#`` (see the module docstring)."""

_BACKSLASHED = frozenset("\\`*[]<&|~")
_AFTER_ZWSP = frozenset("@#")


def md(value: object) -> str:
    """A value as Markdown text that shows exactly as typed (controls made visible)."""
    text = clean(value)
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in _BACKSLASHED:
            out.append("\\" + ch)
        elif ch == "_":
            inside_word = 0 < i < last and text[i - 1].isalnum() and text[i + 1].isalnum()
            out.append("_" if inside_word else "\\_")
        elif ch == "$":
            out.append("&#36;")
        elif ch in _AFTER_ZWSP:
            out.append(ch + ZWSP)
        else:
            out.append(ch)
    return "".join(out)


_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "$": "&#36;"}


def html(value: object) -> str:
    """A value as the text of raw HTML (a ``<summary>``): character references, since Markdown
    escapes are not processed there."""
    text = clean(value)
    return "".join(_HTML.get(ch, ch + ZWSP if ch in _AFTER_ZWSP else ch) for ch in text)


def where(location: Location | None, root: str | None) -> str:
    """A YAML location for a comment others read: relative to the organisation directory.

    A pull-request comment must not show the runner's absolute paths (they mean nothing to the
    reader and disclose the runner's layout): outside the directory, or with none known, only
    the file's name is shown.
    """
    if location is None:
        return ""
    path = PurePath(location.path)
    shown = path.name
    if root is not None:
        with suppress(ValueError):  # outside the directory: the name only
            shown = path.relative_to(root).as_posix()
    elif not path.is_absolute():
        shown = path.as_posix()
    return str(replace(location, path=shown))
