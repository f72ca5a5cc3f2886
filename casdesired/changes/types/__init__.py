"""Typed changes: one class per thing casdesired can do to an Exchange 2010 organisation, one
module per object kind (``array``, ``binding``, ``nlb``, ``autodiscover``) over ``base``.
The DNS record changes live with DNS (:mod:`casdesired.dns.records`).
"""

from __future__ import annotations

from casdesired.changes.types.array import ArrayCreate, ArrayDelete, ArrayUpdate
from casdesired.changes.types.autodiscover import AutodiscoverChange
from casdesired.changes.types.base import Action, BadChange, Change, change_from_json
from casdesired.changes.types.binding import OUTLOOK_PROFILE_WARNING, BindingChange
from casdesired.changes.types.nlb import (
    CONVERGED_STATES,
    CONVERGENCE_POLL_SECONDS,
    CONVERGENCE_TIMEOUT_SECONDS,
    DEFAULT_DRAIN_TIMEOUT_MINUTES,
    NLB_MODULE,
    NlbNodeAdd,
    NlbNodeRemove,
    converged_wait,
)

EXCHANGE_CHANGES: tuple[type[Change], ...] = (
    ArrayCreate,
    ArrayUpdate,
    ArrayDelete,
    BindingChange,
    NlbNodeAdd,
    NlbNodeRemove,
    AutodiscoverChange,
)
"""What the agent carries out. A plan also carries the DNS record changes of
:mod:`casdesired.dns.records`; ``casdesired.plan.plan`` names every kind a plan file may hold."""

__all__ = [
    "CONVERGED_STATES",
    "CONVERGENCE_POLL_SECONDS",
    "CONVERGENCE_TIMEOUT_SECONDS",
    "DEFAULT_DRAIN_TIMEOUT_MINUTES",
    "EXCHANGE_CHANGES",
    "NLB_MODULE",
    "OUTLOOK_PROFILE_WARNING",
    "Action",
    "ArrayCreate",
    "ArrayDelete",
    "ArrayUpdate",
    "AutodiscoverChange",
    "BadChange",
    "BindingChange",
    "Change",
    "NlbNodeAdd",
    "NlbNodeRemove",
    "change_from_json",
    "converged_wait",
]
