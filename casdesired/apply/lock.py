"""The organisation-wide lock, as casdesired asks the agent for it.

The lock lives on the Windows endpoint host (a file under ``%ProgramData%\\casdesired\\locks``
that the agent only ever reads and rewrites under an exclusive handle; see the lock section of
agent.ps1), so every pipeline of an organisation — whatever runner it runs on — sees the same
lock, provided they all use the same endpoint. These helpers build the invocations of the
agent's lock functions and read their answers; :mod:`casdesired.apply.run` puts them into the
same command executions as its reads and writes, so locking costs no extra round trip.

While a batch runs, the agent itself renews the lease (:func:`keepalive`) every
:data:`KEEPALIVE_SECONDS`, between invocations and between the polls of an NLB drain wait; if
a renewal fails (the lock was broken or taken over) the agent runs nothing more. And before
every write of a batch it checks that the batch's lock is still the current lock (the request's
``fence``, the lock id): a killed apply's batch that goes on running after ``casdesired
unlock`` stops at its next write instead of overwriting a newer apply's work.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from casdesired.agent.protocol import Invocation, JsonValue, Keepalive, Response

DEFAULT_LEASE_SECONDS = 900
"""How long a lock outlives a silent holder (a killed CI job): 15 minutes. Renewed at the start
of every batch and by the batch's keepalive while it runs."""

KEEPALIVE_SECONDS = 60
"""How often the agent renews the lease while a batch runs. One invocation may therefore take
up to ``DEFAULT_LEASE_SECONDS - KEEPALIVE_SECONDS`` (14 minutes) without the lease lapsing;
Exchange's Set-MailboxDatabase takes a second or two, and drain waits renew between polls."""

ENTER = "lock:enter"
UPDATE = "lock:update"
KEEPALIVE = "lock:keepalive"
REGISTER = "lock:register-plan"
EXIT = "lock:exit"
REMOVE = "lock:remove"
GET = "lock:get"

HELD_MARKER = "the organisation is locked by"
"""Part of the agent's text when someone else holds a live lock (retry with --lock-timeout)."""
NOT_HELD_MARKER = "is not held here"
"""Part of the agent's text when the lock named is not the current lock (free or another's)."""

CI_JOB_VARIABLES = (
    "CI_JOB_ID",  # GitLab
    "GITHUB_RUN_ID",  # GitHub Actions
    "BUILD_BUILDID",  # Azure Pipelines
    "BUILD_TAG",  # Jenkins
    "CIRCLE_BUILD_NUM",  # CircleCI
)


AGENT_PREFIX = "casdesired: "
"""How the agent starts its own error texts (it also talks to people running it by hand)."""


def agent_text(message: str) -> str:
    """The agent's error text without its own ``casdesired:`` prefix, for wrapping in ours
    (which adds the prefix once: ``casdesired: error: lock ... is not held here``)."""
    return message[len(AGENT_PREFIX):] if message.startswith(AGENT_PREFIX) else message


def owner(environ: Mapping[str, str] | None = None) -> str:
    """``user@runner-host``, plus the CI job id when the environment names one."""
    env = os.environ if environ is None else environ
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    text = f"{user}@{socket.gethostname()}"
    for name in CI_JOB_VARIABLES:
        if env.get(name):
            return f"{text} (CI job {name}={env[name]})"
    return text


def new_lock_id() -> str:
    return str(uuid.uuid4())


def enter(lock_id: str, who: str, lease_seconds: int, plan_id: str | None) -> Invocation:
    params: dict[str, JsonValue] = {"LockId": lock_id, "Owner": who, "LeaseSeconds": lease_seconds}
    if plan_id:
        params["PlanId"] = plan_id
    return Invocation(
        ENTER,
        "Enter-CasdesiredLock",
        parameters=params,
        properties=(
            "LockId", "Owner", "PlanId", "Acquired", "Renewed", "Expires", "Path", "TakenOverFrom"
        ),
    )


def renew(lock_id: str, lease_seconds: int) -> Invocation:
    return Invocation(
        UPDATE,
        "Update-CasdesiredLock",
        parameters={"LockId": lock_id, "LeaseSeconds": lease_seconds},
        properties=("Expires",),
    )


def keepalive(lock_id: str, lease_seconds: int, interval_seconds: float) -> Keepalive:
    """The request-level keepalive that renews the lease while a batch runs."""
    invocation = replace(renew(lock_id, lease_seconds), id=KEEPALIVE)
    return Keepalive(invocation=invocation, interval_seconds=interval_seconds)


def register_plan(lock_id: str, plan_id: str) -> Invocation:
    return Invocation(
        REGISTER,
        "Register-CasdesiredPlan",
        parameters={"LockId": lock_id, "PlanId": plan_id},
        properties=("PlanId", "Applied"),
    )


def release(lock_id: str) -> Invocation:
    """Release ``lock_id``; its answer says whether it was held (``Released``). The id is
    ended either way: a request carrying it that runs late can no longer take the lock."""
    # "continue": the verification read after it must run even if the lock was broken.
    return Invocation(EXIT, "Exit-CasdesiredLock", parameters={"LockId": lock_id},
                      properties=("LockId", "Released"), on_error="continue")


def remove(lock_id: str) -> Invocation:
    return Invocation(
        REMOVE,
        "Remove-CasdesiredLock",
        parameters={"LockId": lock_id},
        properties=("LockId", "Owner", "PlanId", "Acquired", "Renewed", "Expires", "Path"),
    )


def get() -> Invocation:
    return Invocation(
        GET,
        "Get-CasdesiredLock",
        properties=("LockId", "Owner", "PlanId", "Acquired", "Renewed", "Expires", "Path"),
    )


@dataclass(frozen=True)
class LockInfo:
    """A lock as the agent describes it."""

    lock_id: str
    owner: str
    plan_id: str | None
    acquired: str
    expires: str
    path: str
    taken_over_from: str | None = None
    renewed: str = ""
    """When its holder last renewed the lease (taking the lock counts)."""

    @classmethod
    def from_object(cls, obj: Mapping[str, JsonValue]) -> LockInfo:
        def text(name: str) -> str:
            value = obj.get(name)
            return "" if value is None else str(value)

        return cls(
            lock_id=text("LockId"),
            owner=text("Owner"),
            plan_id=text("PlanId") or None,
            acquired=text("Acquired"),
            expires=text("Expires"),
            path=text("Path"),
            taken_over_from=text("TakenOverFrom") or None,
            renewed=text("Renewed") or text("Acquired"),
        )

    def describe(self) -> str:
        plan = f", plan {self.plan_id}" if self.plan_id else ""
        return (
            f"lock {self.lock_id} held by {self.owner} since {self.acquired}{plan}, "
            f"last renewed {self.renewed or self.acquired}, lease until {self.expires} "
            f"({self.path})"
        )


@dataclass(frozen=True)
class LockAnswer:
    """What an Enter-CasdesiredLock invocation answered."""

    lock: LockInfo | None
    error: str | None
    busy: bool
    """Someone else holds a live lock: worth waiting for (``--lock-timeout``)."""


def unlock_command(lock_id: str, organisation_dir: Path) -> str:
    """The exact command that breaks ``lock_id``, runnable from any directory."""
    return shlex.join(
        ["casdesired", "unlock", lock_id, "--config", str(organisation_dir.absolute())]
    )


_AGENT_UNLOCK = re.compile(r"casdesired unlock (\S+)$")
"""How the agent's refusal ends: it names the lock, but cannot know the organisation directory."""


def entered(response: Response, organisation_dir: Path) -> LockAnswer:
    """What Enter-CasdesiredLock answered; a refusal ends with the exact ``casdesired unlock``
    command for ``organisation_dir`` (:func:`unlock_command`), runnable from anywhere."""
    result = response.result(ENTER)
    if result is None:
        return LockAnswer(None, "the agent did not run Enter-CasdesiredLock", False)
    if not result.ok or not result.objects:
        message = agent_text(result.error.message) if result.error else "no lock object returned"
        busy = HELD_MARKER in message
        if busy:
            message = _AGENT_UNLOCK.sub(
                lambda m: unlock_command(m.group(1), organisation_dir), message)
        return LockAnswer(None, message, busy)
    return LockAnswer(LockInfo.from_object(result.objects[0]), None, False)
