"""The composed lab: an Exchange organisation behind a loopback WS-Management endpoint.

::

    with Lab(Organisation.from_seed(), auth="ntlm") as lab:
        session = winrm.Session(lab.url, auth=(lab.credentials.username,
                                lab.credentials.password), transport="ntlm")

Like a Windows host with the WinRM defaults (``AllowUnencrypted=false``), a plain-HTTP lab
accepts only NTLM-encrypted messages; ``allow_unencrypted=True`` accepts cleartext too (Basic
over HTTP, NTLM with ``message_encryption="never"``).

The organisation (the Exchange side) runs PowerShell; this module only wires it to the WS-Man
server, the faults, the journal and the control API.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from casdesired.lab.control import ControlAPI
from casdesired.lab.exchange.administrators import run_as_request
from casdesired.lab.exchange.memory import AgentMemoryModel
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.process import HostFiles, Logon, LogonKind, MemoryModel, PowerShellHost
from casdesired.lab.wsman import tls as tls_identity
from casdesired.lab.wsman.auth import Account, NtlmUserFile
from casdesired.lab.wsman.limits import WinRMLimits
from casdesired.lab.wsman.server import EndpointConfig, WSManHTTPServer
from casdesired.lab.wsman.service import WSManService
from casdesired.lab.wsman.shells import ShellTable

DEFAULT_HOSTNAME = "EX01"


class LabOrganisation(PowerShellHost, Protocol):
    """What the lab needs from the Exchange side: run PowerShell, and hold its state."""

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (what the control API's GET returns)."""
        ...

    def load(self, data: dict[str, Any]) -> None:
        """Replace the whole state with ``data`` (a snapshot)."""
        ...

    def reset(self) -> None:
        """Back to the organisation's own seed, never to another organisation."""
        ...


def _random_password() -> str:
    # Windows complexity: upper, lower, digit and symbol, whatever token_urlsafe produced.
    return "Lab-" + secrets.token_urlsafe(15) + "9a"


LAB_ACCOUNT = "casadmin"
DEFAULT_NETBIOS_DOMAIN = "CONTOSO"


@dataclass
class LabCredentials:
    """The one account the lab accepts. It is a lab: printing it is the point."""

    username: str = f"{DEFAULT_NETBIOS_DOMAIN}\\{LAB_ACCOUNT}"
    password: str = field(default_factory=_random_password)

    @classmethod
    def for_organisation(cls, organisation: object, password: str | None = None) -> LabCredentials:
        """``DOMAIN\\casadmin`` in the organisation's own domain (its ``netbios_domain``, else
        CONTOSO); a random password unless one is given."""
        domain = str(getattr(organisation, "netbios_domain", "") or DEFAULT_NETBIOS_DOMAIN)
        username = f"{domain}\\{LAB_ACCOUNT}"
        return cls(username, password) if password else cls(username)

    def __repr__(self) -> str:
        return f"LabCredentials(username={self.username!r}, password='***')"


_T = TypeVar("_T")


def _pick(given: _T | None, adopted: object, factory: type[_T]) -> _T:
    if given is not None:
        return given
    return adopted if isinstance(adopted, factory) else factory()


class Lab:
    """A running (after :meth:`start`) lab endpoint on loopback; a context manager."""

    def __init__(
        self,
        organisation: LabOrganisation,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        auth: Literal["basic", "ntlm"] = "ntlm",
        credentials: LabCredentials | None = None,
        faults: Faults | None = None,
        journal: Journal | None = None,
        hostname: str | None = None,
        allow_unencrypted: bool = False,
        limits: WinRMLimits | None = None,
        memory: MemoryModel | None = None,
        logon: LogonKind | None = None,
    ) -> None:
        if auth not in ("basic", "ntlm"):
            raise ValueError(f"auth must be 'basic' or 'ntlm', not {auth!r}")
        if logon is not None and logon not in ("basic", "ntlm", "kerberos", "credssp"):
            raise ValueError(f"logon must be basic, ntlm, kerberos or credssp, not {logon!r}")
        self.organisation = organisation
        self.host = host
        self.port = port
        self.tls = tls
        self.auth: Literal["basic", "ntlm"] = auth
        # WinRM's AllowUnencrypted, false as on Windows: over HTTP only NTLM-sealed messages are
        # accepted, so Basic over HTTP is refused unless a test opts in to the lenient setting.
        self.allow_unencrypted = allow_unencrypted
        self.credentials = credentials or LabCredentials.for_organisation(organisation)
        # WinRM's quotas, Windows Server 2008 R2's unless given (casdesired.lab.wsman.limits),
        # and how much memory a shell's process uses against MaxMemoryPerShellMB.
        self.limits = limits or WinRMLimits()
        self.memory: MemoryModel = memory or AgentMemoryModel()
        # One journal and one set of faults for the wire side and the Exchange side: a cmdlet
        # fault set through the lab (or its control API) must reach the cmdlets, and the journal
        # must show commands and cmdlets in one sequence. Adopt the organisation's own when none
        # is given, and hand ours to it either way.
        self.faults = _pick(faults, getattr(organisation, "faults", None), Faults)
        self.journal = _pick(journal, getattr(organisation, "journal", None), Journal)
        # The logon the lab models (the wire speaks NTLM or Basic): ``kerberos`` is Kerberos
        # without delegation, ``credssp`` a logon that can reach a third machine (field §1).
        self.logon = Logon(
            self.credentials.username, self.credentials.password, logon or auth
        )
        for attribute, value in (
            ("faults", self.faults), ("journal", self.journal), ("logon", self.logon),
            ("winrm_limits", self.limits),
        ):
            if hasattr(organisation, attribute):
                setattr(organisation, attribute, value)
        self.hostname = hostname or str(getattr(organisation, "hostname", DEFAULT_HOSTNAME))
        self.token = secrets.token_urlsafe(24)
        self.ca_file: Path | None = None
        self.url = ""
        self._stop = threading.Event()
        self._server: WSManHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._identity: tls_identity.TlsIdentity | None = None
        self._ntlm_file: NtlmUserFile | None = None
        self._shells: ShellTable | None = None

    # ------------------------------------------------------------------------------------------
    def start(self) -> Lab:
        if self._server is not None:
            return self
        self._stop.clear()
        account = Account(self.credentials.username, self.credentials.password)
        if self.auth == "ntlm":
            self._ntlm_file = NtlmUserFile(account)
        ssl_context = None
        if self.tls:
            self._identity = tls_identity.generate(self.hostname)
            self.ca_file = self._identity.ca_file
            ssl_context = self._identity.server_context()
        self._shells = ShellTable(
            self.organisation, self._stop, limits=self.limits, memory=self.memory,
            journal=self.journal,
        )
        files = getattr(self.organisation, "files", None)
        service = WSManService(
            self._shells, self.journal, self.hostname, "", self._stop,
            files=files if isinstance(files, HostFiles) else None,
        )
        control = ControlAPI(
            self.organisation, self.faults, self.journal, self.token,
            on_reset=self._shells.clear, shells=self._shells.report, limits=self.limits,
            administrators=(
                partial(run_as_request, self.organisation)
                if isinstance(self.organisation, Organisation) else None
            ),
        )
        config = EndpointConfig(
            service=service,
            journal=self.journal,
            faults=self.faults,
            auth=self.auth,
            account=account,
            machine=self.hostname,
            stop=self._stop,
            ntlm_file=self._ntlm_file,
            cert_hash=self._identity.cert_hash if self._identity else None,
            control=control,
            tls=self.tls,
            allow_unencrypted=self.allow_unencrypted,
            limits=self.limits,
        )
        try:
            self._server = WSManHTTPServer((self.host, self.port), config, ssl_context)
        except OSError:
            self._cleanup_files()
            raise
        port = self._server.server_address[1]
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{host}:{port}/wsman"
        service.endpoint = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"lab-{port}", daemon=True,
        )
        self._thread.start()
        return self

    @property
    def control_url(self) -> str:
        """Base URL of the control API (``.../lab``); send ``X-Lab-Token: lab.token``."""
        return self.url.rsplit("/wsman", 1)[0] + "/lab"

    @property
    def open_shells(self) -> int:
        """Shells created and not deleted (also ``GET /lab/shells``): 0 once every client
        cleaned up, whatever failed on the way."""
        return len(self._shells) if self._shells is not None else 0

    def stop(self) -> None:
        """Stop serving, cut open connections, end hung requests and remove temp files."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._shells is not None:
            self._shells.clear()
        self._cleanup_files()

    def _cleanup_files(self) -> None:
        if self._ntlm_file is not None:
            self._ntlm_file.remove()
            self._ntlm_file = None
        if self._identity is not None:
            self._identity.remove()
            self._identity = None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
