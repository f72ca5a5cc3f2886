"""Parsing JSON from files and peers that casdesired does not control.

Python's decoder recurses once per nesting level, so a damaged or hostile document a few
thousand levels deep raises RecursionError — which no caller expects from a parser, and which
would reach the user as a traceback. :func:`loads` turns it into the ``ValueError`` every
caller already handles for malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any


class NestedTooDeeply(ValueError):
    """The JSON document is nested deeper than Python's recursion limit allows."""

    def __init__(self) -> None:
        super().__init__("JSON nested too deeply")


def loads(text: str | bytes) -> Any:
    """``json.loads``, with excessive nesting a :class:`NestedTooDeeply` (a ``ValueError``)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise NestedTooDeeply() from None
