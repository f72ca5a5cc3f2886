"""Turning what pywinrm and requests raise into messages a Windows administrator can act on.

Every message names the endpoint and the step that failed, lists the usual causes, and never
contains a secret. casdesired's own words are built from names and never pass through
:func:`scrub`: masking a password inside them would tell the reader what it is ("the user name
or password is ***" says it is "wrong"). Only text that came from outside (a server's fault
reason, a library's exception text, the agent's stderr) is scrubbed, where it is quoted.
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

SHELL_QUOTA_FAULT = 2150859173
"""``w:QuotaLimit`` ERROR_WSMAN_QUOTA_MAX_SHELLS: the account has MaxShellsPerUser shells open."""
REQUEST_TOO_LARGE = 413
"""What WinRM answers a request larger than its MaxEnvelopeSizekb (a bare HTTP 413)."""

# What a process prints when its shell's memory quota (MaxMemoryPerShellMB) refuses an
# allocation: .NET's exception, or Windows' own texts when the CLR cannot even commit memory.
ALLOCATION_FAILURES = (
    "OutOfMemoryException",
    "The paging file is too small for this operation to complete",
    "Insufficient memory to continue the execution of the program",
    "Not enough storage is available to process this command",
)

_CLIXML_ERROR = re.compile(r'<S\s+S="Error"\s*>(.*?)</S>', re.DOTALL)
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every (non-trivial) secret replaced by ``***``.

    For text from OUTSIDE only (see the module docstring), never for a message casdesired
    composed around it: scrub the quoted part, then compose.
    """
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
    secrets: Iterable[str | None] = (),
    authenticated: bool = False,
    refused: bool = False,
    answered_before: bool = False,
) -> CasdesiredError:
    """The user-facing error for a failure of one WinRM step (``step`` says which).

    ``authenticated``: the service accepted an earlier request of the same session, so the
    credentials worked a moment ago. ``refused``: the service answered this step with HTTP
    401, even if what pywinrm raised says something else (NTLM re-authenticates after a 401
    and re-sends a message sealed with the old keys, which the service then refuses with 400).
    ``answered_before``: an earlier WS-Man operation of the session got its answer, so the
    URL is the WinRM service. ``secrets`` are masked in the text from outside that a message
    quotes.
    """
    where = f"the WinRM service at {url}"
    if isinstance(exc, CasdesiredError):
        return exc
    # requests_ntlm raises PermissionError when the server refuses NTLM outright (a 401 with
    # no challenge): to the user it is the same thing, rejected credentials.
    ntlm_refused = isinstance(exc, PermissionError) and "NTLM" in str(exc)
    rejected = isinstance(exc, InvalidCredentialsError) or ntlm_refused
    if (rejected or refused) and authenticated:
        return ConnectionFailed(
            f"{where} refused the request with HTTP 401 while {step}, after the connection "
            f"had authenticated ({transport} authentication). The "
            "session was reset on the host (the WinRM service restarted, or a proxy or load "
            "balancer moved the connection), or the account's credentials stopped being valid "
            "meanwhile (password changed, account locked out or disabled). Run casdesired "
            "again; if the credentials are then rejected from the start, the account is the "
            "problem."
        )
    if rejected or refused:
        causes = "".join(
            f"\n  - {c}" for c in _credential_causes(transport, url, credential_source)
        )
        return ConnectionFailed(
            f"{where} rejected the credentials ({transport} authentication) while {step}. "
            f"Usual causes:{causes}"
        )
    if isinstance(exc, WSManFaultError) and exc.wsman_fault_code == SHELL_QUOTA_FAULT:
        return ConnectionFailed(_too_many_shells(where, step, scrub(exc.reason or "", secrets)))
    if isinstance(exc, WSManFaultError):
        code = exc.wsman_fault_code
        code_text = f" (WSManFault code {code}, 0x{code:08X})" if code is not None else ""
        reason = scrub(" ".join((exc.reason or "no reason given").split()), secrets)
        return ConnectionFailed(
            f"{where} answered with a WS-Management fault while {step}: {reason}{code_text}"
        )
    if isinstance(exc, WinRMTransportError) and exc.code == REQUEST_TOO_LARGE:
        return ConnectionFailed(
            f"{where} refused a request as too large (HTTP 413) while {step}: the host's "
            "WinRM takes requests up to its MaxEnvelopeSizekb (150 KB on Windows Server 2008 "
            "R2, 500 KB later) and casdesired keeps each under 150 KB, so something between "
            "(a proxy) or a lowered setting refuses it. Read the value with 'winrm get "
            "winrm/config' on the host; restore it with "
            "winrm set winrm/config @{MaxEnvelopeSizekb=\"500\"}"
        )
    if isinstance(exc, WinRMTransportError):
        if answered_before:
            return ConnectionFailed(
                f"{where} answered HTTP {exc.code} while {step}, without a WS-Management "
                "fault, after the steps before it had worked. Look at the host's WinRM event "
                "log (Microsoft-Windows-WinRM/Operational) for what the service did with the "
                "request, and at anything between (a proxy, a load balancer) that may answer "
                "for it."
            )
        return ConnectionFailed(
            f"{where} answered HTTP {exc.code} while {step}, without a WS-Management fault. "
            "Check that the URL is the WinRM listener (…/wsman on port 5985 or 5986) and not "
            "another web service or a proxy, and look at the host's WinRM event log."
        )
    if isinstance(exc, WinRMOperationTimeoutError):
        return ConnectionFailed(f"{where} timed out the operation while {step}.")
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectionFailed(_tls_message(url, str(exc), secrets))
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
        return ConnectionFailed(f"WinRM failed while {step} with {url}: {scrub(str(exc), secrets)}")
    if isinstance(exc, (StopIteration, ValueError, SyntaxError)):
        # pywinrm parses answers with ElementTree and next(): a non-WS-Man answer lands here.
        return ProtocolError(f"{where} sent an answer that is not WS-Management while {step}.")
    detail = scrub(f"{type(exc).__name__}: {exc}", secrets)
    return ConnectionFailed(f"WinRM failed while {step} with {url}: {detail}")


def _too_many_shells(where: str, step: str, reason: str) -> str:
    said = " ".join(reason.split())
    said = f" WinRM said: {said}" if said else ""
    return (
        f"{where} refused a new shell while {step}: this account already has as many shells "
        "open on the host as WinRM allows one user (MaxShellsPerUser; 5 on Windows Server 2008 "
        f"R2).{said} (WSManFault code {SHELL_QUOTA_FAULT}, 0x{SHELL_QUOTA_FAULT:08X}). "
        "casdesired opens one shell per run and closes it, so the open ones belong to other "
        "tools or scripts running as this account, or were left behind by runs that were "
        "killed; WinRM closes a shell nobody uses after its idle timeout (Shell IdleTimeout; 3 "
        "minutes by default on 2008 R2). Wait for them to close, or close them all on the host "
        "with 'Restart-Service WinRM' (it ends other users' WinRM shells too). If the account "
        "needs more shells at once, raise the quota on the host: "
        "winrm set winrm/config/winrs @{MaxShellsPerUser=\"10\"}"
    )


def ran_out_of_memory(stderr: str) -> bool:
    """Whether a process's stderr shows an allocation refused (see :data:`ALLOCATION_FAILURES`)."""
    return any(marker.lower() in stderr.lower() for marker in ALLOCATION_FAILURES)


def out_of_memory_message(url: str, exit_code: int, stderr: str) -> str:
    """The agent died of the shell's memory quota (no response, allocation errors on stderr)."""
    said = f" PowerShell said: {stderr}" if stderr else ""
    return (
        f"the agent on {url} ran out of memory and returned no result (exit code {exit_code}): "
        "WinRM limits the memory of a shell's processes (MaxMemoryPerShellMB, 150 MB on "
        "Windows Server 2008 R2) and refused the agent an allocation. Raise the limit on the "
        "host, from an elevated prompt: winrm set winrm/config/winrs "
        "@{MaxMemoryPerShellMB=\"1024\"} (read it with 'winrm get winrm/config/winrs'), then "
        f"run casdesired again.{said}"
    )


_CA_ADVICE = (
    "If the WinRM certificate comes from your own CA, give casdesired that CA's "
    "certificate(s) as a PEM file with connection.tls.ca_bundle in the organisation file; make "
    "sure the URL's host name is one the certificate names (its subject alternative names)."
)
_NAME_ADVICE = (
    "Put a name the certificate names (its subject alternative names; usually the host's FQDN) "
    "in connection.endpoint, or have the certificate reissued to name the one you use."
)
# OpenSSL's reasons for distrusting the issuer, as Python's ssl module words them.
_UNTRUSTED_ISSUER = (
    "unable to get local issuer certificate",
    "self-signed certificate",
    "self signed certificate",
    "unable to get issuer certificate",
)


def tls_failure(url: str, detail: str, secrets: Iterable[str | None] = ()) -> str:
    """The message for a TLS handshake with ``url`` that failed with ``detail`` (what OpenSSL
    said): which part of the certificate is wrong, and what to do about it."""
    return _tls_message(url, detail, secrets)


def _tls_message(url: str, detail: str, secrets: Iterable[str | None] = ()) -> str:
    host = urlsplit(url).hostname or url
    verify = re.search(r"certificate verify failed: ([^(')\]]+)", detail)
    quoted = scrub(verify.group(1).strip().rstrip(",."), secrets) if verify else ""
    if "IP address mismatch" in detail:
        reason = f"its certificate does not name the IP address {host} in the URL"
        advice = _NAME_ADVICE
    elif "Hostname mismatch" in detail or "doesn't match" in detail:
        reason = f"its certificate does not name the host {host} in the URL"
        advice = _NAME_ADVICE
    elif "certificate has expired" in detail or "certificate is not yet valid" in detail:
        reason = f"its certificate is outside its validity period ({quoted})"
        advice = (
            "Renew the WinRM certificate, and check the clocks of the host and of the machine "
            "casdesired runs on."
        )
    elif any(marker in detail for marker in _UNTRUSTED_ISSUER):
        reason = "its certificate is not signed by a CA casdesired trusts"
        reason += f" ({quoted})" if quoted else ""
        advice = _CA_ADVICE
    elif verify is not None or "CERTIFICATE_VERIFY_FAILED" in detail:
        reason = "its certificate could not be verified"
        reason += f" ({quoted})" if quoted else ""
        advice = _CA_ADVICE
    elif "WRONG_VERSION_NUMBER" in detail:
        reason = "it does not speak TLS on that port (is it the HTTP listener, 5985?)"
        advice = "Use https:// with the HTTPS listener's port (5986), or http:// with 5985."
    else:
        reason = "the TLS handshake failed"
        advice = _CA_ADVICE
    return f"TLS verification failed for {url}: {reason}. {advice}"


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
