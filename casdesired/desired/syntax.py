"""Syntax checks the desired-state rules share: FQDNs, IP addresses, resolvers, URLs."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_fqdn(text: str) -> bool:
    """A DNS host name with at least two labels (a trailing dot is allowed)."""
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(_LABEL.match(x) for x in labels)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_resolver(text: str) -> bool:
    """An IP address, or ``IP:port`` / ``[IPv6]:port`` (tests point at a server on a free port)."""
    if is_ip(text):
        return True
    match = re.fullmatch(
        r"\[(?P<v6>[^\]]+)\]:(?P<port>\d{1,5})|(?P<v4>[0-9.]+):(?P<p4>\d{1,5})", text
    )
    if not match:
        return False
    address = match.group("v6") or match.group("v4")
    port = int(match.group("port") or match.group("p4"))
    return is_ip(address) and 0 < port < 65536


def url_host(text: str) -> str | None:
    """The host of an http(s) URL, or None when ``text`` is not one."""
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host


# --- the organisation file -----------------------------------------------------------------
