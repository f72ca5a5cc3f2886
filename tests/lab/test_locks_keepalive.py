"""The request keepalive in the lab's agent executor, on a fake clock: a batch that outlasts
its lease keeps the lock, and a lock broken mid-batch stops the batch at once.

Everything goes through the same door as the wire (:func:`call`: bootstrap, framed stdin,
agent executor, framed response). The organisation runs on :class:`FakeClock`, so a
15-minute lease, slow cmdlets and a 5-minute NLB drain take no real time; "another pipeline"
acts at a given moment from inside the clock's sleep, exactly while the batch is running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from casdesired.agent.framing import decode_response
from casdesired.agent.protocol import (
    FENCED,
    KEEPALIVE_FAILED,
    ExchangeSession,
    Invocation,
    Keepalive,
    Request,
    Response,
    Until,
)
from casdesired.apply import lock as locking
from casdesired.lab.exchange import Organisation
from casdesired.lab.exchange.testing import call, run_request
from casdesired.lab.faults import CmdletFault, Faults

HOLDER = "aaaaaaaa-0000-0000-0000-000000000001"
OTHER = "bbbbbbbb-0000-0000-0000-000000000002"
LEASE = 60
DATABASES = [f"HQ-DB0{n}" for n in range(1, 7)]


@dataclass
class FakeClock:
    """Wall and monotonic time that move only when someone sleeps; actions fire at moments."""

    wall: float = 1_700_000_000.0
    mono: float = 0.0
    actions: list[tuple[float, Callable[[], None]]] = field(default_factory=list)

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        # One second at a time, so an action lands between the right two polls.
        remaining = seconds
        while remaining > 0:
            step = min(1.0, remaining)
            self.wall += step
            self.mono += step
            remaining -= step
            due = [a for a in self.actions if a[0] <= self.mono]
            self.actions = [a for a in self.actions if a[0] > self.mono]
            for _, action in due:
                action()

    def at(self, moment: float, action: Callable[[], None]) -> None:
        self.actions.append((moment, action))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def lock_call(org: Organisation, invocation: Invocation) -> Response:
    """Another pipeline's lock function (no Exchange loaded)."""
    return call(org, invocation, modules=(), exchange=ExchangeSession(mode="none"))


def holding(org: Organisation) -> str | None:
    (result,) = lock_call(org, locking.get()).results
    return str(result.objects[0]["LockId"]) if result.objects else None


def rebinds() -> list[Invocation]:
    return [
        Invocation(f"rebind:{db}", "Set-MailboxDatabase",
                   {"Identity": db, "RpcClientAccessServer": "hq-cas02.contoso.local"})
        for db in DATABASES
    ]


def batch(org: Organisation, invocations: list[Invocation], *, keepalive: bool) -> Response:
    """A batch as apply sends it: renew first, then the writes, with (or without) keepalive."""
    request = Request(
        invocations=(locking.renew(HOLDER, LEASE), *invocations),
        modules=("NetworkLoadBalancingClusters",),
        keepalive=locking.keepalive(HOLDER, LEASE, 20) if keepalive else None,
    )
    return decode_response(run_request(org, request).stdout)


def slow_org(clock: FakeClock, seconds: float) -> Organisation:
    faults = Faults(cmdlets=[CmdletFault("Set-MailboxDatabase", delay_seconds=seconds,
                                         fail=False)])
    org = Organisation.from_seed(faults=faults, clock=clock)
    entered = lock_call(org, locking.enter(HOLDER, "slow@runner", LEASE, None)).results[0]
    assert entered.ok, entered.error
    return org


def contender(org: Organisation, seen: list[Response]) -> Callable[[], None]:
    def act() -> None:
        seen.append(lock_call(org, locking.enter(OTHER, "other@runner", LEASE, None)))

    return act


def test_slow_cmdlets_outlasting_the_lease_keep_the_lock(clock: FakeClock) -> None:
    org = slow_org(clock, 25)  # six writes of 25 s: 150 s against a 60 s lease
    attempts: list[Response] = []
    clock.at(100, contender(org, attempts))
    response = batch(org, rebinds(), keepalive=True)
    assert [r.ok for r in response.results] == [True] * 7
    assert response.stopped is None
    assert response.keepalives >= 5
    (refused,) = attempts[0].results
    assert not refused.ok and refused.error is not None
    assert refused.error.message.startswith("casdesired: the organisation is locked by slow@")
    assert holding(org) == HOLDER
    renewals = [e for e in org.journal.entries(["cmdlet"])
                if e["cmdlet"] == "Update-CasdesiredLock"]
    assert len(renewals) == 1 + response.keepalives and all(e["ok"] for e in renewals)
    # The lock records its last renewal: what `casdesired unlock` shows of a live holder.
    (current,) = lock_call(org, locking.get()).results[0].objects
    info = locking.LockInfo.from_object(current)
    assert info.acquired < info.renewed < info.expires


def test_without_the_keepalive_the_same_batch_loses_its_lock(clock: FakeClock) -> None:
    # The control: what the keepalive prevents really happens without it.
    org = slow_org(clock, 25)
    attempts: list[Response] = []
    clock.at(100, contender(org, attempts))
    response = batch(org, rebinds(), keepalive=False)
    assert all(r.ok for r in response.results)  # nothing told the batch
    (taken,) = attempts[0].results
    assert taken.ok and taken.objects[0]["TakenOverFrom"] == f"slow@runner (lock {HOLDER})"
    assert holding(org) == OTHER


def test_a_lock_broken_mid_batch_stops_the_batch_at_once(clock: FakeClock) -> None:
    org = slow_org(clock, 25)
    clock.at(40, lambda: lock_call(org, locking.remove(HOLDER)))  # casdesired unlock
    response = batch(org, rebinds(), keepalive=True)
    # The renewal before the third write failed: two writes ran, the rest have no result.
    assert [r.id for r in response.results] == ["lock:update", "rebind:HQ-DB01",
                                                "rebind:HQ-DB02"]
    assert response.stopped == KEEPALIVE_FAILED.format(
        cmdlet="Update-CasdesiredLock",
        message=f"casdesired: lock {HOLDER} is not held here (the current lock: none).",
    )
    journal = [(e["cmdlet"], e["ok"]) for e in org.journal.entries(["cmdlet"])]
    failed_at = journal.index(("Update-CasdesiredLock", False))
    assert ("Set-MailboxDatabase", True) not in journal[failed_at:]
    assert len([c for c, _ in journal if c == "Set-MailboxDatabase"]) == 2


def drain_and_wait() -> list[Invocation]:
    """A node stopping and the wait for its cluster to reconverge, as casdesired sends them (on
    the nodes themselves: field §1b). The drain blocks (field §6); the reconvergence is what
    the wait polls for."""
    return [
        Invocation("drain", "Stop-NlbClusterNode", {"Drain": True},
                   computer="br-cas01.contoso.local"),
        Invocation("wait", "Get-NlbClusterNode", {}, ("State",),
                   until=Until("State", ("Converged", "Converged(default)"),
                               timeout_seconds=600, interval_seconds=5),
                   computer="hq-cas01.contoso.local"),
    ]


def test_a_long_drain_wait_renews_between_polls(clock: FakeClock) -> None:
    org = slow_org(clock, 0)
    org.configure(nlb_convergence_seconds=300)
    # The node joins (the cluster reconverges for 300 s), then the wait polls.
    add = Invocation("drain", "Add-NlbClusterNode",
                     {"InterfaceName": "NLB", "NewNodeName": "HQ-CAS02",
                      "NewNodeInterface": "NLB"}, computer="hq-cas01.contoso.local")
    attempts: list[Response] = []
    clock.at(150, contender(org, attempts))
    response = batch(org, [add, drain_and_wait()[1]], keepalive=True)
    assert all(r.ok for r in response.results), response.results
    assert response.results[-1].objects == ({"State": "Converged"}, {"State": "Converged"})
    assert response.keepalives >= 14  # 300 s of polling, a renewal every 20 s
    assert not attempts[0].results[0].ok
    assert holding(org) == HOLDER


def test_a_lock_broken_during_a_drain_wait_ends_the_wait(clock: FakeClock) -> None:
    org = slow_org(clock, 0)
    org.configure(nlb_convergence_seconds=300)
    add = Invocation("drain", "Add-NlbClusterNode",
                     {"InterfaceName": "NLB", "NewNodeName": "HQ-CAS02",
                      "NewNodeInterface": "NLB"}, computer="hq-cas01.contoso.local")
    clock.at(100, lambda: lock_call(org, locking.remove(HOLDER)))
    response = batch(org, [add, drain_and_wait()[1], *rebinds()], keepalive=True)
    assert [r.id for r in response.results] == ["lock:update", "drain", "wait"]
    wait = response.results[-1]
    assert not wait.ok and wait.error is not None
    assert wait.error.message == response.stopped
    assert response.stopped is not None and "is not held here" in response.stopped
    assert clock.mono < 130  # stopped at the first renewal after the break, not at the timeout
    assert "Set-MailboxDatabase" not in [e["cmdlet"] for e in org.journal.entries(["cmdlet"])]


def test_a_keepalive_outside_the_allow_list_stops_before_anything_runs(
    clock: FakeClock,
) -> None:
    org = slow_org(clock, 30)
    request = Request(
        invocations=tuple(rebinds()),
        keepalive=Keepalive(Invocation("k", "Remove-Item", {"Path": "C:\\"}), 10),
    )
    response = decode_response(run_request(org, request).stdout)
    assert [r.id for r in response.results] == ["rebind:HQ-DB01"]  # first write, then the
    assert response.stopped is not None  # keepalive came due (30 s > 10 s) and was refused
    assert "The term 'Remove-Item' is not recognized as the name of a cmdlet" in (
        response.stopped)
    assert "Remove-Item" not in [e["cmdlet"] for e in org.journal.entries(["cmdlet"])]


@pytest.mark.parametrize("name", ["Get-Process", "Remove-Mailbox", "Invoke-Command"])
def test_cmdlets_outside_the_allow_list_are_refused_like_unknown_commands(
    name: str,
) -> None:
    org = Organisation.from_seed()
    (result,) = call(org, Invocation("1", name)).results
    assert result.error is not None
    assert result.error.message == (
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program. Check the spelling of the name, or if a path was included, "
        "verify that the path is correct and try again."
    )
    assert (result.error.category, result.error.target) == ("CommandNotFoundException", name)
    # Refused by the agent itself: it never reached the organisation (only the agent's start:
    # the version check and the recipient scope).
    assert [e["cmdlet"] for e in org.journal.entries(["cmdlet"])] == [
        "Get-ExchangeServer", "Set-AdServerSettings"
    ]


# --- The fence: every write of a fenced request checks that its lock is still current --------


def unguarded_batch(org: Organisation, *, fence: bool) -> Response:
    """A killed apply's batch going on by itself: no keepalive came due (it renews only every
    minute) — only the fence (the lock id on the request) can stop it."""
    request = Request(
        invocations=(locking.renew(HOLDER, LEASE), *rebinds()),
        fence=HOLDER if fence else None,
    )
    return decode_response(run_request(org, request).stdout)


def rebound(org: Organisation) -> list[str]:
    return [
        str(e["parameters"]["Identity"]) for e in org.journal.entries(["cmdlet"])
        if e["cmdlet"] == "Set-MailboxDatabase"
    ]


@pytest.mark.parametrize("fence", [True, False])
def test_a_lock_broken_mid_batch_stops_a_fenced_batch_at_its_next_write(
    clock: FakeClock, fence: bool
) -> None:
    org = slow_org(clock, 25)  # writes at 0, 25, 50, ... s
    clock.at(40, lambda: lock_call(org, locking.remove(HOLDER)))  # casdesired unlock
    response = unguarded_batch(org, fence=fence)
    if not fence:
        # The control: without the fence the batch writes on after its lock is gone.
        assert rebound(org) == DATABASES and response.stopped is None
        return
    # HQ-DB02 was already running at 40 s and finishes; HQ-DB03 is never started.
    assert rebound(org) == ["HQ-DB01", "HQ-DB02"]
    assert [r.id for r in response.results] == ["lock:update", "rebind:HQ-DB01",
                                                "rebind:HQ-DB02"]
    assert response.stopped == FENCED.format(
        cmdlet="Set-MailboxDatabase",
        message=f"lock {HOLDER} is not held here (the current lock: none).",
    )
    checks = [(e["lock_id"], e["before"], e["ok"]) for e in org.journal.entries(["fence"])]
    assert checks == [(HOLDER, "Set-MailboxDatabase", True)] * 2 + [
        (HOLDER, "Set-MailboxDatabase", False)
    ]


def test_a_takeover_after_the_lease_lapsed_fences_the_old_batch_out(clock: FakeClock) -> None:
    org = slow_org(clock, 25)
    # The lease (60 s) lapses during the third write; another pipeline takes over at 70 s.
    attempts: list[Response] = []
    clock.at(70, contender(org, attempts))
    response = unguarded_batch(org, fence=True)
    assert attempts[0].results[0].ok  # the takeover itself
    assert rebound(org) == ["HQ-DB01", "HQ-DB02", "HQ-DB03"]
    assert response.stopped == FENCED.format(
        cmdlet="Set-MailboxDatabase",
        message=f"lock {HOLDER} is not held here (the current lock: {OTHER} held by "
                "other@runner).",
    )
    assert holding(org) == OTHER


def test_a_fence_stops_writes_only_not_reads(clock: FakeClock) -> None:
    # A fence on a request whose lock is gone stops writes only: a read still runs.
    org = Organisation.from_seed(clock=clock)
    request = Request(
        invocations=(Invocation("read", "Get-MailboxDatabase", {}, ("Name",)), *rebinds()),
        fence=HOLDER,
    )
    response = decode_response(run_request(org, request).stdout)
    assert [r.id for r in response.results] == ["read"]
    assert response.stopped is not None and "(the current lock: none)" in response.stopped
    assert rebound(org) == []
