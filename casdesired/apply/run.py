"""``casdesired apply`` from start to finish.

1. Take the organisation lock and read the live organisation in ONE command execution.
2. Directory: diff and make the plan now (counting the mailboxes of the databases it rebinds:
   one more execution, only if it rebinds any). Plan file: refuse it if it was applied before
   (the local audit log, then the Windows side) or is stale (per-object fingerprints).
3. Run every pre-write safety check (:mod:`.safety`), show the plan, ask for "yes" on a
   terminal (``--auto-approve`` in pipelines).
4. Execute in batches (:mod:`.execute`), stop at the first failure or interrupt.
5. Re-read and release the lock in one execution; verify; write the rollback plan
   (:mod:`.rollback`) and the audit log (:mod:`.audit`); report applied / failed / not
   attempted (:mod:`.report`).

Whatever ends an apply after it may have taken the lock (an error, a refusal, a lost answer), it
releases the lock itself, with its own lock id, and when something went wrong it says whether
the lock is still held and, if it may be, the exact ``casdesired unlock`` command. The one
deliberate exception: a write batch whose answer was lost may still be running, so its lock is
kept (and said so).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TextIO

from casdesired import model
from casdesired.agent import protocol
from casdesired.apply import audit, execute, report, safety, verify
from casdesired.apply import lock as locking
from casdesired.apply.dns import DnsRecordExecutor, check_dns_gate, check_dns_management
from casdesired.apply.interrupts import Interrupts, PromptInterrupted, deferred_interrupts
from casdesired.apply.options import ApplyOptions as ApplyOptions
from casdesired.apply.progress import Step
from casdesired.apply.release import kept_warning, release_lock, say_released
from casdesired.apply.report import say
from casdesired.apply.rollback import write_rollback
from casdesired.apply.withheld import withheld_sites
from casdesired.changes.types import NlbNodeAdd, NlbNodeRemove
from casdesired.desired.config import DesiredState
from casdesired.errors import (
    AgentNotStarted,
    CasdesiredError,
    ConnectionFailed,
    PlanRefused,
    ProtocolError,
    ReadFailed,
)
from casdesired.live.convert import live_state_from_response
from casdesired.live.invocations import read_invocations, read_modules
from casdesired.live.mailboxes import count_mailboxes
from casdesired.live.state import LiveState
from casdesired.plan.build import connect, nlb_hosts, plan_from_live
from casdesired.plan.plan import Plan
from casdesired.plan.planfile import checksum
from casdesired.plan.render_text import TextRenderer
from casdesired.transport.winrm import AgentClient

LOCK_RETRY_SECONDS = 2.0

PRE_WRITE_CHECKS: tuple[safety.PreWriteCheck, ...] = (
    safety.check_blocking_findings,
    safety.check_scope,
    safety.check_stale,
    safety.check_desired_unchanged,
    safety.check_thresholds,
    check_dns_management,
    check_dns_gate,
)
"""Every check run before the first write, in order; all their refusals are shown at once."""

EXECUTORS: tuple[execute.ExtraExecutor, ...] = (DnsRecordExecutor(),)
"""Who carries out the changes the agent does not: DNS record changes (RFC 2136)."""


def apply(
    desired: DesiredState,
    saved: Plan | None,
    options: ApplyOptions,
    out: TextIO,
    err: TextIO,
) -> int:
    """Apply ``saved`` (a plan file) or a plan made now from ``desired``; the exit code."""
    org = desired.organisation
    options.record.plan = saved
    if options.ask is None and not options.auto_approve:
        raise PlanRefused(
            "no terminal to confirm on: re-run with --auto-approve to apply without asking "
            "(in a pipeline, apply a reviewed plan file: casdesired apply PLANFILE --auto-approve)"
        )
    if saved is not None:
        if model.key(saved.organisation) != model.key(org.name) or (
            saved.endpoint != org.connection.endpoint
        ):
            raise PlanRefused(
                f"the plan is for {saved.organisation} at {saved.endpoint}, but the organisation "
                f"file names {org.name} at {org.connection.endpoint}"
            )
        earlier = audit.already_applied(options.audit_log, saved.plan_id)
        if earlier is not None:
            raise PlanRefused(
                f"plan {saved.plan_id} was already applied on {earlier.get('time')} by "
                f"{earlier.get('who')} (audit log {options.audit_log}); make a new plan"
            )
    environ: Mapping[str, str] = os.environ if options.environ is None else options.environ
    execute.batch_limit(environ)  # a bad tuning knob is refused before the lock or any audit
    with deferred_interrupts() as interrupts, connect(org, environ) as client:
        return _Run(desired, saved, options, out, err, client, interrupts, environ).run()


class _Run:
    def __init__(
        self,
        desired: DesiredState,
        saved: Plan | None,
        options: ApplyOptions,
        out: TextIO,
        err: TextIO,
        client: AgentClient,
        interrupts: Interrupts,
        environ: Mapping[str, str],
    ) -> None:
        self.desired = desired
        self.saved = saved
        self.options = options
        self.out = out
        self.err = err
        self.client = client
        self.interrupts = interrupts
        self.lock_id = locking.new_lock_id()
        self.environ = environ
        self.who = locking.owner(environ)
        self.locked = False
        """The lock is (or, after a lost answer, may be) held by this apply: release it."""
        self.released: protocol.Result | None = None
        """What the verifying read's Exit-CasdesiredLock answered, when it did."""
        sites = saved.sites if saved is not None else options.sites
        self.sites = list(sites) if sites is not None else None
        self.hosts = self._nlb_hosts()
        self.progress = options.progress
        self.record = options.record

    def _nlb_hosts(self) -> list[str]:
        if self.saved is None:
            return nlb_hosts(self.desired, self.sites)
        hosts = [
            entry.partition(":")[2]
            for entry in self.saved.depends_on or {}
            if entry.startswith("nlb-cluster:")
        ]
        hosts += [
            c.cluster_host for c in self.saved.changes if isinstance(c, (NlbNodeAdd, NlbNodeRemove))
        ]
        return hosts or nlb_hosts(self.desired, self.sites)

    # --- steps ------------------------------------------------------------------------------

    def run(self) -> int:
        announce = False
        try:
            live = self._lock_and_read()
            return self._locked(live)
        except CasdesiredError as exc:
            # A deliberate refusal releases quietly; anything else says where the lock stands.
            announce = not isinstance(exc, PlanRefused)
            raise
        finally:
            self.progress.clear()
            if self.locked:
                self._release_only(announce=announce)

    def _lock_and_read(self) -> LiveState:
        """Take the lock and read in one execution; wait up to --lock-timeout for a holder."""
        deadline = time.monotonic() + max(0.0, self.options.lock_timeout)
        plan_id = self.saved.plan_id if self.saved is not None else None
        while True:
            self.progress(Step("taking the organisation lock and reading the live organisation"))
            invocations = (
                locking.enter(self.lock_id, self.who, locking.DEFAULT_LEASE_SECONDS, plan_id),
                *read_invocations(self.hosts),
            )
            request = self.client.make_request(invocations, modules=read_modules(self.hosts))
            try:
                response = self.client.run(request)
            except AgentNotStarted:
                raise  # nothing of the request ran: the lock was not taken
            except (ConnectionFailed, ProtocolError):
                # The answer was lost (or garbled) after the agent started: the lock may have
                # been taken. run() releases it, and says how that went.
                self.locked = True
                raise
            answer = locking.entered(response, self.desired.organisation.path)
            if answer.lock is not None:
                self.locked = True
                if answer.lock.taken_over_from:
                    say(self.err, "casdesired: took over the expired lock of "
                                  f"{answer.lock.taken_over_from}")
                return live_state_from_response(response, self.hosts)
            if not answer.busy:
                raise PlanRefused(answer.error or "could not take the organisation lock")
            if time.monotonic() >= deadline or self.interrupts():
                raise PlanRefused(
                    f"{answer.error} (waited {self.options.lock_timeout:g} s; "
                    "--lock-timeout SECONDS waits longer)"
                )
            self.progress.clear()
            say(self.err, "casdesired: the organisation is locked; waiting (--lock-timeout)")
            self.progress(Step("waiting for the organisation lock (--lock-timeout)",
                               max(0.0, deadline - time.monotonic())))
            time.sleep(min(LOCK_RETRY_SECONDS, max(0.0, deadline - time.monotonic())))

    def _locked(self, live: LiveState) -> int:
        plan = self.saved if self.saved is not None else self._make_plan(live)
        self.record.plan = plan
        self.progress(Step("running the safety checks"))
        refusals = safety.run_checks(
            safety.SafetyContext(
                plan=plan,
                live=live,
                policy=self.desired.organisation.policy,
                force=self.options.force,
                desired=self.desired,
                saved_plan=self.saved is not None,
            ),
            PRE_WRITE_CHECKS,
        )
        self.progress.clear()
        TextRenderer().render(plan, self.out)
        if refusals:
            self.record.refusals = [r.message for r in refusals]
            raise PlanRefused(
                "refused before any change was made:\n  " + "\n  ".join(r.message for r in refusals)
            )
        if not plan.changes:
            withheld = withheld_sites(plan)
            if withheld:
                # Blocking findings withheld every change: nothing ran, and nothing passes for
                # done (exit 1, as `casdesired plan` exits for them).
                report.nothing_applied(withheld, self.out, self.err)
                return 1
            say(self.out, "Nothing to apply.")
            return 0
        if not self.options.auto_approve:
            assert self.options.ask is not None
            try:
                with self.interrupts.raising():
                    answer = self.options.ask("Apply these changes? Only 'yes' is accepted: ")
            except PromptInterrupted:
                # On a new line: the terminal shows ^C right after the prompt. The lock is
                # released by run()'s finally, as for any refusal.
                say(self.err, "\ncasdesired: cancelled, nothing was changed")
                self.record.cancelled = True
                return self.interrupts.exit_code
            if answer.strip() != "yes":
                say(self.err, "casdesired: apply cancelled; nothing was changed")
                self.record.cancelled = True
                return 1
        if self.interrupts():
            say(self.err, "casdesired: interrupted before the first change; nothing was changed")
            self.record.cancelled = True
            return self.interrupts.exit_code
        return self._execute(plan, live)

    def _make_plan(self, live: LiveState) -> Plan:
        # The same plan `casdesired plan` shows: DNS record changes, notes and --force needs.
        return plan_from_live(
            self.desired,
            live,
            sites=self.sites,
            count=lambda databases: count_mailboxes(
                self.client, databases, progress=lambda text: self.progress(Step(text))
            ),
        )

    def _execute(self, plan: Plan, before: LiveState) -> int:
        started = audit.now()
        plan_hash = checksum(plan.to_json())
        audit.append(self.options.audit_log, audit.started_entry(
            plan, time=started, who=self.who, plan_hash=plan_hash, lock_id=self.lock_id))
        result = execute.execute(
            self.client,
            plan.changes,
            lock_id=self.lock_id,
            plan_id=plan.plan_id,
            interrupted=self.interrupts,
            extras=EXECUTORS,
            environ=self.environ,
            progress=self.progress,
        )
        self.record.result = result
        self.progress(Step("verifying the changes and releasing the lock"))
        # A batch whose answer was lost may still be running on the endpoint (the agent renews
        # the lease while it runs). Releasing now would let another pipeline write beside it:
        # keep the lock, and let its lease end it, or an operator who has checked.
        keep_lock = bool(result.by_status(execute.Status.UNKNOWN))
        after, problems = self._read_and_release(release=not keep_lock)
        self.progress.clear()
        if keep_lock:
            self.locked = False  # deliberately left held: the finally must not release it
            say(self.err, kept_warning(self.lock_id, self.desired.organisation.path))
        elif self.locked:
            # The read-and-release execution failed: release on its own, and say how it went.
            self._release_only(announce=True)
        applied = [o.change for o in result.by_status(execute.Status.APPLIED)]
        if after is not None:
            problems += verify.unconfirmed(applied, after)
            if result.ok and self._can_diff(plan):
                problems += [
                    f"still different after the apply: {d}"
                    for d in verify.remaining(self.desired, after, plan.sites)
                ]
        rollback = self._write_rollback(plan, result, before, after)
        self.record.problems, self.record.rollback = problems, rollback
        self.record.lock_kept = keep_lock
        withheld = withheld_sites(plan)
        code = 0
        if not result.ok or problems or withheld:
            # Changes withheld by blocking findings were not applied: the apply did not do all
            # the desired state asks, so it fails (the other sites' changes stay applied).
            code = 1
        if result.interrupted or self.interrupts():
            code = self.interrupts.exit_code
        if code and self.released is not None:
            # A failed apply says where the lock stands, before its error, also when the
            # verifying read released it.
            say_released(self.released, self.lock_id, self.err)
        report.render(result, problems, rollback, self.out, self.err, withheld)
        self.record.exit_code = code
        audit.append(self.options.audit_log, audit.finished_entry(
            self.record, started=started, who=self.who, plan_hash=plan_hash, lock_id=self.lock_id))
        return code

    def _can_diff(self, plan: Plan) -> bool:
        """A full re-diff is meaningful when the desired state is the plan's own."""
        return self.saved is None or self.desired.digest() == plan.desired_digest

    def _read_and_release(self, release: bool = True) -> tuple[LiveState | None, list[str]]:
        """Verification read and lock release in one execution (the release runs regardless)."""
        reads = tuple(replace(i, on_error="continue") for i in read_invocations(self.hosts))
        release_step = (locking.release(self.lock_id),) if release else ()
        request = self.client.make_request(
            (*reads, *release_step), modules=read_modules(self.hosts)
        )
        try:
            response = self.client.run(request)
        except CasdesiredError as exc:
            return None, [f"could not re-read to verify the changes: {exc}"]
        released = response.result(locking.EXIT)
        if released is not None and released.ok:
            self.locked = False
            self.released = released
        elif released is not None and released.error:
            say(self.err, f"casdesired: warning: {locking.agent_text(released.error.message)}")
            self.locked = False  # not ours any more: never retry releasing someone else's
        try:
            return live_state_from_response(response, self.hosts), []
        except ReadFailed as exc:
            return None, [f"could not re-read to verify the changes: {exc}"]

    def _release_only(self, *, announce: bool = False) -> None:
        """Release without Exchange (no snap-in load): for refusals and errors. Tried once."""
        release_lock(self.client, self.lock_id, self.desired.organisation.path, self.err,
                     announce=announce)
        self.locked = False

    def _write_rollback(
        self,
        plan: Plan,
        result: execute.Execution,
        before: LiveState,
        after: LiveState | None,
    ) -> report.RollbackResult:
        path = self.options.rollback_out or (
            self.options.audit_log.parent / f"casdesired-rollback-{plan.plan_id}.json"
        )
        written, notes, gaps = write_rollback(
            plan, result, before, after, path, self.desired.organisation.policy
        )
        for gap in gaps:
            say(self.err, f"casdesired: warning: the rollback plan cannot restore: {gap}")
        return report.RollbackResult(written, self.desired.organisation.path, notes)
