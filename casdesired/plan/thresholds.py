"""The organisation's safety thresholds: what a plan needs ``--force`` for.

One implementation for both sides: ``casdesired plan`` shows the reasons under its safety
decisions (so a reviewer sees what apply will refuse), and apply's pre-write check
(:func:`casdesired.apply.safety.check_thresholds`) refuses with the same reasons unless
``--force``. Both have what they need: the plan's changes, the live database count and the
organisation's ``policy``.
"""

from __future__ import annotations

from collections.abc import Sequence

from casdesired.changes.types import Action, BindingChange, Change
from casdesired.desired.config import Policy

DELETES_LISTED = 5
"""Deletes named one by one in the reason before the rest are only counted."""


def needs_force(changes: Sequence[Change], total_databases: int, policy: Policy) -> list[str]:
    """Why applying ``changes`` needs ``--force`` (empty: it does not).

    * more than ``max_rebind_percent`` of the organisation's databases rebound, once it has at
      least ``min_databases_for_threshold`` (octoDNS's MAX_SAFE_UPDATE_PCENT idea);
    * any delete (array, NLB node, DNS record): deletes are never routine.
    """
    reasons = []
    rebinds = sum(1 for c in changes if isinstance(c, BindingChange))
    if total_databases >= policy.min_databases_for_threshold and total_databases > 0:
        percent = 100.0 * rebinds / total_databases
        if percent > policy.max_rebind_percent:
            reasons.append(
                f"threshold max_rebind_percent: the plan rebinds {rebinds} of {total_databases} "
                f"databases ({percent:.1f}%), above the policy's {policy.max_rebind_percent:g}% "
                f"(applies from {policy.min_databases_for_threshold} databases)"
            )
    deletes = [c for c in changes if c.action is Action.DELETE]
    if deletes:
        shown = ", ".join(c.describe() for c in deletes[:DELETES_LISTED])
        more = f" and {len(deletes) - DELETES_LISTED} more" if len(deletes) > DELETES_LISTED else ""
        reasons.append(
            f"deletes need --force: the plan deletes {len(deletes)} object(s) ({shown}{more})"
        )
    return reasons
