"""Keeping a Markdown plan within a size: parts shortened one level at a time.

A pull-request comment has a limit (GitHub's: 65,536 characters). The comment is a head that is
always kept whole (the verdict, the per-site summary, the safety decisions), blocks that may be
shortened (each site's details, the unmanaged objects: their renderings, most detailed first),
and a tail (where the full plan is). Past the limit the largest block is lowered one level, and
again, until it fits; when every block is at its shortest and it still does not, all of them
give way to one line.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BYTES = 65_000
"""A comment's default limit, under GitHub's 65,536 characters whatever the characters."""


@dataclass(frozen=True)
class Block:
    """A part of the comment that may be shortened: its renderings, most detailed first."""

    levels: tuple[str, ...]


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def fit(
    head: str,
    blocks: list[Block],
    tail: str,
    max_bytes: int,
    shortened: str,
    left_out: str,
) -> str:
    """The comment within ``max_bytes``: blocks shortened one level at a time, the largest
    first, then all replaced by one line. ``head`` and ``tail`` are always kept whole."""
    level = [0] * len(blocks)

    def joined() -> str:
        return "".join("\n" + b.levels[n] + "\n" for b, n in zip(blocks, level, strict=True))

    full = head + joined() + tail
    if size(full) <= max_bytes:
        return full
    head += shortened
    fixed = size(head) + size(tail)
    sizes = [[size("\n" + text + "\n") for text in b.levels] for b in blocks]
    total = fixed + sum(s[0] for s in sizes)
    while total > max_bytes:
        lower = [i for i, b in enumerate(blocks) if level[i] < len(b.levels) - 1]
        if not lower:
            return head + left_out + tail
        i = max(lower, key=lambda j: sizes[j][level[j]])
        total -= sizes[i][level[i]]
        level[i] += 1
        total += sizes[i][level[i]]
    return head + joined() + tail
