"""Counting mailboxes: only the databases a plan rebinds, in one more command execution.

The users a change affects are the mailboxes of the databases it moves. Counting every mailbox
of the organisation on every plan (``Get-Mailbox -ResultSize Unlimited``) costs minutes on a
100,000-mailbox organisation over remote PowerShell, where every mailbox is an object that
crosses the session. So a plan counts only the databases whose binding changes or whose array's
FQDN changes: one ``Get-Mailbox -Database <name> -ResultSize Unlimited`` per database (the name
travels as data), counted in the agent's pipeline (``group_by``), all in ONE execution — and no
execution at all when the plan rebinds nothing. :func:`count_all` is the whole-organisation
count, for what needs every database's count (import's summary) and for comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from casdesired import model
from casdesired.agent import protocol
from casdesired.errors import ReadFailed
from casdesired.transport.winrm import AgentClient

COUNT_ALL = "count:all"

Counter = Callable[[Sequence[str]], dict[str, int]]
"""Counts the mailboxes of the databases named: ``{model.key(database): count}``."""


def count_id(database: str) -> str:
    return f"count:{model.key(database)}"


def count_invocations(databases: Iterable[str]) -> tuple[protocol.Invocation, ...]:
    """One counting invocation per database (each once). Without ``-ResultSize Unlimited``
    Exchange stops at 1,000 and the count would be wrong."""
    unique = {model.key(name): name for name in databases}
    return tuple(
        protocol.Invocation(
            count_id(name),
            "Get-Mailbox",
            parameters={"Database": name, "ResultSize": "Unlimited"},
            group_by="Database",
        )
        for name in unique.values()
    )


def counts_from_response(
    response: protocol.Response, databases: Iterable[str]
) -> dict[str, int]:
    """``{model.key(database): count}`` for each database counted; a failed or missing count is
    a :class:`ReadFailed` (a number of affected users is never guessed)."""
    counts: dict[str, int] = {}
    for name in {model.key(n): n for n in databases}.values():
        result = response.result(count_id(name))
        if result is None or not result.ok or result.groups is None:
            why = result.error.message if result is not None and result.error else "no result"
            raise ReadFailed(f"could not count the mailboxes of database {name}: {why}")
        # A database with no mailbox yields no group at all.
        counts[model.key(name)] = sum(
            n for group, n in result.groups.items() if model.key(group) == model.key(name)
        )
    return counts


def count_mailboxes(
    client: AgentClient,
    databases: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """The mailboxes of ``databases``, in one command execution (none when there are none)."""
    if not databases:
        return {}
    if progress:
        progress(f"counting the mailboxes of {len(databases):,} database(s) the plan rebinds")
    request = client.make_request(count_invocations(databases))
    return counts_from_response(client.run(request), databases)


def count_all_invocation() -> protocol.Invocation:
    """Every mailbox of the organisation counted per database (``-ResultSize Unlimited``: without
    it Exchange stops at 1,000). It may ride in another request (import puts it in its read)."""
    return protocol.Invocation(
        COUNT_ALL, "Get-Mailbox", parameters={"ResultSize": "Unlimited"}, group_by="Database"
    )


def count_all_from_response(response: protocol.Response) -> dict[str, int]:
    """``{model.key(database): count}`` from a response holding :func:`count_all_invocation`'s
    result; a failed or missing count is a :class:`ReadFailed`."""
    result = response.result(COUNT_ALL)
    if result is None or not result.ok or result.groups is None:
        why = result.error.message if result is not None and result.error else "no result"
        raise ReadFailed(f"could not count the organisation's mailboxes: {why}")
    counts: dict[str, int] = {}
    for group, n in result.groups.items():
        counts[model.key(group)] = counts.get(model.key(group), 0) + n
    return counts


def count_all(client: AgentClient) -> dict[str, int]:
    """Every database's mailbox count, in one execution: ``{model.key(database): count}``."""
    return count_all_from_response(client.run(client.make_request((count_all_invocation(),))))
