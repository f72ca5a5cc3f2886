"""Compressing one target's database names into a few glob patterns, exactly.

``casdesired import --patterns`` writes ``databases: patterns: [...]`` instead of long name lists.
A pattern binds every live database it matches at plan time (``casdesired.desired.bindings``:
``fnmatch`` on the lower-case identity key), so the patterns of one target must match *exactly*
the databases bound to it among all the organisation's databases — never one more, or the
first plan would rebind that one. :func:`compress` builds them from a trie of the identity keys:

* a branch of the trie whose every database is bound to the target becomes its longest common
  prefix and ``*`` (``HQ-MBX-*``): new databases named like it will bind there too, which is
  what patterns are for;
* at a branch that mixes targets, the children that differ in one last letter or digit become a
  character range (``HQ-DB0[3-6]``);
* what is left is named.

Every result is checked against every database before it is returned; a set of patterns that is
not exact (a bug), or not shorter than the names it replaces, falls back to the names.
"""

from __future__ import annotations

import fnmatch
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from casdesired import model

_CLASSABLE = frozenset(string.ascii_lowercase + string.digits)
"""Characters that go into a ``[...]`` class: ranges over them read plainly, and none of them
is special inside a class (``!``, ``^``, ``-``, ``]``, ``\\`` are)."""
_MIN_DATABASES = 3
"""Fewer databases than this are clearer named than matched."""
_MIN_HEAD = 3
"""A ``*`` pattern has at least this many characters before its star (``HQ-*``, ``DB[1-9]*``):
``a*`` or ``*`` match today's databases exactly but would bind almost any new one."""
_MIN_CLASS = 3
"""Pure branches merged into one ``[...]`` pattern only from this many on: two are clearer as
two prefixes."""


@dataclass(frozen=True)
class Compressed:
    """A target's bindings as written: patterns and the names they do not cover."""

    patterns: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    key: str | None = None
    """The identity key ending here, when one does."""
    total: int = 0
    """Keys at or below this node."""
    bound: int = 0
    """Keys at or below this node that are bound to the target."""

    @property
    def pure(self) -> bool:
        return self.total > 0 and self.bound == self.total


def escape(text: str) -> str:
    """``text`` as a glob matching only itself: ``*``, ``?`` and ``[`` inside brackets."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def matches(patterns: Iterable[str], keys: Iterable[str]) -> set[str]:
    """The keys any pattern matches, as plan time matches them (lower-case ``fnmatch``)."""
    found: set[str] = set()
    keys = list(keys)
    for pattern in patterns:
        found.update(fnmatch.filter(keys, pattern.lower()))
    return found


def compress(bound: Sequence[str], every: Iterable[str]) -> Compressed:
    """Patterns matching exactly ``bound`` among ``every`` database name (names compare by
    identity key, as plan time does), plus the names they leave out.

    Falls back to all of ``bound`` as names when patterns would not be fewer entries, or there
    are fewer than :data:`_MIN_DATABASES` to bind.
    """
    spelling: dict[str, str] = {}
    for name in sorted(bound, key=lambda n: (model.key(n), n)):
        spelling.setdefault(model.key(name), name)
    names = tuple(spelling.values())
    wanted = set(spelling)
    universe = {model.key(n) for n in every} | wanted
    if len(wanted) < _MIN_DATABASES or "" in wanted:
        return Compressed(names=names)
    root = _trie(universe, wanted)
    patterns: list[str] = []
    literal: list[str] = []
    _collect(root, "", patterns, literal)
    if len(patterns) + len(literal) >= len(names):
        return Compressed(names=names)
    readable = [_readable(p, spelling) for p in patterns]
    if matches(readable, universe) | set(literal) != wanted:
        readable = patterns  # the names' own capitals changed a match: keep the keys' case
    if matches(readable, universe) | set(literal) != wanted:
        return Compressed(names=names)  # never write patterns that are not exact
    return Compressed(
        patterns=tuple(sorted(readable, key=lambda p: (p.lower(), p))),
        names=tuple(spelling[k] for k in sorted(literal)),
    )


def _trie(universe: set[str], wanted: set[str]) -> _Node:
    root = _Node()
    for key in universe:
        inside = key in wanted
        node = root
        node.total += 1
        node.bound += inside
        for char in key:
            node = node.children.setdefault(char, _Node())
            node.total += 1
            node.bound += inside
        node.key = key
    return root


def _own_key_bound(node: _Node) -> bool:
    """Whether the key ending at ``node`` (if any) is bound: the bound keys below it are all
    the node's bound keys but that one."""
    below = sum(child.bound for child in node.children.values())
    return node.key is not None and node.bound - below == 1


def _collect(node: _Node, prefix: str, patterns: list[str], literal: list[str]) -> None:
    """Patterns and literal keys matching exactly the bound keys strictly below ``node``.

    A branch whose keys are all bound becomes one ``*`` pattern when it has a head of at least
    :data:`_MIN_HEAD` literal characters; a shorter one (``a*``, or ``*`` itself) would bind
    too much that does not exist yet, so it is looked into like a mixed one.
    """
    single: list[str] = []  # prefix[...] matches exactly these children's own keys
    whole: dict[str, list[str]] = {}  # tail → children: prefix[...]tail* matches all below
    for char, child in sorted(node.children.items()):
        if child.bound == 0:
            continue
        if child.pure and child.total > 1:
            head = _common(child, char)
            if len(prefix) + len(head) >= _MIN_HEAD:
                whole.setdefault(head[1:], []).append(char)
                continue
        own = _own_key_bound(child)
        if own:
            (single if char in _CLASSABLE else literal).append(
                char if char in _CLASSABLE else prefix + char
            )
        if child.bound - own > 0:
            _collect(child, prefix + char, patterns, literal)
    if len(single) == 1:
        literal.append(prefix + single[0])
    elif single:
        patterns.append(escape(prefix) + _char_class(single))
    # Pure branches keep their common prefix (``BR-DB*``, ``DR-DB*``); only three or more that
    # share everything after their first letter become one class (``HQ-DB[1-9]*``).
    for tail, chars in whole.items():
        classable = [c for c in chars if c in _CLASSABLE]
        if len(classable) >= _MIN_CLASS:
            patterns.append(escape(prefix) + _char_class(classable) + escape(tail) + "*")
            chars = [c for c in chars if c not in _CLASSABLE]
        patterns.extend(escape(prefix + char + tail) + "*" for char in chars)


def _common(node: _Node, first: str) -> str:
    """``first`` and the characters every key below ``node`` shares after it."""
    text = first
    while node.key is None and len(node.children) == 1:
        char, node = next(iter(node.children.items()))
        text += char
    return text


def _char_class(chars: list[str]) -> str:
    """``[1-4ab]``: runs of three or more consecutive digits (or letters) become ranges."""
    ordered = sorted(set(chars))
    parts: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while (
            end + 1 < len(ordered)
            and ord(ordered[end + 1]) == ord(ordered[end]) + 1
            and ordered[end + 1].isdigit() == ordered[start].isdigit()
        ):
            end += 1
        if end - start >= 2:
            parts.append(f"{ordered[start]}-{ordered[end]}")
        else:
            parts.extend(ordered[start : end + 1])
        start = end + 1
    return "[" + "".join(parts) + "]"


def _readable(pattern: str, spelling: dict[str, str]) -> str:
    """``pattern`` with its literal head in the databases' own capitals (``HQ-DB0[3-6]``, not
    ``hq-db0[3-6]``), taken from the first bound name that starts with it."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    head = pattern[:cut]
    if not head:
        return pattern
    for key, name in sorted(spelling.items()):
        if key.startswith(head) and len(name) == len(key) and name.lower() == key:
            return name[: len(head)] + pattern[cut:]
    return pattern
