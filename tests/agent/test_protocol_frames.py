"""The response frame as the reconciler reads it: gzip or plain, noise around it, damage."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from casdesired.agent import framing, protocol
from casdesired.errors import ProtocolError

RESPONSE = protocol.Response(
    results=(protocol.Result(id="dbs", ok=True, objects=({"Name": "Ünïcødé DB"},)),),
    host="HQ-CAS01",
)


def test_a_gzip_frame_survives_banners_and_warnings_around_it() -> None:
    stdout = "Welcome banner\r\nWARNING: slow\r\n" + framing.encode_response(RESPONSE) + "\r\n"
    assert framing.decode_response(stdout) == RESPONSE


def test_a_plain_base64_frame_still_decodes() -> None:
    raw = json.dumps(RESPONSE.to_json()).encode("utf-8")
    frame = framing.RESPONSE_BEGIN + base64.b64encode(raw).decode() + framing.RESPONSE_END
    assert framing.decode_response(frame) == RESPONSE


def test_gzip_makes_a_large_answer_much_smaller() -> None:
    objects = tuple(
        {"Name": f"DB{i:05d}", "RpcClientAccessServer": "outlook-hq.contoso.local"}
        for i in range(10_000)
    )
    big = protocol.Response(results=(protocol.Result(id="dbs", ok=True, objects=objects),))
    plain = len(base64.b64encode(json.dumps(big.to_json()).encode()))
    assert len(framing.encode_response(big)) * 5 < plain


def test_a_truncated_gzip_frame_is_a_protocol_error() -> None:
    packed = base64.b64encode(gzip.compress(json.dumps(RESPONSE.to_json()).encode()))
    cut = packed[: len(packed) // 2].decode()
    cut = cut[: len(cut) - len(cut) % 4]
    frame = framing.RESPONSE_BEGIN + framing.GZIP_PREFIX + cut + framing.RESPONSE_END
    with pytest.raises(ProtocolError, match="corrupt"):
        framing.decode_response(frame)


@pytest.mark.parametrize("packed", [True, False])
def test_a_response_nested_too_deeply_is_a_protocol_error_not_a_recursion(packed: bool) -> None:
    """What the far side prints is not trusted: nesting past the decoder's recursion limit is
    a corrupt response like any other, never a RecursionError (a traceback for the user)."""
    raw = ("[" * 100_000 + "]" * 100_000).encode()
    if packed:
        body = framing.GZIP_PREFIX + base64.b64encode(gzip.compress(raw)).decode()
    else:
        body = base64.b64encode(raw).decode()
    frame = framing.RESPONSE_BEGIN + body + framing.RESPONSE_END
    with pytest.raises(ProtocolError, match="corrupt: JSON nested too deeply"):
        framing.decode_response(frame)
