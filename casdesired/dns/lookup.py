"""Ask one DNS server for a name's A records and say plainly what came back.

Each outcome a resolver can give — an answer, NXDOMAIN, no A record, SERVFAIL, REFUSED, silence,
an unreachable server — is its own :class:`Status`, because each needs a different fix.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from casdesired.dns.endpoints import Endpoint, parse_endpoint
from casdesired.dns.errors import DnsLookupError

# A CNAME chain longer than this inside one answer is a loop or a misconfiguration.
_MAX_CNAME_HOPS = 16


class Status(str, Enum):
    OK = "ok"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    OTHER = "other"


# What failed to reach a verdict about the name (as opposed to a verdict that it is absent).
FAILURES = frozenset(
    {Status.SERVFAIL, Status.REFUSED, Status.TIMEOUT, Status.UNREACHABLE, Status.OTHER}
)


@dataclass(frozen=True)
class Lookup:
    """One server's answer for one name."""

    name: str
    server: Endpoint
    status: Status
    addresses: frozenset[str] = frozenset()
    detail: str = ""
    timeout: float = 0.0

    def describe(self) -> str:
        """A sentence for an administrator, naming the name and the server."""
        where = f"DNS server {self.server}"
        match self.status:
            case Status.OK:
                return f"{self.name} resolves to {', '.join(sorted_addresses(self.addresses))}"
            case Status.NXDOMAIN:
                return f"{self.name} does not exist (NXDOMAIN from {where})"
            case Status.NODATA:
                return f"{self.name} exists but has no A record ({where}{self.detail})"
            case Status.SERVFAIL:
                return (
                    f"{where} failed to answer for {self.name} (SERVFAIL: the server could not "
                    "load or reach the zone)"
                )
            case Status.REFUSED:
                return (
                    f"{where} refused to answer for {self.name} (REFUSED: it does not serve "
                    "that zone to this client, or does not allow queries from it)"
                )
            case Status.TIMEOUT:
                return f"{where} did not answer for {self.name} within {self.timeout:g} s"
            case Status.UNREACHABLE:
                return f"{where} could not be reached for {self.name}: {self.detail}"
            case _:
                return f"{where} gave an unusable answer for {self.name}: {self.detail}"


def sorted_addresses(addresses: frozenset[str] | set[str]) -> list[str]:
    """Addresses in numeric order, so messages and plans are stable."""
    return sorted(addresses, key=_address_order)


def _address_order(address: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(address)
    return parsed.version, int(parsed)


def to_dns_name(name: str) -> dns.name.Name:
    """Parse a host name, with a clear error instead of dnspython's."""
    try:
        return dns.name.from_text(name.strip().rstrip(".") + ".")
    except dns.exception.DNSException as exc:
        raise DnsLookupError(f"{name!r} is not a valid DNS name: {exc}") from None


def _a_records(response: dns.message.Message, qname: dns.name.Name) -> tuple[set[str], str]:
    """A addresses for qname, following CNAMEs inside the answer; plus the CNAME chain seen."""
    current = qname
    chain: list[str] = []
    for _ in range(_MAX_CNAME_HOPS):
        a_set = response.get_rrset(response.answer, current, dns.rdataclass.IN, dns.rdatatype.A)
        if a_set is not None:
            return {rdata.to_text() for rdata in a_set}, " -> ".join(chain)
        cname = response.get_rrset(response.answer, current, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            break
        current = next(iter(cname)).target
        chain.append(current.to_text(omit_final_dot=True))
    return set(), " -> ".join(chain)


def lookup_a(
    name: str, server: Endpoint, *, timeout: float = 3.0, recursion: bool = True
) -> Lookup:
    """Query ``server`` for ``name``'s A records (UDP, TCP when truncated); never raises for
    what the server answers, only for a name that is not a DNS name."""
    qname = to_dns_name(name)
    shown = qname.to_text(omit_final_dot=True)
    query = dns.message.make_query(qname, dns.rdatatype.A)
    if not recursion:
        query.flags &= ~dns.flags.RD
    try:
        response, _ = dns.query.udp_with_fallback(
            query, server.host, port=server.port, timeout=timeout
        )
    except dns.exception.Timeout:
        return Lookup(shown, server, Status.TIMEOUT, timeout=timeout)
    except OSError as exc:
        return Lookup(shown, server, Status.UNREACHABLE, detail=exc.strerror or str(exc))
    except dns.exception.DNSException as exc:
        return Lookup(shown, server, Status.OTHER, detail=str(exc))
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Lookup(shown, server, Status.NXDOMAIN)
    if rcode == dns.rcode.SERVFAIL:
        return Lookup(shown, server, Status.SERVFAIL)
    if rcode == dns.rcode.REFUSED:
        return Lookup(shown, server, Status.REFUSED)
    if rcode != dns.rcode.NOERROR:
        return Lookup(shown, server, Status.OTHER, detail=f"rcode {dns.rcode.to_text(rcode)}")
    addresses, chain = _a_records(response, qname)
    if not addresses:
        detail = f"; it is an alias of {chain} with no A record" if chain else ""
        return Lookup(shown, server, Status.NODATA, detail=detail)
    return Lookup(shown, server, Status.OK, frozenset(addresses))


def resolve_a(
    name: str, *, resolvers: Sequence[str], port: int = 53, timeout: float = 3.0
) -> set[str]:
    """The A addresses of ``name``, as a stub resolver would find them.

    Resolvers are tried in order; the first that gives a verdict wins. NXDOMAIN or no A record
    is a verdict (raised at once); SERVFAIL, REFUSED, silence or an unreachable server moves on
    to the next resolver. Raises :class:`DnsLookupError` naming every failure.
    """
    if not resolvers:
        raise DnsLookupError(f"cannot resolve {name}: no DNS resolvers are configured")
    failures: list[str] = []
    for text in resolvers:
        lookup = lookup_a(name, parse_endpoint(text, default_port=port), timeout=timeout)
        if lookup.status is Status.OK:
            return set(lookup.addresses)
        if lookup.status not in FAILURES:
            raise DnsLookupError(lookup.describe())
        failures.append(lookup.describe())
    raise DnsLookupError("; ".join(failures))
