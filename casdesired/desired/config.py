"""The desired state as loaded: the organisation's settings, its sites and binding rules.

These are the types every later stage reads (``plan``, ``apply``, the transport, the DNS
checks). Sites use the shared estate model (:mod:`casdesired.model`); what only the desired
side has — how to connect, DNS resolvers, policy, binding rules — lives here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from casdesired import model
from casdesired.dns.tsig import TsigConfig
from casdesired.findings import Finding, Location, Severity

LAB_ENDPOINT = "lab"


def url_has_credentials(url: str) -> bool:
    """True when a URL carries ``user[:password]@`` before its host (never allowed here)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url
    return "@" in parts.netloc


def display_url(url: str) -> str:
    """A URL fit to print: any ``user:password@`` part is dropped (defence in depth)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
"""``connection.endpoint`` value that selects the embedded lab instead of a WinRM URL."""
LAB_RESOLVER = "lab"
"""``dns.resolvers`` entry meaning the embedded lab's DNS server (casdesired.lab.dns)."""


@dataclass(frozen=True)
class Credentials:
    """The NAMES of the environment variables holding credentials — never the secrets."""

    username_env: str | None = None
    password_env: str | None = None
    cert_pem_env: str | None = None
    """Certificate transport: variable holding the PATH of the client certificate (PEM)."""
    cert_key_env: str | None = None
    """Certificate transport: variable holding the PATH of the client key (PEM)."""


@dataclass(frozen=True)
class Connection:
    """How to reach the Exchange side: a WinRM endpoint (or the embedded lab)."""

    endpoint: str
    """``"lab"`` or a WinRM URL such as ``https://ex01.contoso.local:5986/wsman``."""
    transport: str
    """``basic`` | ``ntlm`` | ``kerberos`` | ``credssp`` | ``certificate``."""
    exchange_mode: str
    """``remote`` (the supported /PowerShell session; the default) or ``snapin``
    (Add-PSSnapin: needs a logon that can delegate, i.e. transport credssp)."""
    exchange_uri: str | None
    """The /PowerShell URI for ``remote`` mode; None: the endpoint host's own
    (``http://<its FQDN>/PowerShell/``, which the agent works out there)."""
    tls_validate: bool
    ca_bundle: Path | None
    """Absolute path (YAML gives it relative to the organisation directory)."""
    connect_timeout: float
    operation_timeout: float
    credentials: Credentials
    lab_state: Path | None
    """``endpoint: lab`` only: where the lab persists its organisation (``~`` expanded)."""
    agent_delivery: str = "stdin"
    """``connection.agent.delivery``: ``stdin`` (the agent and request on stdin; the default)
    or ``file`` (no stdin: the agent kept in a file checked by its SHA-256, see
    :mod:`casdesired.agent.delivery`)."""
    agent_start_timeout: float = 120.0
    """``connection.agent.start_timeout_seconds``: how long powershell.exe may take to read
    the agent from stdin before casdesired says it never will (stdin delivery)."""

    @property
    def is_lab(self) -> bool:
        return self.endpoint == LAB_ENDPOINT


@dataclass(frozen=True)
class DnsConfig:
    """Resolvers the DNS checks ask (internal must resolve arrays; external must not)."""

    resolvers: tuple[str, ...] = ()
    """IPs or ``ip:port``; ``lab`` is the embedded lab's DNS server (``endpoint: lab`` only)."""
    external_resolvers: tuple[str, ...] = ()
    management: TsigConfig | None = None
    """``dns.management``: RFC 2136 updates of the arrays' A records (None: checks only)."""
    source: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Policy:
    """Safety thresholds for plan/apply (octoDNS-style) and whether pruning may happen."""

    max_rebind_percent: float = 30.0
    min_databases_for_threshold: int = 10
    allow_prune: bool = False


@dataclass(frozen=True)
class Organisation:
    """The organisation file: one per desired-state directory."""

    name: str
    connection: Connection
    dns: DnsConfig
    policy: Policy
    path: Path
    """The organisation directory (relative paths in the YAML are relative to it)."""
    source: Location


@dataclass(frozen=True)
class BindingRule:
    """Which databases a site binds, and to what (its array's FQDN, or a named server)."""

    site: str
    target: str
    """The array FQDN (``target_kind == "array"``) or the server name (``"server"``)."""
    target_kind: Literal["array", "server"]
    names: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    """Case-insensitive shell-style globs, resolved against live databases at plan time."""
    source: Location | None = field(default=None, compare=False)


@dataclass
class DesiredState:
    """Everything one desired-state directory declares, plus every problem found in it.

    When :meth:`has_errors` is true the content is partial (objects that could not be read
    are left out) and must not be acted on.
    """

    organisation: Organisation
    sites: tuple[model.Site, ...]
    binding_rules: tuple[BindingRule, ...]
    diagnostics: tuple[Finding, ...]
    files: tuple[Path, ...]

    def digest(self) -> str:
        """SHA-256 over the files' bytes in sorted path order (a plan's staleness check)."""
        sha = hashlib.sha256()
        for name, path in self._named_files():
            # Name and length are hashed too, so moving bytes between files changes the digest.
            data = path.read_bytes()
            sha.update(f"{name}\0{len(data)}\0".encode())
            sha.update(data)
        return sha.hexdigest()

    def file_digests(self) -> dict[str, str]:
        """SHA-256 of each file, by its path relative to the organisation directory: a saved
        plan records them, so apply can name the files that changed since the review."""
        return {
            name: hashlib.sha256(path.read_bytes()).hexdigest()
            for name, path in self._named_files()
        }

    def _named_files(self) -> list[tuple[str, Path]]:
        root = self.organisation.path
        named = []
        for path in sorted(self.files):
            try:
                name = path.relative_to(root).as_posix()
            except ValueError:
                name = path.as_posix()
            named.append((name, path))
        return named

    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.diagnostics)

    def estate(self) -> model.Estate:
        """The declared sites as an :class:`model.Estate` (bindings come from resolve_bindings)."""
        return model.Estate.build(self.sites)

    def site(self, name: str) -> model.Site | None:
        k = model.key(name)
        return next((s for s in self.sites if s.key == k), None)
