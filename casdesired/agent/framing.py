"""How requests and responses travel as text, whichever way the agent is delivered.

Both the reconciler (``casdesired.transport``) and the lab (``casdesired.lab``) import this
module, so the two ends cannot drift apart. How the agent script and the request reach the
host is a *delivery* (:mod:`casdesired.agent.delivery`): on stdin, or in files.

* The request is base64 of UTF-8 JSON (:func:`encode_request`). Base64 keeps it pure ASCII, so
  no console codepage can damage a non-ASCII name, and values travel as *data*: the agent
  splats them into cmdlets and never splices them into script text.
* The agent writes one line to stdout: :data:`RESPONSE_BEGIN` + :data:`GZIP_PREFIX` + base64
  of gzip of UTF-8 JSON + :data:`RESPONSE_END`. Anything else on stdout (banners, warnings,
  stray output) is ignored, so it cannot corrupt the result. Gzip because WS-Man caps each
  Receive envelope near 150 KB: JSON of a large organisation shrinks about tenfold, so the
  answer takes a near-constant number of round trips. (A frame without the prefix is plain
  base64 JSON; both decode.)
* While it runs, the agent writes a *progress line* on stdout as it starts each invocation and
  at each poll of an ``until`` wait (:func:`progress_line`): the invocation's 1-based position
  in the request, and for a poll the whole seconds left before the wait's timeout. Only
  numbers: nothing of the request (no name, no id) is echoed. A line is flushed at once, so a
  Receive made while the agent runs carries it; :class:`ProgressReader` picks the lines out of
  stdout as it arrives, in pieces cut anywhere. The response's decoding ignores them like any
  other output.
* PowerShell is started as ``powershell.exe`` with :data:`POWERSHELL_ARGS` and a fixed
  bootstrap as ``-EncodedCommand`` (base64 of UTF-16LE: :func:`encode_command`), which makes a
  script about 2.7 times longer on the command line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

from casdesired import jsontext
from casdesired.agent.protocol import JsonValue, Request, Response
from casdesired.errors import ProtocolError

RESPONSE_BEGIN = "<casdesired-response>"
RESPONSE_END = "</casdesired-response>"
GZIP_PREFIX = "gzip:"
MAX_RESPONSE_BYTES = 1 << 30
"""Refuse a response that inflates past this: nothing casdesired asks for comes near it."""

PROGRESS_OPEN = '<casdesired-progress invocation="'
PROGRESS_LEFT = '" left="'
PROGRESS_CLOSE = '"/>'
_PROGRESS_LINE = re.compile(rb'<casdesired-progress invocation="([1-9][0-9]{0,8})"'
                            rb'(?: left="([0-9]{1,9})")?/>')
MAX_PROGRESS_LINE = 80
"""Longer than any progress line (with its line end): a longer line is something else."""

POWERSHELL_EXE = "powershell.exe"
POWERSHELL_ARGS = ("-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass")


def encode_command(script: str) -> str:
    """``-EncodedCommand`` form of a script: base64 of UTF-16LE, as powershell.exe expects.

    Each character becomes two bytes and every three bytes four characters: the command line
    carries 8/3 (about 2.7) characters per character of script."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def decode_command(encoded: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"not a valid -EncodedCommand: {exc}") from None


def request_json(request: Request) -> bytes:
    """The request as compact UTF-8 JSON (what :func:`encode_request` base64-encodes)."""
    text = json.dumps(request.to_json(), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def encode_request(request: Request) -> str:
    """The request as the agent takes it: base64 of UTF-8 JSON, pure ASCII."""
    return base64.b64encode(request_json(request)).decode("ascii")


def decode_request(text: str, what: str = "request") -> Request:
    """The other side of :func:`encode_request` (ProtocolError when it is not one)."""
    data = _unb64json(text, what)
    if not isinstance(data, dict):
        raise ProtocolError(f"the {what} is not an object")
    try:
        return Request.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"the {what} is malformed: {exc}") from None


def _unb64json(text: str, what: str) -> Any:
    try:
        return jsontext.loads(base64.b64decode(text.strip(), validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the {what} is corrupt: {exc}") from None


def gzip(data: bytes) -> bytes:
    """Gzip with mtime 0, so the same input always packs to the same bytes."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def gunzip(packed: bytes, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Inflate gzip data; ValueError when it is truncated or inflates past ``limit``."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(packed, limit)
    except zlib.error as exc:
        raise ValueError(str(exc)) from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("truncated, or larger than casdesired accepts")
    return raw


def encode_response(response: Response) -> str:
    """One stdout line, as the agent writes it (gzip, then base64)."""
    raw = json.dumps(response.to_json(), ensure_ascii=False, separators=(",", ":"))
    packed = base64.b64encode(gzip(raw.encode("utf-8"))).decode("ascii")
    return f"{RESPONSE_BEGIN}{GZIP_PREFIX}{packed}{RESPONSE_END}"


def _gunzip_json(text: str, what: str) -> JsonValue:
    try:
        raw = gunzip(base64.b64decode(text.strip(), validate=True))
        return jsontext.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the {what} is corrupt: {exc}") from None


def decode_response(stdout: str) -> Response:
    """Find the framed response in whatever the far side printed."""
    begin = stdout.rfind(RESPONSE_BEGIN)
    if begin < 0:
        raise ProtocolError("the agent printed no response")
    end = stdout.find(RESPONSE_END, begin)
    if end < 0:
        raise ProtocolError("the agent's response was cut off")
    payload = stdout[begin + len(RESPONSE_BEGIN) : end]
    if payload.startswith(GZIP_PREFIX):
        data = _gunzip_json(payload[len(GZIP_PREFIX) :], "agent's response")
    else:
        data = _unb64json(payload, "agent's response")
    if not isinstance(data, dict):
        raise ProtocolError("the agent's response is not an object")
    try:
        return Response.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"the agent's response is malformed: {exc}") from None


# --- progress lines --------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentProgress:
    """One progress line: the agent started (``left`` None) or polled (``left``: whole seconds
    before the wait's timeout) the request's ``invocation``-th invocation (1-based)."""

    invocation: int
    left: int | None = None


def progress_line(invocation: int, left: int | None = None) -> str:
    """The line (without its line end) the agent writes for :class:`AgentProgress`."""
    seconds = "" if left is None else f"{PROGRESS_LEFT}{max(0, left)}"
    return f"{PROGRESS_OPEN}{invocation}{seconds}{PROGRESS_CLOSE}"


class ProgressReader:
    """Picks progress lines out of a command's stdout, fed in pieces as Receives bring them.

    A line counts only when it is whole and holds nothing but a progress line (surrounding
    blanks and its ``\r`` aside); anything else — the response, host output, a line cut
    between two Receives until its end arrives — is left alone. Memory stays small whatever
    the output: a line longer than :data:`MAX_PROGRESS_LINE` is not kept."""

    def __init__(self) -> None:
        self._tail = b""
        self._long = False
        """The current line is already too long to be a progress line."""

    def feed(self, data: bytes) -> list[AgentProgress]:
        marks: list[AgentProgress] = []
        *whole, rest = data.split(b"\n")
        for index, part in enumerate(whole):
            if index == 0:
                line: bytes | None = None if self._long else self._tail + part
                self._tail, self._long = b"", False
            else:
                line = part
            found = _PROGRESS_LINE.fullmatch(line.strip()) if line is not None else None
            if found is not None:
                left = found.group(2)
                marks.append(AgentProgress(int(found.group(1)),
                                           int(left) if left is not None else None))
        if not self._long:
            self._tail += rest
            if len(self._tail) > MAX_PROGRESS_LINE:
                self._tail, self._long = b"", True
        return marks
