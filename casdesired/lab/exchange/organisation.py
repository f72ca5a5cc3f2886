"""The lab's Exchange organisation: state behind one lock, cmdlets, agent, state file.

:class:`Organisation` is what the WS-Man side calls (it is a
:class:`~casdesired.lab.process.PowerShellHost`) and what the control API reads and replaces.
Runs may arrive concurrently from several shells: every read or change of the state happens
under one lock; sleeps (fault delays, ``until`` polling) happen outside it.

Every organisation keeps its own seed, the document :meth:`Organisation.reset` goes back to
(:mod:`.seeds` says which); a reset never turns one organisation into another. A cmdlet's output
is charged by the cost model as it is consumed (:mod:`.metered`).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from casdesired.lab.exchange import (
    agent_functions,
    binding,
    cmdlets,
    locks,
    powershell,
    probes,
    rbac,
    seeds,
    statefile,
)
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.auditlog import caller_name, record_run
from casdesired.lab.exchange.binding import CmdletContext, LabValue, Obj, Provider, Session
from casdesired.lab.exchange.clock import LabClock, SystemClock
from casdesired.lab.exchange.hostfiles import OrganisationFiles
from casdesired.lab.exchange.lockfiles import LockFiles
from casdesired.lab.exchange.metered import Metered
from casdesired.lab.exchange.models import Behaviour
from casdesired.lab.exchange.runner import CmdletOutput
from casdesired.lab.exchange.state import OrgState
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.process import Logon, ProcessResult

MAILBOXES_PER_NEW_DATABASE = (20, 450)
NLB_MODULE = "NetworkLoadBalancingClusters"
_DEFAULT_WINRM = {
    "MaxEnvelopeSizekb": 150, "MaxTimeoutms": 60000, "MaxShellsPerUser": 5,
    "MaxMemoryPerShellMB": 150, "IdleTimeout": 180000,
}
"""Windows Server 2008 R2's WinRM quotas, for an organisation run without a Lab around it."""


class Organisation:
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

    def check_fence(self, lock_id: str, cmdlet: str) -> None:
        """The agent's lock check before a write (Assert-CasdesiredFence); journaled as a
        ``fence`` entry, not as a cmdlet (no request can name it)."""
        try:
            with self._lock:
                now = datetime.fromtimestamp(self._host_time(), timezone.utc)
                files = LockFiles(
                    self._state.files, writable=self._state.settings.lock_directory_writable
                )
                locks.run_steps(locks.fence_steps(files, now, {"LockId": lock_id}))
        except err.ExchangeError as exc:
            self.journal.record("fence", lock_id=lock_id, before=cmdlet, ok=False,
                                error=exc.message)
            raise
        self.journal.record("fence", lock_id=lock_id, before=cmdlet, ok=True, error=None)

    def invoke(
        self,
        cmdlet: str,
        parameters: Mapping[str, LabValue],
        loaded: frozenset[Provider],
        session: Session | None = None,
        *,
        caller: str | None = None,
        run_date: datetime | None = None,
    ) -> CmdletOutput:
        """Run one cmdlet as the server would; journal it; audit it (as ``caller``, the logon's
        account by default, at ``run_date``, now by default); save if it changed the state."""
        identity = next(
            (str(v) for k, v in parameters.items() if k.lower() == "identity" and v is not None),
            None,
        )
        where = session if session is not None else Session(self.hostname)
        run = _Run(caller or self.logon.user, run_date, identity)
        try:
            output = self._invoke(cmdlet, parameters, loaded, where, run)
        except err.ExchangeError as exc:
            self.journal.record(
                "cmdlet", cmdlet=cmdlet, parameters=dict(parameters), ok=False, error=exc.message
            )
            raise
        self.journal.record("cmdlet", cmdlet=cmdlet, parameters=dict(parameters), ok=True,
                            error=None)
        return output

    def _invoke(
        self,
        name: str,
        parameters: Mapping[str, LabValue],
        loaded: frozenset[Provider],
        session: Session,
        run: _Run,
    ) -> CmdletOutput:
        cmdlet = agent_functions.lookup(name) or probes.lookup(name) or cmdlets.lookup(
            name, loaded
        )
        if cmdlet.provider in ("agent", "probes") and (
            session.computer.lower() != self.hostname.lower()
            or (cmdlet.provider == "probes" and "probes" not in loaded)
        ):
            raise err.CommandNotFound(name)  # the agent's functions exist where it runs
        with self._lock:
            settings = self._state.settings
        # A cmdlet that fails before the audit agent runs (RBAC, binding, an unreachable AD)
        # leaves no audit entry; one that fails after does, as failed (field §4).
        rbac.check(settings, session, cmdlet, parameters)
        args = binding.bind(cmdlet, parameters)
        if cmdlet.provider == "exchange" and not session.exchange_reaches_ad and (
            cmdlet.name != "Set-AdServerSettings"
        ):
            raise self._double_hop(cmdlet.name, run.identity)
        fault = self.faults.take_cmdlet(cmdlet.name, run.identity)
        if fault is not None:
            self.sleep(fault.delay_seconds)
            if fault.gate is not None:  # a test holds the cmdlet here (see lab.faults.Gate)
                self.faults.gate(fault.gate).pass_through()
            if fault.fail:
                with self._lock:
                    if self._audited(cmdlet, args):
                        self._audit(cmdlet, args, run, None, error=fault.message)
                        self._save_locked()
                raise err.ExchangeError(fault.message, target=run.identity or "",
                                        category=fault.category)
        limits = self.winrm_limits.to_json() if self.winrm_limits is not None else {}
        with self._lock:
            now = self._host_time()
            settled = self._state.settle(now)
            # Whether it is logged is decided by the configuration it started under (a change
            # of the configuration is logged, or not, by the old one).
            audited = self._audited(cmdlet, args)
            ctx = CmdletContext(
                self._state, now, session, loaded=loaded, winrm=limits or _DEFAULT_WINRM
            )
            try:
                produced = cmdlet.handler(ctx, args)
            except err.ExchangeError as exc:
                if audited:
                    self._audit(cmdlet, args, run, ctx.object_modified, error=exc.message)
                    self._save_locked()
                raise
            # Lists are built under the lock; only Get-Mailbox streams, from a copy of counts.
            objects: list[Obj] | Iterator[Obj] = (
                produced if isinstance(produced, Iterator) else list(produced)
            )
            if audited:
                self._audit(cmdlet, args, run, ctx.object_modified, error=None)
            if ctx.changed or settled or audited:
                self._save_locked()
            cost = self._state.settings.object_cost_ms / 1000.0
        if ctx.block_until is not None and ctx.after_block is not None:
            # The cmdlet blocks (a drain) outside the lock; what it returns is read afterwards.
            self.sleep(ctx.block_until - self._host_time())
            with self._lock:
                if self._state.settle(self._host_time()):
                    self._save_locked()
                objects = ctx.after_block()
        lines = [*ctx.host_lines, *(f"WARNING: {w}" for w in ctx.warnings)]
        return CmdletOutput(objects=Metered(objects, cost, self.sleep), host_lines=lines)

    def _audited(self, cmdlet: binding.Cmdlet, args: Mapping[str, Any]) -> bool:
        """Whether the admin audit log's rules log this run (under the state lock)."""
        return cmdlet.provider == "exchange" and self._state.audit.logs(cmdlet.name, args)

    def _audit(
        self, cmdlet: binding.Cmdlet, args: Mapping[str, Any], run: _Run, modified: str | None,
        *, error: str | None,
    ) -> None:
        """Write the run's admin audit log entry (under the state lock)."""
        record_run(
            self._state.audit, cmdlet.name, args,
            caller=caller_name(run.caller, self._state.domain),
            run_date=run.run_date or datetime.fromtimestamp(self._host_time(), timezone.utc),
            modified=modified if modified is not None else run.identity or "",
            error=error,
        )

    def _double_hop(self, cmdlet: str, identity: str | None) -> err.ExchangeError:
        """What the snap-in's cmdlets say when their AD bind is a second hop (field §1a)."""
        if cmdlet == "Get-Mailbox":
            return err.ExchangeError(err.SNAPIN_DOUBLE_HOP_MAILBOX, target=identity or "",
                                     category="ArgumentNullException")
        with self._lock:
            dc = self._state.domain_controller
        return err.ExchangeError(err.SNAPIN_DOUBLE_HOP.format(dc=dc), target=identity or "",
                                 category="ADOperationException")


@dataclass(frozen=True)
class _Run:
    """Who runs a cmdlet, when, and the Identity it was given (for the audit log)."""

    caller: str
    run_date: datetime | None
    identity: str | None
