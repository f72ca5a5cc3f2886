"""A real BIND 9 (``named``) on loopback for the DNS tests, as a context manager.

It writes a named.conf and zone files into a temporary directory, starts ``named`` in the
foreground on 127.0.0.1 and a free port (UDP and TCP), waits until it answers, and stops it on
exit. The zones exercise every outcome casdesired must explain:

* ``contoso.local`` — the estate; updatable with the TSIG key ``casdesired-test``;
* ``readonly.local`` — serves answers but refuses every update (policy refusal);
* ``refused.local`` — refuses every query (``allow-query { none; }``) → REFUSED;
* ``broken.local`` — its zone file does not load → SERVFAIL;
* ``open.local`` — takes unsigned updates from loopback (like a Windows "Nonsecure" zone).

Nothing listens beyond loopback, rndc is off (``controls { };``), recursion is off, and the
process is killed if it does not stop when asked.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

NAMED_CANDIDATES = ("/usr/sbin/named", "/usr/local/sbin/named")
KEY_NAME = "casdesired-test"
KEY_ALGORITHM = "hmac-sha256"
ZONE = "contoso.local"
READONLY_ZONE = "readonly.local"
REFUSED_ZONE = "refused.local"
BROKEN_ZONE = "broken.local"
OPEN_ZONE = "open.local"

# The estate the tests check: names, and what BIND answers for them.
CONTOSO_RECORDS = {
    "outlook-hq": ["10.1.0.50"],  # correct: the HQ VIP
    "outlook-br": ["10.2.0.99"],  # wrong: the VIP is 10.2.0.50
    "outlook-dr": ["10.3.0.11"],  # points at the server dr-cas01 instead of the VIP
    "outlook-rr": ["10.1.0.50", "10.1.0.12"],  # VIP plus a server (round robin)
    "hq-cas01": ["10.1.0.11"],
    "hq-cas02": ["10.1.0.12"],
    "dr-cas01": ["10.3.0.11"],
    "br-cas01": ["10.2.0.11"],
}


def find_named() -> str | None:
    """The ``named`` binary, or None when BIND is not installed.

    ``CASDESIRED_NAMED`` names a binary elsewhere (e.g. a BIND built under /opt); when set, it
    is the only candidate.
    """
    chosen = os.environ.get("CASDESIRED_NAMED")
    if chosen is not None:
        return chosen if os.access(chosen, os.X_OK) else None
    found = shutil.which("named")
    if found:
        return found
    return next((c for c in NAMED_CANDIDATES if os.access(c, os.X_OK)), None)


@dataclass(frozen=True)
class BindServer:
    """A running ``named``: where it listens and the TSIG key it accepts for updates."""

    host: str
    port: int
    key_name: str
    key_algorithm: str
    key_secret: str
    directory: Path

    @property
    def address(self) -> str:
        """``ip:port``, the form casdesired accepts for a resolver."""
        return f"{self.host}:{self.port}"


def free_port() -> int:
    """A loopback port free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port for both UDP and TCP")


def _zone_file(zone: str, records: dict[str, list[str]]) -> str:
    lines = [
        "$TTL 300",
        f"@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300",
        f"@ IN NS ns1.{zone}.",
        "ns1 IN A 127.0.0.1",
    ]
    for name, addresses in records.items():
        lines.extend(f"{name} IN A {address}" for address in addresses)
    return "\n".join(lines) + "\n"


def _named_conf(root: Path, port: int, secret: str) -> str:
    return f"""
options {{
    directory "{root}";
    pid-file "{root}/named.pid";
    session-keyfile "{root}/session.key";
    managed-keys-directory "{root}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm {KEY_ALGORITHM}; secret "{secret}"; }};
zone "{ZONE}" {{
    type primary; file "{ZONE}.zone";
    allow-update {{ key "{KEY_NAME}"; }};
}};
zone "{READONLY_ZONE}" {{
    type primary; file "{READONLY_ZONE}.zone";
    allow-update {{ none; }};
}};
zone "{REFUSED_ZONE}" {{
    type primary; file "{REFUSED_ZONE}.zone";
    allow-query {{ none; }};
}};
zone "{OPEN_ZONE}" {{
    type primary; file "{OPEN_ZONE}.zone";
    allow-update {{ 127.0.0.1; }};
}};
zone "{BROKEN_ZONE}" {{
    type primary; file "{BROKEN_ZONE}.zone";
}};
"""


def _answers(host: str, port: int) -> bool:
    query = dns.message.make_query(f"{ZONE}.", "SOA")
    try:
        response = dns.query.udp(query, host, port=port, timeout=0.2)
    except (OSError, dns.exception.Timeout):
        return False
    return response.rcode() == dns.rcode.NOERROR


@contextmanager
def running_bind(named: str, *, start_timeout: float = 15.0) -> Iterator[BindServer]:
    """Start ``named`` with the test zones on a free loopback port; stop it afterwards."""
    secret = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    with tempfile.TemporaryDirectory(prefix="casdesired-bind-") as tmp:
        root = Path(tmp)
        (root / f"{ZONE}.zone").write_text(_zone_file(ZONE, CONTOSO_RECORDS))
        (root / f"{READONLY_ZONE}.zone").write_text(
            _zone_file(READONLY_ZONE, {"outlook": ["10.9.0.50"]})
        )
        (root / f"{REFUSED_ZONE}.zone").write_text(
            _zone_file(REFUSED_ZONE, {"outlook": ["10.8.0.50"]})
        )
        (root / f"{OPEN_ZONE}.zone").write_text(_zone_file(OPEN_ZONE, {}))
        # A zone file that cannot load: a record with no data.
        (root / f"{BROKEN_ZONE}.zone").write_text("$TTL 300\n@ IN SOA\n")
        port = free_port()
        conf = root / "named.conf"
        conf.write_text(_named_conf(root, port, secret))
        log = root / "named.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [named, "-g", "-c", str(conf)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=root,
            )
            try:
                deadline = time.monotonic() + start_timeout
                while not _answers("127.0.0.1", port):
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"named did not start on 127.0.0.1:{port}:\n"
                            + log.read_text(errors="replace")[-4000:]
                        )
                    time.sleep(0.05)
                yield BindServer(
                    host="127.0.0.1",
                    port=port,
                    key_name=KEY_NAME,
                    key_algorithm=KEY_ALGORITHM,
                    key_secret=secret,
                    directory=root,
                )
            finally:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that takes UDP packets and TCP connections and never answers.

    A dead resolver or primary: queries to it can only time out.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                tcp.listen(8)
                yield port
                return
    raise RuntimeError("no free loopback port for a silent server")
