"""Carrying out a plan's changes: in the plan's order, in as few command executions as possible.

Changes are grouped into batches; each batch is ONE agent request (the payload on stdin) whose
first invocation renews the lock's lease (so a batch never writes under a lock that was broken
or taken over) and, in the first batch, records the plan id as applied. While the batch runs,
the request's keepalive renews the lease every ``keepalive_seconds`` (between invocations and
between drain polls); if a renewal fails, the agent runs nothing more and the execution stops
with that reason. The request's fence (the lock id) makes the agent check, before each write,
that the lock is still the current one: a batch that outlives its apply (killed while the batch
ran) stops at its next write once its lock was broken or taken over. Every invocation stops
the run at its failure (``on_error: stop``), so nothing after a failed change runs. A batch
boundary is placed before each NLB drain (a wait of up to its drain timeout; the short waits
for a cluster to reconverge stay in their batch) and every :data:`MAX_CHANGES_PER_BATCH`
changes, so an interrupt is honoured between batches. A batch's request asks for the agent's
progress lines, which name the invocation it started and the seconds a wait has left: the
``progress`` callback gets them as the batch's steps (:class:`BatchSteps`) while it runs.

Changes that are not carried out by the agent (e.g. a DNS record update from the runner) go to
the :class:`ExtraExecutor` the caller passes that handles them; each runs as its own step.
Such a step writes without the agent, so before it a small agent request (no Exchange session)
renews the lease and — when it is the plan's first write — records the plan id: a DNS-first or
DNS-only plan is registered on the endpoint before anything is written, like any other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from casdesired.agent.framing import AgentProgress
from casdesired.agent.protocol import FENCED_PREFIX, ExchangeSession, Invocation, Request, Response
from casdesired.apply import lock as locking
from casdesired.apply.progress import BatchSteps, Step, batch_step
from casdesired.changes.types import Change
from casdesired.errors import AgentNotStarted, CasdesiredError
from casdesired.transport.winrm import AgentClient

MAX_CHANGES_PER_BATCH = 1000
"""Per request (stdin-borne, so size is no limit): an interrupt waits for at most this many
changes (each one to four invocations)."""
LONG_WAIT_SECONDS = 300.0
"""A change that may wait this long (an NLB drain) starts a batch of its own."""
MAX_BATCH_ENV = "CASDESIRED_MAX_BATCH"
"""Testing/tuning knob (apply's environment): a lower per-request limit than the default, e.g.
to make interrupts land between batches sooner, or for tests to get several batches."""


def batch_limit(environ: Mapping[str, str]) -> int:
    """:data:`MAX_CHANGES_PER_BATCH`, or :data:`MAX_BATCH_ENV` if set (a whole number >= 1)."""
    raw = environ.get(MAX_BATCH_ENV, "").strip()
    if not raw:
        return MAX_CHANGES_PER_BATCH
    limit = int(raw) if raw.isascii() and raw.isdigit() else 0
    if limit < 1:
        raise CasdesiredError(f"{MAX_BATCH_ENV} must be a whole number of at least 1, not {raw!r}")
    return limit


class Status(str, Enum):
    APPLIED = "applied"
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"
    UNKNOWN = "unknown"
    """The connection failed while its batch ran: it may or may not have happened. (A batch
    that failed before the agent could start leaves its changes NOT_ATTEMPTED.)"""


AGENT_ERROR_LABEL = "Exchange said"
"""How the report introduces an error text that came back from the agent (Exchange's cmdlets)."""


@dataclass
class Outcome:
    change: Change
    status: Status = Status.NOT_ATTEMPTED
    error: str | None = None
    error_label: str = AGENT_ERROR_LABEL
    """Who said ``error``, as the report introduces it (e.g. "DNS server said")."""


class ExtraExecutor(Protocol):
    """Carries out changes the agent does not (the hook for e.g. DNS record changes).

    An executor may also have an ``error_label`` attribute (e.g. ``"DNS server said"``): how
    the report introduces its error texts (see :func:`error_label`)."""

    def handles(self, change: Change) -> bool: ...

    def execute(self, change: Change, environ: Mapping[str, str]) -> None:
        """Do it; raise :class:`CasdesiredError` with the reason when it fails.

        ``environ`` is where secrets named in the change (e.g. a TSIG key's variable) are read:
        apply's own environment, which tests and embedding callers may replace."""
        ...


@dataclass
class Batch:
    changes: list[Change] = field(default_factory=list)
    extra: ExtraExecutor | None = None



def error_label(extra: ExtraExecutor) -> str:
    """Who an extra executor's error text comes from: its own ``error_label`` if it has one."""
    label = getattr(extra, "error_label", None)
    if isinstance(label, str) and label:
        return label
    return f"{type(extra).__name__} said"


def _extra_for(change: Change, extras: Sequence[ExtraExecutor]) -> ExtraExecutor | None:
    return next((e for e in extras if e.handles(change)), None)


def make_batches(
    changes: Sequence[Change],
    extras: Sequence[ExtraExecutor] = (),
    limit: int = MAX_CHANGES_PER_BATCH,
) -> list[Batch]:
    """Group ``changes`` (kept in order) into batches; see the module docstring for the rules."""
    batches: list[Batch] = []
    current = Batch()
    for change in changes:
        extra = _extra_for(change, extras)
        waits_long = any(
            i.until is not None and i.until.timeout_seconds >= LONG_WAIT_SECONDS
            for i in change.invocations()
        )
        if current.changes and (
            extra is not None or waits_long or len(current.changes) >= limit
        ):
            batches.append(current)
            current = Batch()
        if extra is not None:
            batches.append(Batch([change], extra))
            continue
        current.changes.append(change)
    if current.changes:
        batches.append(current)
    return batches


@dataclass
class Execution:
    """The outcome of every change, in plan order, and why it stopped (if it did)."""

    outcomes: list[Outcome]
    stopped: str | None = None
    interrupted: bool = False

    def by_status(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is status]

    @property
    def ok(self) -> bool:
        return all(o.status is Status.APPLIED for o in self.outcomes)


def execute(
    client: AgentClient,
    changes: Sequence[Change],
    *,
    lock_id: str,
    plan_id: str,
    interrupted: Callable[[], bool] = lambda: False,
    progress: Callable[[Step], None] = lambda _step: None,
    extras: Sequence[ExtraExecutor] = (),
    environ: Mapping[str, str] | None = None,
    lease_seconds: int = locking.DEFAULT_LEASE_SECONDS,
    keepalive_seconds: float = locking.KEEPALIVE_SECONDS,
) -> Execution:
    """Run ``changes`` batch by batch; stop at the first failure, at a failed lease renewal or
    when interrupted. ``keepalive_seconds`` must stay well under ``lease_seconds``."""
    outcomes = {id(c): Outcome(c) for c in changes}
    result = Execution([outcomes[id(c)] for c in changes])
    env = os.environ if environ is None else environ
    batches = make_batches(changes, extras, batch_limit(env))
    registered = False
    for number, batch in enumerate(batches, start=1):
        if interrupted():
            result.interrupted = True
            result.stopped = "interrupted: no further batch was started"
            return result
        progress(batch_step(number, len(batches), batch.changes))
        if batch.extra is not None:
            # The agent does not carry this write, so its renewal and (first write) the plan
            # id's registration go first, on their own: a lock broken or taken over, or a plan
            # already applied elsewhere, stops the apply before the write.
            problem = _renew_before_extra(client, lock_id, plan_id, lease_seconds, registered)
            if problem:
                result.stopped = problem
                return result
            registered = True
            change = batch.changes[0]
            try:
                batch.extra.execute(change, env)
            except CasdesiredError as exc:
                outcomes[id(change)].status = Status.FAILED
                outcomes[id(change)].error = str(exc)
                outcomes[id(change)].error_label = error_label(batch.extra)
                result.stopped = f"{change.describe()} failed"
                return result
            outcomes[id(change)].status = Status.APPLIED
            continue
        prefix: list[Invocation] = [locking.renew(lock_id, lease_seconds)]
        if not registered:
            prefix.append(locking.register_plan(lock_id, plan_id))
        invocations = [*prefix, *(i for c in batch.changes for i in c.invocations())]
        modules = tuple(sorted({m for c in batch.changes for m in c.modules}))
        try:
            request = replace(
                client.make_request(tuple(invocations), modules=modules),
                keepalive=locking.keepalive(lock_id, lease_seconds, keepalive_seconds),
                fence=lock_id,
                progress=True,
            )
            steps = BatchSteps.of(number, len(batches), len(prefix), batch.changes)
            response = client.run(request, progress=_shown_by(steps, progress))
        except AgentNotStarted as exc:
            # Nothing of this batch ran: its changes stay "not attempted".
            result.stopped = (
                f"batch {number} could not be started ({exc}); none of its changes was made"
            )
            return result
        except CasdesiredError as exc:
            for change in batch.changes:
                outcomes[id(change)].status = Status.UNKNOWN
            result.stopped = (
                f"the connection failed while batch {number} ran ({exc}); its changes may or may "
                "not have been made: make a new plan to see what remains"
            )
            return result
        problem = _prefix_failure(response, prefix)
        if problem:
            result.stopped = problem
            return result
        registered = True
        for change in batch.changes:
            outcome = outcomes[id(change)]
            _settle(outcome, response)
            if outcome.status is not Status.APPLIED and response.stopped:
                result.stopped = _stopped_by_agent(number, response.stopped)
                return result
            if outcome.status is Status.FAILED:
                result.stopped = f"{change.describe()} failed"
                return result
            if outcome.status is not Status.APPLIED:
                result.stopped = f"the agent stopped before {change.describe()}"
                return result
    return result


def _shown_by(
    steps: BatchSteps, progress: Callable[[Step], None]
) -> Callable[[AgentProgress], None]:
    """The agent's progress lines, as the batch's steps running."""

    def show(mark: AgentProgress) -> None:
        step = steps.step(mark)
        if step is not None:
            progress(step)

    return show


def _stopped_by_agent(number: int, stopped: str) -> str:
    """Why the agent stopped a batch on its own: its keepalive or its fence failed."""
    if stopped.startswith(FENCED_PREFIX):
        return (
            f"the lock was no longer this apply's when batch {number} came to its next write "
            f"(broken with unlock, or taken over), so the agent ran nothing more "
            f"({locking.agent_text(stopped)})"
        )
    return (
        f"renewing the lock's lease failed while batch {number} ran, so the agent "
        f"ran nothing more ({locking.agent_text(stopped)})"
    )


def _renew_before_extra(
    client: AgentClient, lock_id: str, plan_id: str, lease_seconds: int, registered: bool
) -> str | None:
    """Renew the lease (and register the plan id if not yet done) in one small request, with
    no Exchange session: what stopped the apply, or None when the write may go ahead."""
    prefix = [locking.renew(lock_id, lease_seconds)]
    if not registered:
        prefix.append(locking.register_plan(lock_id, plan_id))
    request = Request(invocations=tuple(prefix), exchange=ExchangeSession(mode="none"))
    try:
        response = client.run(request)
    except CasdesiredError as exc:
        return f"nothing more was run: renewing the lock before the next step failed ({exc})"
    return _prefix_failure(response, prefix)


def _prefix_failure(response: Response, prefix: list[Invocation]) -> str | None:
    for invocation in prefix:
        found = response.result(invocation.id)
        if found is None or not found.ok:
            message = locking.agent_text(found.error.message) if found and found.error else (
                "no result"
            )
            return f"nothing in this batch was run: {invocation.cmdlet} failed: {message}"
    return None


def _settle(outcome: Outcome, response: Response) -> None:
    """Applied when all of a change's invocations succeeded; failed at the first error."""
    for step, invocation in enumerate(outcome.change.invocations()):
        found = response.result(invocation.id)
        if found is None:
            # Earlier steps of a multi-step change may have run (e.g. a drain) — say so.
            outcome.status = Status.NOT_ATTEMPTED
            return
        if not found.ok:
            outcome.status = Status.FAILED
            error = found.error
            # Exchange's own text as it is; the agent's (e.g. a drain wait's timeout) unprefixed.
            outcome.error = (
                locking.agent_text(error.message) if error else "failed without a message"
            )
            if step > 0:
                outcome.error += f" (at step {invocation.id})"
            return
    outcome.status = Status.APPLIED
