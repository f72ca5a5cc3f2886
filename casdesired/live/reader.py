"""Reading the live organisation: one request, one command execution, whatever the size.

Everything is read by one agent run (servers, CAS settings, arrays, databases, and each NLB
cluster with its nodes), then checked and converted to the shared model
(:mod:`casdesired.live.convert`). A failed invocation, a missing result or a malformed object is
a :class:`ReadFailed` naming what could not be read: a partial read is never taken for
"absent", so no plan can delete or recreate something because a read failed.

Mailboxes are not counted here: counting every mailbox of the organisation costs minutes on a
large one over remote PowerShell. The plan counts only the databases it rebinds
(:mod:`casdesired.live.mailboxes`), in one more execution, and only when it rebinds any.

:func:`read_invocations` and :func:`live_state_from_response` are public so that ``apply`` can
put the read into the same request as its own work (e.g. taking a lock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from casdesired.live.convert import live_state_from_response
from casdesired.live.invocations import read_invocations, read_modules, unique_hosts
from casdesired.live.state import LiveState
from casdesired.transport.winrm import AgentClient


def read_live(
    client: AgentClient,
    *,
    nlb_hosts: Iterable[str],
    progress: Callable[[str], None] | None = None,
) -> LiveState:
    """Read the whole live organisation in ONE command execution."""
    hosts = unique_hosts(nlb_hosts)
    say = progress or (lambda _message: None)
    say(f"reading the live organisation through {client.target.url}")
    request = client.make_request(read_invocations(hosts), modules=read_modules(hosts))
    response = client.run(request)
    state = live_state_from_response(response, hosts)
    e = state.estate
    say(
        f"read {len(e.servers)} servers, {len(e.arrays)} arrays, {len(e.databases)} databases "
        f"and {len(state.nlb)} NLB clusters from {state.host or client.target.url}"
    )
    return state
