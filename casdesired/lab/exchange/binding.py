"""How the lab binds a splatted parameter table to a cmdlet, as PowerShell 2.0 does.

Each cmdlet is a :class:`Cmdlet`: its parameters, the snap-in or module that provides it, and a
handler. :func:`bind` turns ``& $cmdlet @parameters`` into typed arguments (names
case-insensitive; an unknown name, a missing mandatory one or an unconvertible value is an
error before anything runs). Unlike PowerShell, the lab does not accept unambiguous prefixes of
parameter names: the agent always sends full names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeAlias
from urllib.parse import urlsplit

from casdesired.agent.protocol import JsonValue, ParamValue
from casdesired.lab.exchange import errors as err

if TYPE_CHECKING:
    from casdesired.lab.exchange.state import OrgState

Kind = Literal[
    "string", "fqdn", "uri", "strings", "switch", "uint", "resultsize", "bool", "int32", "datetime"
]
Provider = Literal["exchange", "nlb", "agent", "probes"]
"""``agent``: functions agent.ps1 defines itself (the lock, see .locks); always present.
``probes``: the functions of probes.ps1 (.probes), present only in a run whose agent came with
them (a diagnose request's)."""
Obj = dict[str, JsonValue]


class SubObject(dict[str, JsonValue]):
    """An object held in a property (an audit entry's CmdletParameters: Name and Value): the
    agent shows its ``ToString()``, :attr:`text`, unless the invocation expands the property
    (then the sub-properties it names)."""

    def __init__(self, text: str, **properties: JsonValue) -> None:
        super().__init__(properties)
        self.text = text


LabValue: TypeAlias = ParamValue | datetime
"""A parameter value as a cmdlet receives it: the request's data, or the ``[DateTime]`` the
agent made of a value an invocation names in ``dates`` (the protocol's one typed value)."""

_TYPE_NAMES: dict[Kind, str] = {
    "string": "System.String",
    "fqdn": "Microsoft.Exchange.Data.Fqdn",
    "uri": "System.Uri",
    "strings": "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]",
    "switch": "System.Management.Automation.SwitchParameter",
    "uint": "System.UInt32",
    "resultsize": "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]",
    "bool": "System.Boolean",
    "int32": "System.Int32",
    "datetime": "Microsoft.Exchange.ExchangeSystem.ExDateTime",
}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_FQDN = re.compile(rf"^(?=.{{1,255}}$){_LABEL}(?:\.{_LABEL})*\.?$")
DEFAULT_RESULT_SIZE = 1000


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind = "string"
    mandatory: bool = False
    nullable: bool = False
    """$null is a value (clears a property); otherwise binding $null is an error."""


@dataclass
class Session:
    """The PowerShell session a cmdlet runs in, as the double hop sees it (field §1)."""

    computer: str
    """Where it runs: the WinRM endpoint host, or a node reached through a PSSession."""
    delegates: bool = False
    """The logon can reach a third machine as the user (CredSSP, or Kerberos with
    delegation). NTLM, Kerberos without delegation and a session opened with explicit
    credentials cannot: WMI to another host (the NLB cmdlets' -HostName) is denied."""
    exchange_reaches_ad: bool = True
    """False for the Exchange snap-in loaded in a logon that cannot delegate: its AD driver
    binds to a domain controller as the caller, a second hop, so its cmdlets fail."""
    view_entire_forest: bool = False
    """Set-AdServerSettings -ViewEntireForest $true ran in this session: recipient cmdlets see
    every domain of the forest, not only the server's own (field §3)."""
    rbac: bool = False
    """The cmdlets come through Exchange's ``/PowerShell`` endpoint, where RBAC decides which
    exist for the user (a cmdlet none of its roles grants is "not recognized"); the snap-in
    bypasses RBAC."""
    credential_valid: bool | None = None
    """The request's explicit credential (for second hops): None when it carried none."""
    user: str = ""
    """Who the session runs as (``CONTOSO\\casadmin``)."""


@dataclass
class CmdletContext:
    """What a handler may use besides its arguments; collects what it prints."""

    state: OrgState
    now: float
    """Wall-clock time (epoch seconds), for NLB drains."""
    session: Session = field(default_factory=lambda: Session(""))
    warnings: list[str] = field(default_factory=list)
    host_lines: list[str] = field(default_factory=list)
    """Text written to the host (What if: ...)."""
    changed: bool = False
    block_until: float | None = None
    """The cmdlet blocks until this wall-clock time (a drain) before it returns; the
    organisation waits outside its lock, then asks :attr:`after_block` for the output."""
    after_block: Callable[[], list[Obj]] | None = None
    loaded: frozenset[Provider] = frozenset()
    """What the session has loaded (the Exchange session or snap-in, the NLB module)."""
    winrm: Mapping[str, int] = field(default_factory=dict)
    """The host's WinRM quotas by Windows' names (what ``winrm get winrm/config`` shows)."""
    object_modified: str | None = None
    """What the admin audit log records as the object changed (its name); None: the Identity
    the cmdlet was given."""


Handler = Callable[[CmdletContext, dict[str, Any]], Iterable[Obj]]


@dataclass(frozen=True)
class Cmdlet:
    name: str
    provider: Provider
    params: tuple[Param, ...]
    handler: Handler
    should_process: bool = False
    """Supports -WhatIf and -Confirm."""

    def param(self, given: str) -> Param | None:
        wanted = given.lower()
        return next((p for p in self.all_params if p.name.lower() == wanted), None)

    @property
    def all_params(self) -> tuple[Param, ...]:
        common: tuple[Param, ...] = ()
        if self.provider == "exchange":
            common += (Param("DomainController", "fqdn"),)
        if self.should_process:
            common += (Param("WhatIf", "switch"), Param("Confirm", "switch"))
        return self.params + common


# ---------------------------------------------------------------------------- binding
def bind(cmdlet: Cmdlet, given: Mapping[str, LabValue]) -> dict[str, Any]:
    """Bind splatted parameters; keys of the result are the parameters' canonical names."""
    bound: dict[str, Any] = {}
    for name, value in given.items():
        param = cmdlet.param(str(name))
        if param is None:
            raise err.ParameterBindingError(
                err.PARAMETER_NOT_FOUND.format(name=name), target=str(name)
            )
        if param.name in bound:
            raise err.ParameterBindingError(err.PARAMETER_TWICE.format(name=param.name))
        bound[param.name] = _convert(param, value)
    missing = [p.name for p in cmdlet.params if p.mandatory and p.name not in bound]
    if missing:
        raise err.ParameterBindingError(err.MISSING_MANDATORY.format(names=" ".join(missing)))
    return bound


def _convert(param: Param, value: LabValue) -> Any:
    if isinstance(value, datetime):
        if param.kind == "datetime":
            return value
        _cannot(param, value.isoformat(), "Specified method is not supported.")
    if value is None:
        if param.nullable:
            return [] if param.kind == "strings" else None
        raise err.ParameterValidationError(err.ARGUMENT_NULL.format(name=param.name))
    if param.kind in ("switch", "bool"):
        if isinstance(value, bool):
            return value
        _cannot(param, value, "Only boolean values are allowed for a switch.")
    if param.kind == "strings":
        items = value if isinstance(value, list) else [value]
        return [_scalar_text(param, v) for v in items if v is not None]
    if isinstance(value, list):
        if len(value) == 1:  # PowerShell unwraps a one-element array for a scalar parameter
            return _convert(param, value[0])
        raise err.ParameterBindingError(
            err.CANNOT_CONVERT_ARRAY.format(type=_TYPE_NAMES[param.kind], name=param.name)
        )
    text = _scalar_text(param, value)
    if param.kind == "fqdn" and not _FQDN.match(text):
        _cannot(param, text, f"'{text}' is not a valid FQDN.")
    if param.kind == "uri":
        parts = urlsplit(text)
        if not (parts.scheme and parts.netloc):
            _cannot(param, text, "Invalid URI: The format of the URI could not be determined.")
    if param.kind == "uint":
        if not text.isdigit() or int(text) > 0xFFFFFFFF:
            _cannot(param, text, "Input string was not in a correct format.")
        return int(text)
    if param.kind == "int32":
        if not re.fullmatch(r"-?\d{1,10}", text) or not -(2**31) <= int(text) < 2**31:
            _cannot(param, text, "Input string was not in a correct format.")
        return int(text)
    # "datetime" given as text stays text: only the server's regional format reads it, and the
    # cmdlet knows the server (see casdesired.lab.exchange.auditlog.parse_regional).
    if param.kind == "resultsize":
        if text.lower() == "unlimited":
            return None
        if not text.isdigit() or int(text) == 0:
            _cannot(param, text, "Input string was not in a correct format.")
        return int(text)
    return text


def _scalar_text(param: Param, value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float, str)):
        return str(value)
    _cannot(param, value, "Specified method is not supported.")


def _cannot(param: Param, value: object, error: str) -> NoReturn:
    raise err.ParameterBindingError(
        err.CANNOT_CONVERT.format(
            name=param.name, value=value, type=_TYPE_NAMES[param.kind], error=error
        ),
        target=str(value),
    )


def confirm(ctx: CmdletContext, args: dict[str, Any], action: str, target: str,
             *, prompts_by_default: bool) -> bool:
    """ShouldProcess in a non-interactive host: False for -WhatIf (after saying what it would
    do); a prompt (default or -Confirm) cannot be shown and fails the invocation."""
    if args.get("WhatIf"):
        ctx.host_lines.append(f'What if: {action} "{target}".')
        return False
    if args.get("Confirm", prompts_by_default):
        raise err.PromptNotAvailable()
    return True
