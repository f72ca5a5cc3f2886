"""The embedded lab: what ``connection.endpoint: lab`` connects to.

The lab starts in-process on a free loopback port, from a state file kept OUTSIDE the
repository (seeded from the repository's seed when missing), and casdesired talks to it
through the very same pywinrm transport and :class:`~casdesired.transport.winrm.AgentClient`
it uses for Windows: NTLM with message encryption over HTTP, with the lab's own generated
credentials (no environment variables needed).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from casdesired.agent import protocol
from casdesired.desired.config import Organisation as OrganisationConfig
from casdesired.desired.config import display_url
from casdesired.errors import ConfigError
from casdesired.lab.dns import LabDnsServer
from casdesired.lab.exchange import statefile
from casdesired.lab.exchange.errors import LabStateError
from casdesired.lab.exchange.organisation import Organisation
from casdesired.lab.exchange.seeds import read_seed_file
from casdesired.lab.exchange.state import OrgState
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.process import LogonKind
from casdesired.lab.server import Lab
from casdesired.transport.winrm import WinRMTarget, delivery_of


def default_state_path(org_name: str, environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/casdesired/<name>-lab.json``, else ``~/.local/state/casdesired/...``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in org_name) or "organisation"
    return root / "casdesired" / f"{safe}-lab.json"


def state_path_for(org: OrganisationConfig, state_path: Path | None = None) -> Path:
    """Where the lab of ``org`` keeps its state: explicit, then the YAML's, then the default."""
    return state_path or org.connection.lab_state or default_state_path(org.name)


@contextmanager
def running_lab(
    org: OrganisationConfig, state_path: Path | None = None
) -> Iterator[tuple[Lab, WinRMTarget]]:
    """Start the organisation's lab; yield it and the target to reach it; stop it on exit."""
    if not org.connection.is_lab:
        raise ConfigError(f"organisation {org.name!r} does not target the lab")
    path = state_path_for(org, state_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One journal and one set of faults for the wire side and the Exchange side, so the
    # journal shows commands and cmdlets together and every fault kind takes effect.
    journal, faults = Journal(), Faults()
    organisation = Organisation.from_file(path, journal=journal, faults=faults)
    with (
        Lab(
            organisation,
            host="127.0.0.1",
            port=0,
            auth="ntlm",
            journal=journal,
            faults=faults,
            logon=_logon_of(org),
        ) as lab,
        LabDnsServer(organisation) as dns_server,  # `dns: {resolvers: [lab]}` asks this one
        _registered_dns(path, dns_server.address),
    ):
        yield lab, _target(org, lab)


def _logon_of(org: OrganisationConfig) -> LogonKind:
    """The logon the embedded lab models: the one the configured transport would give on
    Windows (its wire is always NTLM). Kerberos here is Kerberos without delegation."""
    transport = org.connection.transport
    if transport in ("kerberos", "credssp", "basic"):
        return cast(LogonKind, transport)
    return "ntlm"


# The DNS servers of the embedded labs running in this process, by state file: what
# `dns.resolvers: [lab]` means while a plan (or apply) has the organisation's lab running.
_running_dns: dict[Path, list[str]] = {}
_running_dns_lock = threading.Lock()


@contextmanager
def _registered_dns(path: Path, address: str) -> Iterator[None]:
    key = path.resolve()
    with _running_dns_lock:
        _running_dns.setdefault(key, []).append(address)
    try:
        yield
    finally:
        with _running_dns_lock:
            _running_dns[key].remove(address)
            if not _running_dns[key]:
                del _running_dns[key]


@contextmanager
def lab_dns(org: OrganisationConfig, state_path: Path | None = None) -> Iterator[str]:
    """``127.0.0.1:PORT`` of the organisation's lab DNS server for the ``with`` block.

    The running embedded lab's server when there is one (so both answer from the same
    organisation); otherwise a server started from the lab's state file for the block.
    """
    if not org.connection.is_lab:
        raise ConfigError(
            f"dns.resolvers 'lab' means the embedded lab's DNS server, but organisation "
            f"{org.name!r} does not target the lab (connection.endpoint is "
            f"{display_url(org.connection.endpoint)!r})"
        )
    path = state_path_for(org, state_path)
    with _running_dns_lock:
        running = list(_running_dns.get(path.resolve(), ()))
    if running:
        yield running[-1]
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with LabDnsServer(Organisation.from_file(path)) as dns_server:
        yield dns_server.address


@contextmanager
def embedded_lab(org: OrganisationConfig, state_path: Path | None = None) -> Iterator[WinRMTarget]:
    """The target of the organisation's embedded lab, running for the ``with`` block."""
    with running_lab(org, state_path) as (_lab, target):
        yield target


def _target(org: OrganisationConfig, lab: Lab) -> WinRMTarget:
    conn = org.connection
    mode = conn.exchange_mode
    if mode == "remote":
        exchange = protocol.ExchangeSession(mode="remote", uri=conn.exchange_uri)
    else:
        snapin_or_none: Literal["snapin", "none"] = "none" if mode == "none" else "snapin"
        exchange = protocol.ExchangeSession(mode=snapin_or_none)
    return WinRMTarget(
        url=lab.url,
        transport="ntlm",
        username=lab.credentials.username,
        password=lab.credentials.password,
        message_encryption="auto",  # NTLM over HTTP: encrypted, as Windows requires
        connect_timeout=conn.connect_timeout,
        operation_timeout=conn.operation_timeout,
        read_timeout=conn.operation_timeout + 10.0,
        exchange=exchange,
        delivery=delivery_of(conn),
        start_timeout=conn.agent_start_timeout,
        credential_source="the embedded lab",
    )


@dataclass(frozen=True)
class LabReset:
    """What ``casdesired lab reset`` did: the state file, the seed it now holds, and where an
    unreadable state file was moved instead of being overwritten."""

    state: Path
    seed: Path
    unreadable_kept: Path | None = None


def reset_directory(directory: Path) -> LabReset:
    """``casdesired lab reset DIR``: reset the lab state of the organisation in ``directory``."""
    from casdesired.desired.loader import load_desired

    org = load_desired(directory).organisation
    if not org.connection.is_lab:
        raise ConfigError(
            f"organisation {org.name!r} in {directory} does not target the lab "
            f"(connection.endpoint is {display_url(org.connection.endpoint)!r}): nothing to reset"
        )
    return reset_lab_state(state_path_for(org))


def reset_lab_state(path: Path) -> LabReset:
    """Put the lab's state file back to its own seed (kept beside it; see
    :mod:`casdesired.lab.exchange.organisation`); never to another organisation.

    A state file that cannot be read is not overwritten: it is moved to ``NAME.unreadable``
    (its organisation is unknown, so it might be one a person wrote), then the state is
    recreated from its seed file, else from the example seed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    read_seed_file(path)  # an unusable seed file stops the reset before anything moves
    kept: Path | None = None
    if path.exists() and not _readable_state(path):
        kept = path.with_name(path.name + ".unreadable")
        os.replace(path, kept)
    organisation = Organisation.from_file(path)
    organisation.reset()
    return LabReset(state=path, seed=statefile.seed_path(path), unreadable_kept=kept)


def _readable_state(path: Path) -> bool:
    try:
        OrgState(statefile.read(path))
    except LabStateError:
        return False
    return True
