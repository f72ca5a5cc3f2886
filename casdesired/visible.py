"""Text shown to a person, made unable to drive their terminal or spoof a line.

Names and values come from YAML files and from Exchange; a database named with an ESC sequence
or a newline must show as what it is, not recolour the terminal or print a fake
``file:line: error:`` line beneath a real one.
"""

from __future__ import annotations


def clean(value: object) -> str:
    """Control characters (newlines, ESC, bidi and invisible format characters...) shown as
    their Python escape (``\\n``, ``\\x1b``, ``\\u202e``), so a value stays on one line and
    cannot reorder or hide what follows it. Idempotent: what it returns is printable."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def clean_lines(text: str) -> str:
    """:func:`clean` for a message of several lines: each line cleaned, the newlines kept."""
    return "\n".join(clean(line) for line in text.split("\n"))
