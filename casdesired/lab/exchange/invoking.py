"""How the lab's organisation runs one cmdlet, as an Exchange 2010 server would.

:class:`RunsCmdlets` is the :class:`~casdesired.lab.exchange.runner.CmdletRunner` half of
:class:`~casdesired.lab.exchange.organisation.Organisation`: the agent's fence check, and
:meth:`RunsCmdlets.invoke` -- find the cmdlet (the agent's functions, doctor's probes, Exchange's
and NLB's cmdlets), check the account's RBAC roles, bind the parameters, refuse a snap-in
cmdlet whose AD bind would be a second hop, play a test's fault, run the handler under the
state lock, write the admin audit log entry (field §4: a cmdlet that fails before the audit
agent runs leaves none), save, and meter the output. A blocking cmdlet (an NLB drain) waits
outside the lock. Every run is journaled.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from casdesired.lab.exchange import agent_functions, binding, cmdlets, locks, probes, rbac
from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.auditlog import caller_name, record_run
from casdesired.lab.exchange.binding import CmdletContext, LabValue, Obj, Provider, Session
from casdesired.lab.exchange.lockfiles import LockFiles
from casdesired.lab.exchange.metered import Metered
from casdesired.lab.exchange.runner import CmdletOutput
from casdesired.lab.exchange.state import OrgState
from casdesired.lab.faults import Faults
from casdesired.lab.journal import Journal
from casdesired.lab.process import Logon

DEFAULT_WINRM = {
    "MaxEnvelopeSizekb": 150, "MaxTimeoutms": 60000, "MaxShellsPerUser": 5,
    "MaxMemoryPerShellMB": 150, "IdleTimeout": 180000,
}
"""Windows Server 2008 R2's WinRM quotas, for an organisation run without a Lab around it."""


class RunsCmdlets:
    """Running cmdlets against the organisation's state (mixed into ``Organisation``, which
    provides the attributes and methods declared here)."""

    _lock: threading.RLock
    _state: OrgState
    journal: Journal
    faults: Faults
    logon: Logon
    winrm_limits: Any

    @property
    def hostname(self) -> str:
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def _host_time(self) -> float:
        raise NotImplementedError

    def _save_locked(self) -> None:
        raise NotImplementedError

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
                self._state, now, session, loaded=loaded, winrm=limits or DEFAULT_WINRM
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
