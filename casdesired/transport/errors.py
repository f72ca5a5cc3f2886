"""Turning what pywinrm and requests raise into messages a Windows administrator can act on.

Every message names the endpoint and the step that failed, lists the usual causes, and never
contains a secret (messages are built from names; :func:`scrub` removes any secret that a
library message might still carry).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import requests
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)

from casdesired.errors import CasdesiredError, ConnectionFailed, ProtocolError

_CLIXML_ERROR = re.compile(r'<S\s+S="Error"\s*>(.*?)</S>', re.DOTALL)
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every (non-trivial) secret replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def clean_stderr(raw: str, limit: int = 600) -> str:
    """Readable text from what PowerShell wrote on stderr.

    PowerShell serialises errors as CLIXML (``#< CLIXML`` then ``<S S="Error">`` elements, with
    control characters escaped as ``_x000D__x000A_``); progress records (``<Obj S="progress">``)
    are noise and are dropped. Plain text is kept as it is. The result is cut at ``limit``.
    """
    if "#< CLIXML" in raw or "<Objs" in raw:
        parts = [html.unescape(m) for m in _CLIXML_ERROR.findall(raw)]
        text = "".join(_CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), p) for p in parts)
    else:
        text = raw
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    text = "\n".join(line for line in lines if line.strip()).strip()
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    default = 5986 if parts.scheme == "https" else 5985
    return f"{parts.hostname}:{parts.port or default}"


def _credential_causes(transport: str, url: str, source: str | None) -> list[str]:
    who = f" (taken from {source})" if source else ""
    causes = [
        f"the user name or password is wrong{who}; for a domain account write DOMAIN\\user "
        "or user@domain.fqdn",
        "the account is not a member of the host's local Administrators group",
        "a local (non-domain) account is filtered by UAC remote restrictions: use a domain "
        "account, or set LocalAccountTokenFilterPolicy=1 under HKLM\\SOFTWARE\\Microsoft\\"
        "Windows\\CurrentVersion\\Policies\\System on the host",
    ]
    if transport == "basic":
        causes.insert(
            1,
            "Basic authentication is disabled on the WinRM service (the default): check "
            "'winrm get winrm/config/service/auth' on the host, or use ntlm or kerberos",
        )
        if url.lower().startswith("http:"):
            causes.insert(
                2,
                "Basic over HTTP needs AllowUnencrypted=true on the WinRM service, which "
                "should stay false: use HTTPS (port 5986), or ntlm/kerberos, which encrypt "
                "messages over HTTP",
            )
    return causes


def describe(
    exc: BaseException,
    *,
    url: str,
    transport: str,
    step: str,
    connect_timeout: float,
    read_timeout: float,
    credential_source: str | None = None,
) -> CasdesiredError:
    """The user-facing error for a failure of one WinRM step (``step`` says which)."""
    where = f"the WinRM service at {url}"
    if isinstance(exc, CasdesiredError):
        return exc
    # requests_ntlm raises PermissionError when the server refuses NTLM outright (a 401 with
    # no challenge): to the user it is the same thing, rejected credentials.
    ntlm_refused = isinstance(exc, PermissionError) and "NTLM" in str(exc)
    if isinstance(exc, InvalidCredentialsError) or ntlm_refused:
        causes = "".join(
            f"\n  - {c}" for c in _credential_causes(transport, url, credential_source)
        )
        return ConnectionFailed(
            f"{where} rejected the credentials ({transport} authentication) while {step}. "
            f"Usual causes:{causes}"
        )
    if isinstance(exc, WSManFaultError):
        code = exc.wsman_fault_code
        code_text = f" (WSManFault code {code}, 0x{code:08X})" if code is not None else ""
        reason = " ".join((exc.reason or "no reason given").split())
        return ConnectionFailed(
            f"{where} answered with a WS-Management fault while {step}: {reason}{code_text}"
        )
    if isinstance(exc, WinRMTransportError):
        return ConnectionFailed(
            f"{where} answered HTTP {exc.code} while {step}, without a WS-Management fault. "
            "Check that the URL is the WinRM listener (…/wsman on port 5985 or 5986) and not "
            "another web service or a proxy, and look at the host's WinRM event log."
        )
    if isinstance(exc, WinRMOperationTimeoutError):
        return ConnectionFailed(f"{where} timed out the operation while {step}.")
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectionFailed(_tls_message(url, str(exc)))
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectionFailed(
            f"Timed out after {connect_timeout:g} s connecting to {_host_port(url)} while "
            f"{step}: the host is unreachable or a firewall drops WinRM traffic."
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return ConnectionFailed(
            f"{where} accepted the connection but sent no answer within {read_timeout:g} s "
            f"(read timeout) while {step}. The WinRM service or the host may be hung or "
            "overloaded; if it is only slow, raise connection.timeouts.operation_seconds."
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectionFailed(_connection_message(url, step, str(exc)))
    if isinstance(exc, WinRMError):
        return ConnectionFailed(f"WinRM failed while {step} with {url}: {exc}")
    if isinstance(exc, (StopIteration, ValueError, SyntaxError)):
        # pywinrm parses answers with ElementTree and next(): a non-WS-Man answer lands here.
        return ProtocolError(f"{where} sent an answer that is not WS-Management while {step}.")
    return ConnectionFailed(f"WinRM failed while {step} with {url}: {type(exc).__name__}: {exc}")


def _tls_message(url: str, detail: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail:
        reason = "its certificate is not signed by a CA casdesired trusts"
        match = re.search(r"certificate verify failed: ([^(')\]]+)", detail)
        if match:
            reason += f" ({match.group(1).strip()})"
        if "Hostname mismatch" in detail or "doesn't match" in detail:
            reason = "its certificate does not name the host in the URL"
    elif "WRONG_VERSION_NUMBER" in detail:
        reason = "it does not speak TLS on that port (is it the HTTP listener, 5985?)"
    else:
        reason = "the TLS handshake failed"
    return (
        f"TLS verification failed for {url}: {reason}. If the WinRM certificate comes from "
        "your own CA, give casdesired that CA's certificate(s) as a PEM file with "
        "connection.tls.ca_bundle in the organisation file; make sure the URL's host name is "
        "one the certificate names (its subject alternative names)."
    )


def _connection_message(url: str, step: str, detail: str) -> str:
    host_port = _host_port(url)
    low = detail.lower()
    if "refused" in low:
        return (
            f"Could not connect to {host_port} ({url}): connection refused. Is the WinRM "
            "service running with a listener on that port ('winrm quickconfig'; HTTP 5985, "
            "HTTPS 5986), and does the host's firewall allow it?"
        )
    if (
        "name or service not known" in low
        or "nodename nor servname" in low
        or "failed to resolve" in low
        or "getaddrinfo failed" in low
        or "no address associated" in low
        or "temporary failure in name resolution" in low
    ):
        return (
            f"Could not resolve the host name {urlsplit(url).hostname!r} ({url}): check the "
            "endpoint URL and DNS."
        )
    if "unreachable" in low or "no route to host" in low:
        return f"Could not reach {host_port} ({url}): the network or host is unreachable."
    if "aborted" in low or "reset" in low or "remotedisconnected" in low or "closed" in low:
        return (
            f"The connection to {url} was closed without an answer while {step}. The WinRM "
            "service may have been restarted, or something between (a proxy, a load balancer, "
            "a TLS inspector) cut the connection."
        )
    return f"Could not connect to {host_port} ({url}) while {step}."
