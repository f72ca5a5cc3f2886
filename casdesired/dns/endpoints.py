"""Where a DNS server listens: ``10.0.0.10``, ``10.0.0.10:5353``, ``[fd00::1]:53`` or ``::1``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from casdesired.dns.errors import DnsError


@dataclass(frozen=True)
class Endpoint:
    """One DNS server: an IP address and a port."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        if self.port == 53:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_endpoint(text: str, *, default_port: int = 53) -> Endpoint:
    """Parse a resolver as written in YAML; a port in the text beats ``default_port``.

    Resolvers are IP addresses, not names: resolving the resolver would need a resolver.
    """
    spec = text.strip()
    host, port_text = spec, ""
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise DnsError(f"DNS server {text!r} is not an address: write [IPv6]:port")
        port_text = rest[1:]
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise DnsError(
            f"DNS server {text!r} is not an IP address (write e.g. 10.0.0.10 or 10.0.0.10:53)"
        ) from None
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise DnsError(f"DNS server {text!r} has an invalid port {port_text!r}")
        port = int(port_text)
    return Endpoint(str(address), port)
