"""The rules inside the organisation file: connection consistency, credentials, the double hop,
resolvers and DNS management.

Each rule has a stable id (``Finding.rule``); rules never stop at the first problem.
"""

from __future__ import annotations

import re

from casdesired.desired.build import _get
from casdesired.desired.config import LAB_ENDPOINT, LAB_RESOLVER, url_has_credentials
from casdesired.desired.syntax import is_fqdn, is_resolver, url_host
from casdesired.desired.yamlsource import Document, YamlPath
from casdesired.findings import Finding, Location, Severity


def _error(location: Location, rule: str, message: str) -> Finding:
    return Finding.at(location, Severity.ERROR, message, rule)


def _warning(location: Location, rule: str, message: str) -> Finding:
    return Finding.at(location, Severity.WARNING, message, rule)


def check_organisation(document: Document) -> list[Finding]:
    """Rules inside the organisation file (connection consistency, resolver syntax)."""
    data = document.data
    found: list[Finding] = []
    conn = _get(data, "connection")
    if not isinstance(conn, dict):
        return _check_dns(document, found, is_lab=False)
    endpoint = _get(conn, "endpoint")
    at = document.location
    is_lab = endpoint == LAB_ENDPOINT
    if isinstance(endpoint, str) and not is_lab and url_has_credentials(endpoint):
        # A password pasted into the URL would reach every message and plan that names the
        # endpoint. Refuse it, and do not print the value.
        found.append(
            _error(
                at(("connection", "endpoint")),
                "endpoint-has-credentials",
                "connection.endpoint carries credentials (user:password@host) — remove them "
                "from the file and name environment variables under connection.credentials; "
                "the value was not printed",
            )
        )
    elif isinstance(endpoint, str) and not is_lab and url_host(endpoint) is None:
        found.append(
            _error(
                at(("connection", "endpoint")),
                "endpoint-invalid",
                f"connection.endpoint must be 'lab' or a WinRM URL such as "
                f"https://ex01.contoso.local:5986/wsman, not {endpoint!r}",
            )
        )
    mode, uri = _get(conn, "exchange", "mode"), _get(conn, "exchange", "uri")
    transport = _get(conn, "transport")
    transport = transport if isinstance(transport, str) else "ntlm"
    found.extend(_check_double_hop(document, conn, mode, transport))
    if isinstance(uri, str) and url_has_credentials(uri):
        found.append(
            _error(
                at(("connection", "exchange", "uri")),
                "endpoint-has-credentials",
                "connection.exchange.uri carries credentials (user:password@host) — remove "
                "them; the remote session uses connection.credentials; the value was not printed",
            )
        )
    elif isinstance(uri, str) and url_host(uri) is None:
        found.append(
            _error(
                at(("connection", "exchange", "uri")),
                "uri-syntax",
                f"connection.exchange.uri is not an http(s) URL: {uri!r}",
            )
        )
    elif isinstance(uri, str) and mode == "snapin":
        found.append(
            _warning(
                at(("connection", "exchange", "uri")),
                "exchange-uri-unused",
                "connection.exchange.uri is used only with mode: remote",
            )
        )
    if not is_lab:
        found.extend(_check_credentials(document, conn))
    if "lab" in conn and not is_lab:
        found.append(
            _warning(
                at(("connection", "lab"), key=True),
                "lab-settings-unused",
                "connection.lab applies only with endpoint: lab; it is ignored",
            )
        )
    if (
        _get(conn, "transport") == "basic"
        and isinstance(endpoint, str)
        and endpoint.lower().startswith("http://")
    ):
        found.append(
            _warning(
                at(("connection", "transport")),
                "basic-over-http",
                "Basic authentication over http:// sends the password base64-encoded in clear "
                "text; Windows refuses it unless the WinRM service allows unencrypted traffic "
                "(AllowUnencrypted): use https:// (port 5986) or transport ntlm/kerberos",
            )
        )
    if _get(conn, "tls", "validate") is False:
        found.append(
            _warning(
                at(("connection", "tls", "validate")),
                "tls-validation-off",
                "TLS certificate validation is off: anyone on the path can impersonate "
                "the server and receive the credentials",
            )
        )
    return _check_dns(document, found, is_lab=is_lab)


def _check_double_hop(
    document: Document, conn: dict[str, object], mode: object, transport: str
) -> list[Finding]:
    """What a logon that cannot delegate cannot do (shared/domain/exchange2010-field.md §1).

    Inside a WinRM session authenticated with NTLM, Basic or Kerberos (without delegation)
    nothing can reach a third machine as the user: the Exchange snap-in's bind to a domain
    controller fails, and so would the agent's own second hops (the /PowerShell session, the
    NLB nodes) unless it has the password to pass inside the session.
    """
    found: list[Finding] = []
    if mode == "snapin" and transport != "credssp":
        found.append(
            _error(
                document.location(("connection", "exchange", "mode")),
                "exchange-snapin-double-hop",
                f"connection.exchange.mode 'snapin' needs transport credssp: inside a WinRM "
                f"session authenticated with {transport}, the Exchange snap-in binds to Active "
                "Directory as you — a second hop that logon cannot make, so its cmdlets fail. "
                "Use mode: remote (Exchange's supported /PowerShell session, opened with your "
                "credentials inside the session), or transport: credssp (docs/connecting.md)",
            )
        )
    credentials = _get(conn, "credentials")
    has_password = isinstance(credentials, dict) and "password_env" in credentials
    if transport == "kerberos" and not has_password:
        place: YamlPath = (
            ("connection", "credentials") if credentials is not None else ("connection",)
        )
        found.append(
            _error(
                document.location(place, key=True),
                "kerberos-needs-password",
                "transport 'kerberos' needs connection.credentials.password_env too: a Kerberos "
                "ticket logs on to the endpoint, but the agent's second hops (the Exchange "
                "/PowerShell session, the NLB nodes) need your password passed inside the "
                "session — a logon without delegation cannot make them",
            )
        )
    return found


_NEEDED_CREDENTIALS = {
    "basic": ("username_env", "password_env"),
    "ntlm": ("username_env", "password_env"),
    "credssp": ("username_env", "password_env"),
    "certificate": ("cert_pem_env", "cert_key_env"),
    "kerberos": (),  # a ticket from kinit is enough; a user/password pair is optional
}


def _check_credentials(document: Document, conn: dict[str, object]) -> list[Finding]:
    transport = _get(conn, "transport")
    needed = _NEEDED_CREDENTIALS.get(transport, ()) if isinstance(transport, str) else ()
    credentials = _get(conn, "credentials")
    have = credentials if isinstance(credentials, dict) else {}
    missing = [k for k in needed if k not in have]
    if not missing:
        return []
    place: YamlPath = ("connection", "credentials") if credentials is not None else ("connection",)
    return [
        _error(
            document.location(place, key=True),
            "credentials-incomplete",
            f"transport '{transport}' needs connection.credentials."
            + " and ".join(missing)
            + " (names of environment variables)",
        )
    ]


def _check_dns(document: Document, found: list[Finding], *, is_lab: bool) -> list[Finding]:
    """Resolver syntax ('lab' only with endpoint: lab, internal only) and dns.management."""
    for key in ("resolvers", "external_resolvers"):
        entries = _get(document.data, "dns", key)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, str) and entry.strip() == LAB_RESOLVER:
                if key == "resolvers" and is_lab:
                    continue
                why = (
                    "the lab has no public DNS" if key == "external_resolvers"
                    else "it needs connection.endpoint: lab"
                )
                found.append(
                    _error(
                        document.location(("dns", key, index)),
                        "dns-lab-resolver",
                        f"dns.{key}[{index}] 'lab' means the embedded lab's DNS server, and "
                        f"{why}",
                    )
                )
            elif isinstance(entry, str) and not is_resolver(entry.strip()):
                found.append(
                    _error(
                        document.location(("dns", key, index)),
                        "ip-syntax",
                        f"dns.{key}[{index}] is not an IP address (or IP:port): {entry!r}",
                    )
                )
    return found + _check_management(document)


def _check_management(document: Document) -> list[Finding]:
    """dns.management: a usable primary, zone and key (unless updates are unsigned)."""
    data = _get(document.data, "dns", "management")
    if not isinstance(data, dict):
        return []
    found: list[Finding] = []
    at = document.location
    server, zone = data.get("server"), data.get("zone")
    if isinstance(server, str) and not is_resolver(server.strip()):
        found.append(
            _error(
                at(("dns", "management", "server")),
                "ip-syntax",
                f"dns.management.server must be the zone primary's IP address (or IP:port), "
                f"not {server!r}",
            )
        )
    if isinstance(zone, str) and not is_fqdn(zone.strip()):
        found.append(
            _error(at(("dns", "management", "zone")), "fqdn-syntax",
                   f"dns.management.zone is not a DNS zone name: {zone!r}")
        )
    key_name = data.get("key_name")
    if isinstance(key_name, str) and not is_fqdn(key_name.strip()) and not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9-]{0,62}", key_name.strip()
    ):
        found.append(
            _error(at(("dns", "management", "key_name")), "bad-value",
                   f"dns.management.key_name is not a TSIG key name: {key_name!r}")
        )
    if data.get("unsigned") is not True:
        missing = [k for k in ("key_name", "secret_env") if k not in data]
        if missing:
            found.append(
                _error(
                    at(("dns", "management"), key=True),
                    "dns-key-incomplete",
                    "dns.management needs " + " and ".join(missing) + " (the TSIG key's name "
                    "and the NAME of the environment variable holding its secret), or "
                    "unsigned: true for a zone that takes non-secure updates",
                )
            )
    elif "key_name" in data or "secret_env" in data:
        found.append(
            _warning(at(("dns", "management", "unsigned")), "dns-key-unused",
                     "dns.management.unsigned is true: the TSIG key settings are ignored")
        )
    return found
