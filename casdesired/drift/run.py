"""``casdesired drift`` end to end: one read with the audit search in it, the plan's diff, the
attribution, the report.

The read costs what a plan's read costs: the same single command execution, with the audit
configuration, the audit search and the endpoint's plan records added to its request (never a
request of their own), then the plan's own mailbox count when databases moved. So drift's round
trips equal ``casdesired plan``'s at any size (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from casdesired.desired.config import DesiredState
from casdesired.drift import own
from casdesired.drift.attribution import Attributor, canonical
from casdesired.drift.report import DriftReport, Window, build_report
from casdesired.drift.sources import DEFAULT_WINDOW, audit_invocations, parse_time, read_audit
from casdesired.live.convert import live_state_from_response
from casdesired.live.invocations import read_invocations, read_modules, unique_hosts
from casdesired.live.mailboxes import count_mailboxes
from casdesired.plan.build import nlb_hosts, plan_from_live
from casdesired.transport.winrm import AgentClient

Progress = Callable[[str], None]


def choose_window(
    since: datetime | None, log: Sequence[dict[str, object]], log_path: Path, now: datetime
) -> Window:
    """``--since`` when given; else from the last successful apply in the runner's audit log;
    else the log's default age limit (90 days)."""
    if since is not None:
        return Window(since, "--since")
    last = own.last_successful_apply(log)
    if last is not None:
        return Window(last[0], f"the start of the last successful apply, plan {last[1]}, in "
                               f"{log_path}")
    return Window(
        now - DEFAULT_WINDOW,
        f"{DEFAULT_WINDOW.days} days back, the audit log's default age limit: no successful "
        f"apply in {log_path}",
    )


def drift(
    desired: DesiredState,
    client: AgentClient,
    *,
    now: datetime,
    sites: Sequence[str] | None = None,
    since: datetime | None = None,
    audit_log: Path,
    apply_accounts: Sequence[str] = (),
    result_size: int,
    progress: Progress | None = None,
) -> DriftReport:
    """Read once (live state + audit), diff as plan does, attribute, report."""
    say = progress or (lambda _message: None)
    scope = list(sites) if sites is not None else None
    log = own.read_log(audit_log)
    window = choose_window(since, log, audit_log, now)
    hosts = unique_hosts(nlb_hosts(desired, scope))
    say(f"reading the live organisation and its audit log through {client.target.url}")
    request = client.make_request(
        (*read_invocations(hosts), *audit_invocations(window.since, result_size)),
        modules=read_modules(hosts),
    )
    response = client.run(request)
    live = live_state_from_response(response, hosts)
    audit = read_audit(response, window.since, result_size)
    plan = plan_from_live(
        desired,
        live,
        sites=scope,
        progress=progress,
        count=lambda databases: count_mailboxes(client, databases, progress),
    )
    say("matching the audit log to what drifted")
    accounts = tuple(dict.fromkeys(
        a for a in (client.target.username, *apply_accounts) if a
    ))
    applies = (*own.endpoint_applies(audit.records, now), *own.log_applies(log, now))
    attributor = Attributor(
        audit=audit,
        own=own.OwnChanges(accounts=accounts, applies=applies),
        canon=canonical(live.estate),
        now=now,
    )
    return build_report(
        plan,
        attributor,
        window=window,
        last_applied=own.last_applied(log),
        accounts=accounts,
        generated=now,
    )


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 date or UTC time (``2024-05-01``, ``2024-05-01T08:00:00Z``, with
    an offset), or a span back from now (``7d``, ``12h``). ValueError with the reason."""
    value = text.strip()
    if value[-1:] in ("d", "h") and value[:-1].isdigit():
        amount = int(value[:-1])
        span = timedelta(days=amount) if value[-1] == "d" else timedelta(hours=amount)
        if span > timedelta(days=3650):
            raise ValueError(f"{text!r} reaches back more than ten years")
        return now - span
    moment = parse_time(value + "T00:00:00Z" if len(value) == 10 else value)
    if moment is None:
        raise ValueError(
            f"{text!r} is not a date (2024-05-01), a UTC time (2024-05-01T08:00:00Z) or a span "
            "(7d, 12h)"
        )
    if moment > now:
        raise ValueError(f"{text!r} is in the future")
    return moment
