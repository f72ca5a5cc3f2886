"""The safety checks an apply runs before its first write.

Checks are plain functions of a :class:`SafetyContext` that return refusals (empty: fine).
``casdesired.apply.run`` lists every check it runs, in order (these and the DNS gate of
``casdesired.apply.dns``); apply runs all of them and refuses with every reason at once,
before anything is written.

A check receives the plan, the live state read under the lock, the desired state when known
and the organisation's policy. It reports every refusal it finds, marking those ``--force``
overrides (``Refusal.overridable``); :func:`run_checks` alone drops them when ``--force`` was
given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from casdesired import model
from casdesired.changes.changeset import withheld_by
from casdesired.desired.config import DesiredState, Policy
from casdesired.live.state import LiveState
from casdesired.plan.depends import compare_objects, live_objects
from casdesired.plan.plan import Plan
from casdesired.plan.thresholds import needs_force


@dataclass(frozen=True)
class SafetyContext:
    plan: Plan
    live: LiveState
    """Read in the same command execution that took the lock."""
    policy: Policy
    force: bool
    desired: DesiredState | None = None
    saved_plan: bool = False
    """True when applying a plan file (then the plan may be stale)."""


@dataclass(frozen=True)
class Refusal:
    message: str
    overridable: bool = False
    """True when ``--force`` overrides it (thresholds, the DNS gate); stale plans, blocking
    findings and scope never. :func:`run_checks` is the one place that applies ``--force``:
    checks report what they find and never look at the flag themselves."""


PreWriteCheck = Callable[[SafetyContext], list[Refusal]]


def check_blocking_findings(ctx: SafetyContext) -> list[Refusal]:
    """Blocking findings refuse whatever the flags, as far as they reach.

    A finding blocks its own site (or only its object): the plan withholds those changes, and
    the rest may run. So apply refuses only for a finding that names no site (it blocks the
    whole organisation), or one whose site (or object) still has changes in the plan (a damaged
    or hand-made plan; ``diff`` never leaves them there).
    """
    return [
        Refusal(f"blocking finding: {finding.message} (fix it, then make a new plan)")
        for finding in ctx.plan.blocking_findings
        if any(withheld_by(change, [finding]) for change in ctx.plan.changes)
        or (finding.site is None and not finding.object_scoped)
    ]


def check_stale(ctx: SafetyContext) -> list[Refusal]:
    """A saved plan whose live objects moved since it was made is refused, naming them."""
    if not ctx.saved_plan:
        return []
    plan = ctx.plan
    if plan.depends_on is None:
        # A plan without per-object fingerprints: only the whole read can be compared.
        if ctx.live.fingerprint() != plan.live_fingerprint:
            return [Refusal("the plan is stale: the live organisation changed since it was made "
                            "(live fingerprint differs); make a new plan")]
        return []
    moved = compare_objects(plan.depends_on, live_objects(ctx.live, plan.sites))
    if moved:
        return [Refusal(f"the plan is stale: {moved.describe()}; make a new plan")]
    return []


def check_desired_unchanged(ctx: SafetyContext) -> list[Refusal]:
    """A saved plan is refused when the desired state (the YAML) changed since it was made: the
    review no longer describes the files it would apply. Names each file changed, added or gone.

    Rollback plans restore live values and are pinned to the live state only: not checked."""
    if not ctx.saved_plan or ctx.desired is None or ctx.plan.is_rollback:
        return []
    recorded = ctx.plan.desired_files
    if recorded is None:
        # A plan file from before per-file digests: only the whole can be compared.
        if ctx.desired.digest() != ctx.plan.desired_digest:
            return [Refusal("the desired state changed since the plan was made (its digest "
                            "differs; this plan file predates per-file digests, so the files "
                            "cannot be named); make a new plan")]
        return []
    now = ctx.desired.file_digests()
    differ = [
        f"{name} {'changed' if name in now else 'is gone'}"
        for name in sorted(recorded) if now.get(name) != recorded[name]
    ] + [f"{name} is new" for name in sorted(now) if name not in recorded]
    if not differ:
        return []
    root = ctx.desired.organisation.path
    return [Refusal(
        f"the desired state in {root} is not the one the plan was made from: "
        f"{', '.join(differ)}; the reviewed plan no longer describes these files, so make a "
        "new plan from them (casdesired plan --out)"
    )]


def check_thresholds(ctx: SafetyContext) -> list[Refusal]:
    """The policy's thresholds (:func:`casdesired.plan.thresholds.needs_force`, the same reasons
    the plan shows under its safety decisions); ``--force`` overrides them."""
    total = len(ctx.live.estate.databases)
    return [
        Refusal(f"{reason}; re-run with --force to apply it anyway", overridable=True)
        for reason in needs_force(ctx.plan.changes, total, ctx.policy)
    ]


def check_scope(ctx: SafetyContext) -> list[Refusal]:
    """Every change belongs to a site of the plan's scope (a damaged plan cannot widen it)."""
    if ctx.plan.sites is None:
        return []
    scope = {model.key(s) for s in ctx.plan.sites}
    outside = [c for c in ctx.plan.changes if model.key(c.site) not in scope]
    return [Refusal(f"change outside the plan's sites: {c.describe()}") for c in outside]


def run_checks(ctx: SafetyContext, checks: Sequence[PreWriteCheck]) -> list[Refusal]:
    """Every check's refusals, less those ``--force`` overrides when it was given."""
    refusals: list[Refusal] = []
    for check in checks:
        refusals.extend(check(ctx))
    return [r for r in refusals if not (ctx.force and r.overridable)]
