"""Which DNS server and zone casdesired updates, and the TSIG key that signs its updates.

The key's name and algorithm come from YAML; its secret only ever from the environment variable
YAML names. The secret is decoded here and handed to dnspython; it never enters a message.
(dnspython's ``Key.__repr__`` prints the secret, so a key object must never be formatted.)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

import dns.name
import dns.tsig

from casdesired.dns.endpoints import Endpoint, parse_endpoint
from casdesired.dns.errors import DnsError

# HMAC algorithms RFC 8945 defines and dnspython signs with; names as BIND and YAML write them.
ALGORITHMS: dict[str, dns.name.Name] = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}


@dataclass(frozen=True)
class TsigConfig:
    """Management of one zone's array records by RFC 2136 updates signed with a TSIG key."""

    key_name: str
    algorithm: str
    secret_env: str
    """The NAME of the environment variable holding the base64 secret, never the secret."""
    server: str
    """The zone's primary server, an IP (``ip:port`` allowed); updates and checks go there."""
    zone: str
    port: int = 53
    ttl: int = 300
    """TTL of the A records casdesired creates or rewrites."""
    unsigned: bool = False
    """Send updates without TSIG, for zones that accept non-secure updates (Windows DNS
    "Nonsecure and secure"). Anyone who can reach such a server can change such a zone; the key
    fields are then ignored. Off unless the organisation file asks for it."""

    @property
    def signer(self) -> str:
        """Who signs, for messages: the key's name, or that updates are unsigned."""
        return "unsigned updates" if self.unsigned else f"TSIG key {self.key_name}"

    @property
    def endpoint(self) -> Endpoint:
        return parse_endpoint(self.server, default_port=self.port)

    @property
    def zone_name(self) -> dns.name.Name:
        try:
            return dns.name.from_text(self.zone.strip().rstrip(".") + ".")
        except dns.exception.DNSException:
            raise DnsError(f"DNS zone {self.zone!r} is not a valid DNS name") from None


def algorithm_name(algorithm: str) -> dns.name.Name:
    """The TSIG algorithm for a YAML name, or a DnsError listing what is supported."""
    wanted = algorithm.strip().lower().rstrip(".")
    if wanted == "gss-tsig":
        raise DnsError(
            "TSIG algorithm gss-tsig (Windows DNS secure updates) is not supported; "
            "see docs/dns.md for the zone settings casdesired can work with"
        )
    if wanted not in ALGORITHMS:
        raise DnsError(
            f"unknown TSIG algorithm {algorithm!r}; supported: {', '.join(sorted(ALGORITHMS))}"
        )
    return ALGORITHMS[wanted]


def tsig_key(tsig: TsigConfig, environ: Mapping[str, str]) -> dns.tsig.Key | None:
    """Build the signing key from the environment; errors name the variable, never its value.

    None when the configuration asks for unsigned updates.
    """
    if tsig.unsigned:
        return None
    algorithm = algorithm_name(tsig.algorithm)
    raw = environ.get(tsig.secret_env)
    if not raw:
        raise DnsError(
            f"environment variable {tsig.secret_env} is not set; it must hold the base64 "
            f"secret of TSIG key {tsig.key_name}"
        )
    try:
        secret = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DnsError(
            f"environment variable {tsig.secret_env} does not hold a base64 TSIG secret "
            f"(for key {tsig.key_name})"
        ) from None
    if not secret:
        raise DnsError(f"environment variable {tsig.secret_env} holds an empty TSIG secret")
    try:
        name = dns.name.from_text(tsig.key_name.strip().rstrip(".") + ".")
    except dns.exception.DNSException:
        raise DnsError(f"TSIG key name {tsig.key_name!r} is not a valid DNS name") from None
    return dns.tsig.Key(name, secret, algorithm)
