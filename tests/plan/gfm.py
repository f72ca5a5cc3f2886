"""Reading rendered Markdown back as GitHub would: a real CommonMark parser with GFM tables.

markdown-it-py (CommonMark, plus the GFM table and strikethrough rules) parses the comment;
these helpers return what a reader sees: each table as rows of cell texts (escapes resolved,
character references decoded), and the raw HTML the comment carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i] for row in self.rows]


def tokens(text: str) -> list[Token]:
    return PARSER.parse(text)


def visible(inline: Token) -> str:
    """The text a reader sees in an inline token (markup such as ``**`` dropped)."""
    parts = []
    for child in inline.children or ():
        if child.type in ("text", "text_special", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "html_inline":
            parts.append(child.content)
    return "".join(parts)


def tables(text: str) -> list[Table]:
    found: list[Table] = []
    row: list[str] | None = None
    header: list[str] = []
    rows: list[list[str]] = []
    for token in tokens(text):
        if token.type == "table_open":
            header, rows = [], []
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(visible(token))
        elif token.type == "tr_close" and row is not None:
            if not header:
                header = row
            else:
                rows.append(row)
            row = None
        elif token.type == "table_close":
            found.append(Table(header, rows))
    return found


def raw_html(text: str) -> list[str]:
    """Every piece of raw HTML in the comment (blocks and inline)."""
    out = []
    for token in tokens(text):
        if token.type == "html_block":
            out.append(token.content)
        for child in token.children or ():
            if child.type == "html_inline":
                out.append(child.content)
    return out


def html_tags(text: str) -> set[str]:
    """Names of the HTML tags the comment's raw HTML holds (``details``, ``/summary``...)."""
    return {m.lower() for chunk in raw_html(text) for m in re.findall(r"<\s*(/?[\w-]+)", chunk)}


def source_cells(line: str) -> int:
    """Cells of a table row in the Markdown source: pipes not escaped by a backslash."""
    return re.sub(r"\\.", "", line).strip().strip("|").count("|") + 1
