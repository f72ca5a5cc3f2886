"""The lab's Exchange organisation: state behind one lock, cmdlets, agent, state file.

:class:`Organisation` is what the WS-Man side calls (it is a
:class:`~casdesired.lab.process.PowerShellHost`) and what the control API reads and replaces.
Runs may arrive concurrently from several shells: every read or change of the state happens
under one lock; sleeps (fault delays, ``until`` polling) happen outside it.

Every organisation keeps its own seed, the document :meth:`Organisation.reset` goes back to
(:mod:`.seeds` says which); a reset never turns one organisation into another. A cmdlet's output
is charged by the cost model as it is consumed (:mod:`.metered`); how a cmdlet runs is
:mod:`.invoking`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange import (
    powershell,
    seeds,
    statefile,
)
from casdesired.lab.exchange.clock import LabClock, SystemClock
from casdesired.lab.exchange.hostfiles import OrganisationFiles
from casdesired.lab.exchange.invoking import RunsCmdlets
from casdesired.lab.exchange.models import Behaviour
from casdesired.lab.exchange.state import OrgState
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.process import Logon, ProcessResult

MAILBOXES_PER_NEW_DATABASE = (20, 450)
NLB_MODULE = "NetworkLoadBalancingClusters"


class Organisation(RunsCmdlets):
    """An Exchange 2010 organisation for the lab, optionally backed by a state file."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        path: Path | None = None,
        journal: Journal | None = None,
        faults: Faults | None = None,
        clock: LabClock | None = None,
        seed: dict[str, Any] | None = None,
    ) -> None:
        """``seed``: the document :meth:`reset` returns to, if it is the same organisation as
        ``data``; otherwise (and by default) the seed the module's doc describes."""
        self._lock = threading.RLock()
        self.clock: LabClock = clock if clock is not None else SystemClock()
        self._state = OrgState(data)
        self._path = path
        self._seed = seeds.seed_for(self._state, seed)
        self.journal = journal if journal is not None else Journal()
        self.faults = faults if faults is not None else Faults()
        self.logon = Logon()
        """Who the WinRM endpoint's connections log on as (the Lab sets it from its account
        and its ``logon`` kind): whether they can delegate decides the double hop."""
        self._exchange_sessions: dict[str, int] = {}
        self.winrm_limits: Any = None
        """The endpoint's WinRM quotas (the Lab sets its ``WinRMLimits``): what the agent's
        Get-CasdesiredWinRMConfig reads. None: Windows Server 2008 R2's defaults."""
        self.files = OrganisationFiles(
            self._lock, lambda: self._state.files, self._save_locked, lambda: self.journal
        )
        """The endpoint host's files (the lock's, the file delivery's), as its processes and
        cmd.exe reach them; kept in the state (``files``) and saved with it."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_seed(
        cls,
        name: str = "contoso",
        *,
        journal: Journal | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        clock: LabClock | None = None,
    ) -> Organisation:
        """A fresh in-memory organisation from a shipped seed; ``seed`` drives its GUIDs."""
        data = seeds.seeded(name, seed)
        return cls(data, journal=journal, faults=faults, clock=clock, seed=copy.deepcopy(data))

    @classmethod
    def from_file(
        cls, path: Path, *, journal: Journal | None = None, faults: Faults | None = None
    ) -> Organisation:
        """The organisation kept in ``path``; created from its seed file, else from the contoso
        seed, if it is missing. Every change is saved back to it atomically; its seed is kept
        beside it (:func:`statefile.seed_path`), written the first time it is opened."""
        path = Path(path)
        kept = seeds.read_seed_file(path)
        if path.exists():
            data = statefile.read(path)
        else:
            data = copy.deepcopy(seeds.follow(kept)) if kept is not None else seeds.seeded(
                "contoso", 0)
        org = cls(data, path=path, journal=journal, faults=faults, seed=kept)
        if not path.exists():
            org.save()
        if org._seed is not kept:  # first opened, or the file now holds another organisation
            org._save_seed()
        return org

    @property
    def seed_file(self) -> Path | None:
        """Where this organisation's seed is kept (``None`` in memory)."""
        return statefile.seed_path(self._path) if self._path is not None else None

    # ------------------------------------------------------------------ the host interface
    @property
    def hostname(self) -> str:
        """The server the WinRM endpoint runs on (``$env:COMPUTERNAME``)."""
        with self._lock:
            return self._state.endpoint_host

    def run(self, script: str, stdin: bytes) -> ProcessResult:
        return powershell.run(self, script, stdin)

    # ------------------------------------------------------------------ state access
    def snapshot(self) -> dict[str, Any]:
        """The whole state as a JSON-ready document (what the state file holds)."""
        with self._lock:
            self._state.settle(self._host_time())
            return self._state.to_json()

    def load(self, data: dict[str, Any]) -> None:
        """Replace the state (validated first: a bad document changes nothing). A document of
        another organisation brings its own seed (see the module's doc)."""
        state = OrgState(data)
        with self._lock:
            seed = seeds.seed_for(state, self._seed)
            self._state = state
            self._save_locked()
            if seed is not self._seed:
                self._seed = seed
                self._save_seed()

    def reset(self) -> None:
        """Back to this organisation's own seed; never to another organisation."""
        with self._lock:
            self._state = OrgState(copy.deepcopy(self._seed))
            self._save_locked()

    def save(self) -> None:
        """Write the state file atomically (no-op when the organisation is in memory only)."""
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        if self._path is not None:
            statefile.write_atomic(self._path, self._state.to_json())

    def _save_seed(self) -> None:
        seed_file = self.seed_file
        if seed_file is not None:
            statefile.write_atomic(seed_file, self._seed)

    @property
    def behaviour(self) -> Behaviour:
        """The [OPEN]-behaviour switches; change them with :meth:`configure`."""
        with self._lock:
            return Behaviour.from_json(self._state.settings.to_json())

    def configure(self, **switches: Any) -> None:
        """Set behaviour switches, e.g. ``configure(nlb_drain_seconds=2)``."""
        with self._lock:
            merged = {**self._state.settings.to_json(), **switches}
            self._state.settings = Behaviour.from_json(merged)
            self._save_locked()

    def add_databases(
        self,
        n: int,
        site: str,
        prefix: str,
        mailboxes: tuple[int, int] = MAILBOXES_PER_NEW_DATABASE,
    ) -> None:
        """Create ``n`` databases named ``<prefix>01``... in ``site``, bound as Exchange binds
        new databases, each with a seeded mailbox count in ``mailboxes`` (an inclusive range;
        for benchmarks)."""
        with self._lock:
            rng = self._state.rng(f"add_databases:{prefix}")
            low, high = mailboxes
            counts = (rng.randint(low, high) for _ in range(n))
            try:
                self._state.add_databases(n, site, prefix, counts)
            except err.ExchangeError as exc:
                raise err.LabStateError(f"cannot add databases: {exc.message}") from None
            self._save_locked()

    @property
    def netbios_domain(self) -> str:
        """The NetBIOS name of the organisation's AD domain (``FABRIKAM`` for fabrikam.local):
        what its accounts are written with, ``FABRIKAM\\user``."""
        with self._lock:
            return self._state.domain.split(".", 1)[0].upper()[:15]

    # ------------------------------------------------------------------ DNS (casdesired.lab.dns)
    @property
    def dns_zone(self) -> str:
        """The zone the lab's DNS server answers for: the organisation's AD domain."""
        with self._lock:
            return self._state.domain

    def dns_records(self) -> dict[str, list[str]]:
        """The lab DNS server's A records: FQDN -> addresses (a copy)."""
        with self._lock:
            return {name: list(a) for name, a in self._state.dns_records.items()}

    def set_dns_records(self, records: Mapping[str, Sequence[str]]) -> None:
        """Replace every A record (validated first: bad records change nothing); saved."""
        from casdesired.lab.dns import normalise_records

        checked = normalise_records({k: list(v) for k, v in dict(records).items()})
        with self._lock:
            self._state.dns_records = checked
            self._save_locked()

    # ------------------------------------------------------------------ sessions (field §1, §5)
    def credential_valid(self, username: str, password: str) -> bool:
        """Whether explicit credentials given inside the session are the account's."""
        return username.lower() == self.logon.user.lower() and password == self.logon.password

    def open_exchange_session(self, user: str) -> bool:
        """Count a /PowerShell session of ``user``; False when Exchange's throttling policy
        (``exchange_session_limit``) refuses it."""
        with self._lock:
            limit = self._state.settings.exchange_session_limit
            open_now = self._exchange_sessions.get(user.lower(), 0)
            if open_now >= limit:
                return False
            self._exchange_sessions[user.lower()] = open_now + 1
            return True

    def close_exchange_session(self, user: str) -> None:
        with self._lock:
            open_now = self._exchange_sessions.get(user.lower(), 0)
            self._exchange_sessions[user.lower()] = max(0, open_now - 1)

    def exchange_sessions(self, user: str | None = None) -> int:
        """Open /PowerShell sessions of ``user`` (the lab's account by default)."""
        with self._lock:
            return self._exchange_sessions.get((user or self.logon.user).lower(), 0)

    def leak_exchange_sessions(self, count: int, user: str | None = None) -> None:
        """Sessions some other client opened and never removed (they last until the app pool
        recycles): a test sets them to see the throttling refusal."""
        with self._lock:
            self._exchange_sessions[(user or self.logon.user).lower()] = max(0, count)

    # ------------------------------------------------------------------ CmdletRunner
    # (invoke and check_fence: RunsCmdlets, in .invoking)
    def has_server(self, name: str) -> bool:
        with self._lock:
            try:
                self._state.find_server(name)
            except err.ExchangeError:
                return False
            return True

    def reachable(self, name: str) -> bool:
        """Whether other computers reach server ``name`` over the network (WinRM, WMI)."""
        with self._lock:
            try:
                return self._state.find_server(name).reachable
            except err.ExchangeError:
                return False

    def has_module(self, name: str, module: str) -> bool:
        """Whether ``module`` is installed on server ``name`` (NLB's, the only one the agent
        imports)."""
        with self._lock:
            try:
                server = self._state.find_server(name)
            except err.ExchangeError:
                return False
            return module.lower() == NLB_MODULE.lower() and server.nlb_module

    @property
    def settings(self) -> Behaviour:
        """The switches as they are now (a copy), for the agent's executor."""
        return self.behaviour

    def _host_time(self) -> float:
        """The endpoint host's clock: the lab's, off by ``host_clock_skew_seconds``."""
        return self.clock.time() + self._state.settings.host_clock_skew_seconds

    def monotonic(self) -> float:
        return self.clock.monotonic()

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(max(0.0, seconds))
