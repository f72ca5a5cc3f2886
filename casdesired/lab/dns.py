"""The lab's DNS server: authoritative for the lab organisation's zone, on loopback only.

It answers A queries from the lab organisation's ``dns_records`` (read at each query, so a change
through the control API shows at once): the addresses of a name it holds, NOERROR with no answer
for another type at such a name, NXDOMAIN for a name in the zone it does not hold, and REFUSED
for any other zone — like an authoritative server with recursion off. The addresses are data in
answers only; nothing here ever contacts them.

UDP and TCP on the same free port, each served by a daemon thread; a context manager, and the
threads die with the process, so the server stops by itself.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import struct
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

LOOPBACK = "127.0.0.1"
TTL = 300
"""TTL of the answers (seconds); a resolver in front of the lab would cache them this long."""
_MAX_TCP_MESSAGE = 65535


@runtime_checkable
class DnsRecordSource(Protocol):
    """Who holds the lab's records: the lab organisation (``casdesired.lab.exchange``)."""

    @property
    def dns_zone(self) -> str:
        """The zone the lab is authoritative for (the organisation's AD domain)."""
        ...

    def dns_records(self) -> dict[str, list[str]]:
        """FQDN (lower case, no trailing dot) -> its IPv4 addresses."""
        ...

    def set_dns_records(self, records: Mapping[str, Sequence[str]]) -> None:
        """Replace every record (validated first: bad records change nothing)."""
        ...


def normalise_records(records: Any) -> dict[str, list[str]]:
    """Validate records as given in the state file or the control API; ValueError if bad."""
    if not isinstance(records, Mapping):
        raise ValueError("dns_records must map each name to a list of IPv4 addresses")
    result: dict[str, list[str]] = {}
    for name, addresses in records.items():
        if not isinstance(name, str) or not name.strip(".").strip():
            raise ValueError(f"dns_records: {name!r} is not a host name")
        try:
            dns.name.from_text(name.strip().rstrip(".") + ".")
        except dns.exception.DNSException:
            raise ValueError(f"dns_records: {name!r} is not a valid DNS name") from None
        if not isinstance(addresses, list) or not addresses:
            raise ValueError(f"dns_records: {name} needs a non-empty list of IPv4 addresses")
        shown = []
        for address in addresses:
            try:
                shown.append(str(ipaddress.IPv4Address(str(address))))
            except ValueError:
                raise ValueError(
                    f"dns_records: {name}: {address!r} is not an IPv4 address"
                ) from None
        result[name.strip().rstrip(".").lower()] = sorted(
            set(shown), key=lambda a: int(ipaddress.IPv4Address(a))
        )
    return dict(sorted(result.items()))


def answer(
    query: dns.message.Message, zone: str, records: Mapping[str, Sequence[str]]
) -> dns.message.Message:
    """The response to one query, as an authoritative server for ``zone`` holding ``records``."""
    response = dns.message.make_response(query)
    response.flags &= ~dns.flags.RA  # no recursion here
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
        response.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY
                           else dns.rcode.FORMERR)
        return response
    question = query.question[0]
    origin = dns.name.from_text(zone.strip().rstrip(".") + ".")
    if question.rdclass != dns.rdataclass.IN or not question.name.is_subdomain(origin):
        response.set_rcode(dns.rcode.REFUSED)
        return response
    response.flags |= dns.flags.AA
    key = question.name.to_text(omit_final_dot=True).lower()
    addresses = records.get(key)
    if addresses is None:
        if question.name != origin:  # the apex exists (it holds SOA/NS), just no A record
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        response.answer.append(
            dns.rrset.from_text_list(question.name, TTL, "IN", "A", list(addresses))
        )
    return response


class _Server:
    """What the request handlers reach: the record source and the zone."""

    def __init__(self, source: DnsRecordSource) -> None:
        self.source = source

    def reply(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _formerr(wire)
        try:
            response = answer(query, self.source.dns_zone, self.source.dns_records())
        except Exception:  # a lab bug must answer SERVFAIL, not kill the thread
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
        wire_out: bytes = response.to_wire()
        return wire_out


def _formerr(wire: bytes) -> bytes | None:
    """FORMERR echoing the query id, when at least a header arrived (else stay silent)."""
    if len(wire) < 12:
        return None
    query_id, flags = struct.unpack("!HH", wire[:4])
    # QR set, opcode copied, RCODE FORMERR; no sections.
    reply_flags = 0x8000 | (flags & 0x7800) | dns.rcode.FORMERR
    return struct.pack("!HHHHHH", query_id, reply_flags, 0, 0, 0, 0)


class _UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        wire, sock = self.request
        reply = cast(_ThreadingUdp, self.server).dns.reply(wire)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(5.0)
        try:
            while True:
                header = _read_exact(conn, 2)
                if header is None:
                    return
                wire = _read_exact(conn, struct.unpack("!H", header)[0])
                if wire is None:
                    return
                reply = cast(_ThreadingTcp, self.server).dns.reply(wire)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply[:_MAX_TCP_MESSAGE])
        except OSError:
            return


def _read_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class _ThreadingUdp(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    dns: _Server


class _ThreadingTcp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    dns: _Server


class LabDnsServer:
    """The lab's DNS server on 127.0.0.1 and a free port (UDP and TCP); a context manager.

    ::

        with LabDnsServer(organisation) as server:
            resolvers = [server.address]      # "127.0.0.1:PORT"
    """

    def __init__(self, source: DnsRecordSource, *, port: int = 0) -> None:
        self.source = source
        self.port = port
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the form a resolver takes in the organisation file."""
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> LabDnsServer:
        if self._servers:
            return self
        tcp, udp = self._bind()
        handler = _Server(self.source)
        tcp.dns = udp.dns = handler
        for server in (tcp, udp):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.1},
                name=f"lab-dns-{self.port}", daemon=True,
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def _bind(self) -> tuple[_ThreadingTcp, _ThreadingUdp]:
        """TCP on a free (or the given) port, then UDP on the same port; retry if UDP's is taken."""
        last: OSError | None = None
        for _ in range(1 if self.port else 50):
            tcp = _ThreadingTcp((LOOPBACK, self.port), _TcpHandler)
            port = int(tcp.server_address[1])
            try:
                udp = _ThreadingUdp((LOOPBACK, port), _UdpHandler)
            except OSError as exc:
                tcp.server_close()
                last = exc
                continue
            self.port = port
            return tcp, udp
        raise last or OSError("no free loopback port for the lab's DNS server")

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> LabDnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
