"""What Exchange's remote /PowerShell session publishes to an account: its RBAC role assignments.

Exchange 2010's ``/PowerShell`` endpoint is a restricted runspace built for the account that
connects, holding the cmdlets its management role assignments give it; ``Import-PSSession``
makes its proxies from what that runspace publishes. A cmdlet outside the assignments is not
there at all: an Organization Management member running a cmdlet of a role only delegated to
that group gets "The term 'import-mailbox' is not recognized as the name of a cmdlet ..."
[MS-blog] Exchange team blog, 2010-03-26 (blogs.technet.com/b/exchange/archive/2010/03/26/
3409621.aspx). Role entries list parameters too (``Get-ManagementRoleEntry`` shows them), so a
parameter outside them is left out of the runspace and cannot be bound ("A parameter cannot be
found ...") [inferred]. The snap-in bypasses RBAC (exchange2010.md §5): there everything is
present.

The lab keeps what the account lacks, not what it has: the setting ``rbac_not_granted``, a list
of ``Cmdlet`` and ``Cmdlet -Parameter`` entries (empty: Organization Management, everything).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.binding import Cmdlet, Session
from casdesired.lab.exchange.models import Behaviour


def _denied(settings: Behaviour) -> tuple[set[str], dict[str, set[str]]]:
    """(cmdlets not granted, {cmdlet: parameters not granted}), lower-cased."""
    cmdlets: set[str] = set()
    parameters: dict[str, set[str]] = {}
    for entry in settings.rbac_not_granted:
        name, _, parameter = entry.partition(" -")
        if parameter:
            parameters.setdefault(name.lower(), set()).add(parameter.lower())
        else:
            cmdlets.add(name.lower())
    return cmdlets, parameters


def published(settings: Behaviour, session: Session, cmdlet: Cmdlet) -> bool:
    """Whether ``session`` has ``cmdlet`` at all (RBAC filters Exchange's cmdlets only). The
    audit log's search needs its own role (``audit_search_role``)."""
    if cmdlet.provider != "exchange" or not session.rbac:
        return True
    if cmdlet.name == "Search-AdminAuditLog" and not settings.audit_search_role:
        return False
    return cmdlet.name.lower() not in _denied(settings)[0]


def published_parameters(settings: Behaviour, session: Session, cmdlet: Cmdlet) -> list[str]:
    """The parameters of ``cmdlet`` the session publishes (its own and Exchange's common ones)."""
    names = [p.name for p in cmdlet.all_params]
    if cmdlet.provider != "exchange" or not session.rbac:
        return names
    hidden = _denied(settings)[1].get(cmdlet.name.lower(), set())
    return [n for n in names if n.lower() not in hidden]


def check(
    settings: Behaviour, session: Session, cmdlet: Cmdlet, parameters: Iterable[str]
) -> None:
    """Refuse, as the restricted session would, a cmdlet or parameter the account lacks."""
    if not published(settings, session, cmdlet):
        raise err.CommandNotFound(cmdlet.name)
    allowed = {n.lower() for n in published_parameters(settings, session, cmdlet)}
    for given in parameters:
        if given.lower() not in allowed and cmdlet.param(given) is not None:
            raise err.ParameterBindingError(
                err.PARAMETER_NOT_FOUND.format(name=given), target=given
            )


def unpublished(settings: Behaviour) -> Mapping[str, set[str]]:
    """For messages and tests: every cmdlet denied (``{name: set()}``) or with denied
    parameters (``{name: {parameter, ...}}``)."""
    cmdlets, parameters = _denied(settings)
    return {**{c: set() for c in cmdlets}, **parameters}
