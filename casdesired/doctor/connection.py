"""Connection checks: who answers at the endpoint, TLS, the logon, encryption, delegation.

Two small looks before the run, neither a command execution: one unauthenticated POST (WinRM
answers it with 401 and the authentication methods it offers, which says the URL is WinRM and
what it accepts), and for ``https://`` one TLS handshake, whose certificate is read for its
names and expiry even when it does not validate. The rest comes from doctor's one run: whether
the logon was accepted, and whether the service's answers came sealed.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import requests
import urllib3
from cryptography import x509

from casdesired.desired.config import Organisation
from casdesired.doctor import outcome
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.doctor.probe import ProbeRun
from casdesired.errors import CasdesiredError
from casdesired.transport.errors import describe, tls_failure
from casdesired.transport.winrm import WinRMTarget

SEALED = "multipart/encrypted"
EXPIRY_WARNING_DAYS = 30
# What each transport needs the service to offer (WWW-Authenticate schemes, lower case).
NEEDS: dict[str, tuple[str, ...]] = {
    "ntlm": ("negotiate", "ntlm"),
    "kerberos": ("negotiate", "kerberos"),
    "basic": ("basic",),
    "credssp": ("credssp",),
}
SHOWN = {"ntlm": "NTLM", "kerberos": "Kerberos", "basic": "Basic", "credssp": "CredSSP"}
SERVICE_AUTH = {
    "ntlm": "Negotiate", "kerberos": "Kerberos", "basic": "Basic", "credssp": "CredSSP",
}


@dataclass(frozen=True)
class Certificate:
    """The endpoint's TLS certificate, as read (validated or not)."""

    validated: bool
    failure: str | None
    """Why it did not validate (casdesired's TLS message); None when it did."""
    names: tuple[str, ...]
    not_after: datetime | None


@dataclass(frozen=True)
class Endpoint:
    """What answered at the endpoint URL before any logon."""

    answered: bool
    """It answered as WinRM does (401 asking for authentication)."""
    methods: tuple[str, ...]
    """The authentication schemes it offered (``WWW-Authenticate``)."""
    evidence: str
    certificate: Certificate | None


def look(target: WinRMTarget) -> Endpoint:
    """The endpoint before any logon (see the module docstring)."""
    certificate = _certificate(target) if target.url.lower().startswith("https:") else None
    verify: bool | str = False
    if certificate is not None and certificate.validated and target.server_cert_validation:
        verify = target.ca_trust_path or True
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: WinRM goes straight to the host
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            answer = session.post(
                target.url,
                data=b"",
                headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
                timeout=(target.connect_timeout, min(target.read_timeout, 30.0)),
                verify=verify,
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        error = describe(
            exc, url=target.url, transport=target.transport,
            step="asking who answers at the endpoint",
            connect_timeout=target.connect_timeout, read_timeout=target.read_timeout,
            secrets=target.secrets,
        )
        return Endpoint(False, (), str(error), certificate)
    finally:
        session.close()
    offered = answer.headers.get("WWW-Authenticate", "")
    methods = tuple(dict.fromkeys(
        part.strip().split(" ", 1)[0] for part in offered.split(",") if part.strip()
    ))
    if answer.status_code == 401 and methods:
        return Endpoint(
            True,
            methods,
            f"{target.url} answered a request without credentials with HTTP 401, offering "
            f"{', '.join(methods)}, as WinRM does",
            certificate,
        )
    return Endpoint(
        False,
        methods,
        f"{target.url} answered a request without credentials with HTTP "
        f"{answer.status_code}{' (' + offered + ')' if offered else ''}, not as WinRM does "
        "(401, asking for a logon)",
        certificate,
    )


def _certificate(target: WinRMTarget) -> Certificate | None:
    """The certificate, validated as pywinrm validates it (the CA bundle, else requests'
    default one; the URL's host among its names)."""
    parts = urlsplit(target.url)
    host, port = parts.hostname or "", parts.port or 5986
    failure = None
    der = None
    if target.server_cert_validation:
        context = ssl.create_default_context(
            cafile=target.ca_trust_path or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        try:
            der = _handshake(context, host, port, target.connect_timeout)
        except ssl.SSLError as exc:
            failure = tls_failure(target.url, str(exc), target.secrets)
        except OSError:
            return None  # no connection: the WinRM check says why
    if der is None:
        unchecked = ssl.create_default_context()
        unchecked.check_hostname = False
        unchecked.verify_mode = ssl.CERT_NONE
        try:
            der = _handshake(unchecked, host, port, target.connect_timeout)
        except OSError:
            return Certificate(False, failure or "the TLS handshake failed", (), None)
    names, not_after = _read(der)
    validated = failure is None and target.server_cert_validation
    return Certificate(validated, failure, names, not_after)


def _handshake(context: ssl.SSLContext, host: str, port: int, timeout: float) -> bytes:
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return der


def _read(der: bytes) -> tuple[tuple[str, ...], datetime | None]:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return (), None
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names += [str(a.value) for a in cert.subject.get_attributes_for_oid(
            x509.oid.NameOID.COMMON_NAME)]
    return tuple(names), cert.not_valid_after_utc


def checks(
    org: Organisation,
    target: WinRMTarget | None,
    endpoint: Endpoint | None,
    run: ProbeRun | None,
    config_error: CasdesiredError | None,
    now: datetime,
) -> list[Check]:
    """The connection family, from what was seen before and during the run."""
    if target is None or endpoint is None:
        why = f"casdesired could not prepare the connection: {config_error}"
        return [
            skipped("connection.wsman", "the endpoint answers WS-Management", why),
            skipped("connection.tls", "TLS certificate", why),
            check("connection.auth", "the transport authenticates", Status.FAIL,
                  (str(config_error),),
                  "Set the environment variables the organisation file names under "
                  "connection.credentials (docs/connecting.md#credentials).",
                  anchor="connection-auth"),
            skipped("connection.encryption", "messages are encrypted", why),
            delegation(org, target),
        ]
    return [
        _wsman(target, endpoint),
        _tls(target, endpoint.certificate, now),
        _auth(target, endpoint, run),
        _encryption(target, run),
        delegation(org, target),
    ]


def _wsman(target: WinRMTarget, endpoint: Endpoint) -> Check:
    title = "the endpoint answers WS-Management"
    if endpoint.answered:
        return check("connection.wsman", title, Status.PASS, (endpoint.evidence,))
    return check(
        "connection.wsman", title, Status.FAIL, (endpoint.evidence,),
        "On the host, in an elevated prompt: 'winrm quickconfig' (a listener on 5985 for HTTP, "
        "or 'winrm quickconfig -transport:https' for 5986), allow that port in Windows "
        "Firewall, and check connection.endpoint (…/wsman, the listener's port).",
        anchor="connection-wsman",
    )


def _tls(target: WinRMTarget, certificate: Certificate | None, now: datetime) -> Check:
    title = "TLS certificate: validated, its names and expiry"
    if not target.url.lower().startswith("https:"):
        return skipped(
            "connection.tls", title,
            "the endpoint is http://: there is no certificate (connection.encryption says how "
            "messages are protected)",
        )
    if certificate is None:
        return skipped("connection.tls", title, "no TLS connection could be made (see "
                       "connection.wsman)")
    evidence = [
        f"the certificate names {', '.join(certificate.names) or 'nothing'}",
        f"valid until {certificate.not_after:%Y-%m-%d %H:%M} UTC" if certificate.not_after
        else "",
    ]
    if certificate.failure is not None:
        return check("connection.tls", title, Status.FAIL, (certificate.failure, *evidence),
                     "See the message: give the issuing CA with connection.tls.ca_bundle, use a "
                     "host name the certificate names in connection.endpoint, or renew the "
                     "certificate (docs/connecting.md#tls).", anchor="connection-tls")
    if not target.server_cert_validation:
        return check("connection.tls", title, Status.WARN,
                     ("connection.tls.validate is false: anyone between could pose as the host",
                      *evidence),
                     "Set connection.tls.validate: true and connection.tls.ca_bundle to the CA "
                     "that issued the WinRM certificate.", anchor="connection-tls")
    if certificate.not_after is not None:
        days = (certificate.not_after - now).days
        if days < EXPIRY_WARNING_DAYS:
            return check("connection.tls", title, Status.WARN,
                         (f"it expires in {days} day(s)", *evidence),
                         "Renew the WinRM certificate and update the listener: 'winrm set "
                         "winrm/config/Listener?Address=*+Transport=HTTPS "
                         "@{CertificateThumbprint=\"NEW\"}'.", anchor="connection-tls")
    return check("connection.tls", title, Status.PASS, ("the certificate validated", *evidence))


def _auth(target: WinRMTarget, endpoint: Endpoint, run: ProbeRun | None) -> Check:
    title = "the transport authenticates"
    needed = NEEDS.get(target.transport)
    offered = [m.lower() for m in endpoint.methods]
    evidence = []
    if needed and endpoint.answered and not any(n in offered for n in needed):
        evidence.append(
            f"the service offers {', '.join(endpoint.methods)}; {target.transport} needs "
            f"{SERVICE_AUTH[target.transport]}"
        )
    who = f" as {target.username}" if target.username else ""
    if run is not None and (run.ran or outcome.authenticated(run.error)):
        shown = SHOWN.get(target.transport, target.transport)
        return check("connection.auth", title, Status.PASS,
                     (f"the service accepted the {shown} logon{who}", *evidence))
    if run is not None and outcome.kind(run.error) == "credentials":
        service = SERVICE_AUTH.get(target.transport)
        enable = (
            f" If {service} is off on the service: 'winrm set winrm/config/service/auth "
            f"@{{{service}=\"true\"}}'." if service and evidence else ""
        )
        return check("connection.auth", title, Status.FAIL, (str(run.error), *evidence),
                     "See the causes listed (docs/connecting.md#when-it-fails)." + enable,
                     anchor="connection-auth")
    why = "no logon was tried: the endpoint could not be reached (see connection.wsman)"
    return skipped("connection.auth", title, why)


def _encryption(target: WinRMTarget, run: ProbeRun | None) -> Check:
    title = "messages are encrypted"
    if target.url.lower().startswith("https:"):
        return check("connection.encryption", title, Status.PASS,
                     ("https://: TLS encrypts every message",))
    sealing = target.transport in ("ntlm", "kerberos", "credssp") and (
        target.message_encryption != "never"
    )
    answers = [(s, t) for s, t in (run.answers if run is not None else ()) if t]
    clear = [t for s, t in answers if SEALED not in t.lower()]
    if not sealing or clear:
        seen = f"{len(clear)} of {len(answers)} answers came in clear text ({clear[0]})" if (
            clear) else f"{target.transport} over http:// does not encrypt messages"
        return check(
            "connection.encryption", title, Status.FAIL, (seen,),
            "Use https:// (a WinRM HTTPS listener), or ntlm or kerberos, which seal every "
            "message over HTTP; on the host keep 'winrm set winrm/config/service "
            "@{AllowUnencrypted=\"false\"}'.", anchor="connection-encryption",
        )
    if not answers:
        return check("connection.encryption", title, Status.PASS,
                     (f"{target.transport} seals every message over http:// (no answer was "
                      "seen to confirm it: the run did not get that far)",))
    return check("connection.encryption", title, Status.PASS,
                 (f"all {len(answers)} answers of the service came sealed ({SEALED}, "
                  f"{target.transport} message encryption)",))


def delegation(org: Organisation, target: WinRMTarget | None) -> Check:
    """What the logon can reach beyond the endpoint, and whether exchange.mode needs it."""
    title = "delegation, and what connection.exchange.mode needs"
    transport = org.connection.transport
    delegates = transport == "credssp"
    can = "can" if delegates else "cannot"
    facts = [f"a logon by {SHOWN.get(transport, transport)} {can} reach a third machine as you "
             "(delegate)"]
    mode = org.connection.exchange_mode
    has_credential = target is not None and target.credential is not None
    if mode == "snapin" and not delegates:
        return check("connection.delegation", title, Status.FAIL,
                     (*facts, "exchange.mode snapin binds to a domain controller as you: a "
                      "second hop"),
                     "Use exchange.mode: remote (the default), or transport: credssp with "
                     "CredSSP enabled on the host ('Enable-WSManCredSSP -Role Server').",
                     anchor="connection-delegation")
    if mode != "snapin" and not has_credential and not delegates:
        return check("connection.delegation", title, Status.FAIL,
                     (*facts, "no password to pass inside the session, so the /PowerShell "
                      "session and the NLB nodes are out of reach"),
                     "Name connection.credentials.password_env (docs/connecting.md).",
                     anchor="connection-delegation")
    if mode == "snapin":
        facts.append("exchange.mode snapin: the snap-in's AD bind can use it")
    else:
        facts.append(
            f"exchange.mode {mode}: not needed, the agent passes your credential inside the "
            "session (the /PowerShell session, NLB nodes, WMI to other CAS)"
        )
    return check("connection.delegation", title, Status.PASS, facts)
