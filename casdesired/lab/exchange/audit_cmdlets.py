"""The admin audit log's cmdlets (Exchange 2010 SP1): Get-/Set-AdminAuditLogConfig and
Search-AdminAuditLog, over the organisation's :class:`~.auditlog.AuditLog`.

casdesired only reads (Get-AdminAuditLogConfig, Search-AdminAuditLog); Set-AdminAuditLogConfig
is here so a test, or a person through the control API, can change the configuration (turn
logging off) as an administrator would. Parameters as field §4 gives them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.auditlog import (
    CONFIG_NAME,
    AuditConfig,
    SearchQuery,
    age_limit_seconds,
    parse_regional,
)
from casdesired.lab.exchange.binding import CmdletContext, Obj, confirm

SEARCH = "Search-AdminAuditLog"


def get_admin_audit_log_config(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    return [ctx.state.audit.config.to_object()]


def set_admin_audit_log_config(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    current = ctx.state.audit.config
    age_limit = args.get("AdminAuditLogAgeLimit", current.age_limit)
    try:
        age_limit_seconds(age_limit)
    except ValueError:
        raise err.ParameterBindingError(
            err.CANNOT_CONVERT.format(
                name="AdminAuditLogAgeLimit", value=age_limit,
                type="Microsoft.Exchange.Data.EnhancedTimeSpan",
                error="Input string was not in a correct format.",
            ),
            target=str(age_limit),
        ) from None
    wanted = AuditConfig(
        enabled=args.get("AdminAuditLogEnabled", current.enabled),
        cmdlets=args.get("AdminAuditLogCmdlets", current.cmdlets),
        parameters=args.get("AdminAuditLogParameters", current.parameters),
        excluded_cmdlets=args.get("AdminAuditLogExcludedCmdlets", current.excluded_cmdlets),
        age_limit=age_limit,
    )
    ctx.object_modified = CONFIG_NAME
    if not confirm(ctx, args, "Setting admin audit log configuration", CONFIG_NAME,
                   prompts_by_default=False):
        return []
    if wanted == current:
        ctx.warnings.append(err.NO_SETTINGS_MODIFIED.format(identity=CONFIG_NAME))
        return []
    ctx.state.audit.config = wanted
    ctx.changed = True
    return []


def search_admin_audit_log(ctx: CmdletContext, args: dict[str, Any]) -> list[Obj]:
    """The entries matching every filter given, newest first: ``-ResultSize`` of them (1,000
    when not given) from ``-StartIndex``. In the /PowerShell session it exists only for an
    account holding the View-Only Audit Logs role (RBAC; Behaviour.audit_search_role)."""
    if ctx.session.rbac and not ctx.state.settings.audit_search_role:
        raise err.CommandNotFound(SEARCH)
    size = args.get("ResultSize", 1000)
    index = args.get("StartIndex", 0)
    for name, value, low in (("ResultSize", size, 1), ("StartIndex", index, 0)):
        if value < low:
            raise err.ParameterValidationError(
                f"Cannot validate argument on parameter '{name}'. The {value} argument is less "
                f"than the minimum allowed range of {low}. Supply an argument that is greater "
                f"than or equal to {low} and then try the command again.",
                target=str(value),
            )
    culture = ctx.state.settings.server_culture
    query = SearchQuery(
        cmdlets=args.get("Cmdlets"),
        object_ids=args.get("ObjectIds"),
        user_ids=args.get("UserIds"),
        parameters=args.get("Parameters"),
        start=_date(args, "StartDate", culture),
        end=_date(args, "EndDate", culture),
        is_success=args.get("IsSuccess"),
        start_index=index,
        result_size=size,
    )
    return ctx.state.audit.search(query)


def _date(args: dict[str, Any], name: str, culture: str) -> datetime | None:
    """An ExDateTime parameter: a [DateTime] as given; text read in the server's regional
    format, the only one it knows."""
    value = args.get(name)
    if value is None or isinstance(value, datetime):
        return value
    return parse_regional(name, str(value), culture)
