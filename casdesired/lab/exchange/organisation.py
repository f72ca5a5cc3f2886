"""The lab's Exchange organisation: state behind one lock, cmdlets, agent, state file.

:class:`Organisation` is what the WS-Man side calls (it is a
:class:`~casdesired.lab.process.PowerShellHost`) and what the control API reads and replaces.
Runs may arrive concurrently from several shells: every read or change of the state happens
under one lock; sleeps (fault delays, ``until`` polling) happen outside it.

Every organisation keeps its own seed, the document :meth:`Organisation.reset` goes back to, and
a reset never turns one organisation into another. The seed is the shipped seed the state names
when that seed is the same organisation (same name and domain); otherwise -- a user's own
organisation -- the state as the lab first held it. A file-backed organisation keeps its seed
beside the state file (``NAME.seed.json``), so ``casdesired lab reset`` and later runs restore
that organisation and not the example one.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from casdesired.agent.protocol import ParamValue
from casdesired.lab.exchange import binding, cmdlets, locks, powershell, probes, rbac, statefile
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.agent import CmdletOutput
from casdesired.lab.exchange.binding import CmdletContext, Obj, Provider, Session
from casdesired.lab.exchange.lockfiles import LockFiles
from casdesired.lab.exchange.models import Behaviour
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


class LabClock(Protocol):
    """Where the organisation's time comes from: wall clock (lock leases, NLB drains),
    monotonic clock and sleep (``until`` polling, keepalives, slow-cmdlet faults). Tests pass a
    fake one to run a 15-minute lease or a long drain in no time."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


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
        self._seed = _seed_for(self._state, seed)
        self.journal = journal if journal is not None else Journal()
        self.faults = faults if faults is not None else Faults()
        self.logon = Logon()
        """Who the WinRM endpoint's connections log on as (the Lab sets it from its account
        and its ``logon`` kind): whether they can delegate decides the double hop."""
        self._exchange_sessions: dict[str, int] = {}
        self.winrm_limits: Any = None
        """The endpoint's WinRM quotas (the Lab sets its ``WinRMLimits``): what the agent's
        Get-CasdesiredWinRMConfig reads. None: Windows Server 2008 R2's defaults."""

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
        data = _seeded(name, seed)
        return cls(data, journal=journal, faults=faults, clock=clock, seed=copy.deepcopy(data))

    @classmethod
    def from_file(
        cls, path: Path, *, journal: Journal | None = None, faults: Faults | None = None
    ) -> Organisation:
        """The organisation kept in ``path``; created from its seed file, else from the contoso
        seed, if it is missing. Every change is saved back to it atomically; its seed is kept
        beside it (:func:`statefile.seed_path`), written the first time it is opened."""
        path = Path(path)
        kept = read_seed_file(path)
        if path.exists():
            data = statefile.read(path)
        else:
            data = copy.deepcopy(kept) if kept is not None else _seeded("contoso", 0)
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
            seed = _seed_for(state, self._seed)
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
        parameters: Mapping[str, ParamValue],
        loaded: frozenset[Provider],
        session: Session | None = None,
    ) -> CmdletOutput:
        """Run one cmdlet as the server would; journal it; save if it changed the state."""
        identity = next(
            (str(v) for k, v in parameters.items() if k.lower() == "identity" and v is not None),
            None,
        )
        where = session if session is not None else Session(self.hostname)
        try:
            output = self._invoke(cmdlet, parameters, loaded, identity, where)
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
        parameters: Mapping[str, ParamValue],
        loaded: frozenset[Provider],
        identity: str | None,
        session: Session,
    ) -> CmdletOutput:
        cmdlet = locks.lookup(name) or probes.lookup(name) or cmdlets.lookup(name, loaded)
        if cmdlet.provider == "agent" and session.computer.lower() != self.hostname.lower():
            raise err.CommandNotFound(name)  # the agent's functions exist where it runs
        with self._lock:
            settings = self._state.settings
        rbac.check(settings, session, cmdlet, parameters)
        args = binding.bind(cmdlet, parameters)
        if cmdlet.provider == "exchange" and not session.exchange_reaches_ad and (
            cmdlet.name != "Set-AdServerSettings"
        ):
            raise self._double_hop(cmdlet.name, identity)
        fault = self.faults.take_cmdlet(cmdlet.name, identity)
        if fault is not None:
            self.sleep(fault.delay_seconds)
            if fault.gate is not None:  # a test holds the cmdlet here (see lab.faults.Gate)
                self.faults.gate(fault.gate).pass_through()
            if fault.fail:
                raise err.ExchangeError(fault.message, target=identity or "",
                                        category=fault.category)
        limits = self.winrm_limits.to_json() if self.winrm_limits is not None else {}
        with self._lock:
            now = self._host_time()
            settled = self._state.settle(now)
            ctx = CmdletContext(
                self._state, now, session, loaded=loaded, winrm=limits or _DEFAULT_WINRM
            )
            produced = cmdlet.handler(ctx, args)
            # Lists are built under the lock; only Get-Mailbox streams, from a copy of counts.
            objects: list[Obj] | Iterator[Obj] = (
                produced if isinstance(produced, Iterator) else list(produced)
            )
            if ctx.changed or settled:
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

    def _double_hop(self, cmdlet: str, identity: str | None) -> err.ExchangeError:
        """What the snap-in's cmdlets say when their AD bind is a second hop (field §1a)."""
        if cmdlet == "Get-Mailbox":
            return err.ExchangeError(err.SNAPIN_DOUBLE_HOP_MAILBOX, target=identity or "",
                                     category="ArgumentNullException")
        with self._lock:
            dc = self._state.domain_controller
        return err.ExchangeError(err.SNAPIN_DOUBLE_HOP.format(dc=dc), target=identity or "",
                                 category="ADOperationException")


class Metered(Iterator[Obj]):
    """A cmdlet's output, charging the cost model's server time for every object it returns.

    Time is charged as objects are consumed (in slices, outside the state lock), and for the
    whole listing when the agent only counts it (``count_by``, see agent._counted): counting a
    million mailboxes costs what returning them costs, as it does in a real pipeline.
    """

    SLICE = 1000

    def __init__(
        self, objects: Iterable[Obj], seconds_each: float, sleep: Callable[[float], None]
    ) -> None:
        self._objects = objects
        self._iter = iter(objects)
        self._each = seconds_each
        self._sleep = sleep
        self._owed = 0

    def __next__(self) -> Obj:
        try:
            obj = next(self._iter)
        except StopIteration:
            self._pay()
            raise
        self._owed += 1
        if self._owed >= self.SLICE:
            self._pay()
        return obj

    def _pay(self) -> None:
        if self._owed and self._each > 0:
            self._sleep(self._owed * self._each)
        self._owed = 0

    def count_by(self, prop: str) -> dict[str, int] | None:
        count_by = getattr(self._objects, "count_by", None)
        groups = count_by(prop) if callable(count_by) else None
        if groups is not None and self._each > 0:
            self._sleep(sum(groups.values()) * self._each)
        return groups


def _seeded(name: str, seed: int) -> dict[str, Any]:
    data = statefile.load_seed(name)
    data["random"] = {"seed": seed, "draws": 0}
    return data


def _same_organisation(a: OrgState, b: OrgState) -> bool:
    return (a.org_name.casefold(), _domain_key(a)) == (b.org_name.casefold(), _domain_key(b))


def _domain_key(state: OrgState) -> str:
    return state.domain.strip().rstrip(".").casefold()


def _seed_for(state: OrgState, kept: dict[str, Any] | None) -> dict[str, Any]:
    """The seed of ``state``: ``kept`` when it is the same organisation (the very object, so a
    caller can tell nothing changed); else the shipped seed the state names, when it is the
    same organisation (with the state's random seed); else the state itself."""
    if kept is not None and _same_organisation(OrgState(kept), state):
        return kept
    try:
        shipped = _seeded(state.seed_name, state.random_seed)
    except err.LabStateError:  # a name no shipped seed has: the user's own organisation
        shipped = None
    if shipped is not None and _same_organisation(OrgState(shipped), state):
        return shipped
    return state.to_json()


def read_seed_file(state_path: Path) -> dict[str, Any] | None:
    """The seed kept beside the state file ``state_path``, validated; ``None`` if there is
    none yet. Raises LabStateError naming the seed file if it is unusable."""
    path = statefile.seed_path(state_path)
    if not path.exists():
        return None
    data = statefile.read(path)
    try:
        OrgState(data)
    except err.LabStateError as exc:
        raise err.LabStateError(f"{path}: {exc}") from None
    return data
