"""The lab's switches (:class:`Behaviour`): what its Exchange and its endpoint host do where the
field is [OPEN] or varies, the field's timings and limits, and the cost model.

They are part of the state document (``settings``), so a test, ``PUT /lab/state`` or a person
editing the state file flips them; a value a switch does not take is refused, changing nothing.
docs/lab.md lists them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

POWERSHELL_STDIN = ("works", "hangs", "empty")
"""The readings of ``Behaviour.powershell_stdin``."""


@dataclass
class Behaviour:
    """The lab's switches: where ../shared marks Exchange behaviour [OPEN], each reading is a
    switch defaulting to the stricter one; plus the field's timings and limits, and the cost
    model. Stored in the state file under ``settings`` so a test (or the control API) can flip
    them. docs/lab.md lists them all.
    """

    one_array_per_site: bool = True
    """Refuse a second CAS array in an AD site (New/Set -Site). Unconfirmed in 2010 code."""
    databases_follow_array_fqdn: bool = True
    """After Set-ClientAccessArray -Fqdn, bound databases show the new FQDN (the value is a
    pointer to the array). False: they keep showing the FQDN they were bound with."""
    nlb_drain_seconds: float = 0.0
    """How long the existing connections of a node take to drain: Stop-NlbClusterNode -Drain
    blocks that long (or until its -Timeout), then shows Stopped."""
    nlb_timeout_unit: str = "minutes"
    """[OPEN] the unit of Stop-NlbClusterNode -Timeout: ``minutes`` (the 2012 help, and
    Stop-NlbCluster's in every version) or ``seconds`` (the 2012 R2+ help)."""
    nlb_convergence_seconds: float = 1.0
    """How long a cluster reconverges after Add-/Remove-NlbClusterNode (field §6: heartbeats
    every second, ~5 s to notice, ~10 s in all); its nodes show Converging meanwhile."""
    nlb_add_reaches_new_node: bool = False
    """[OPEN, inferred] Add-NlbClusterNode also configures the new node over WMI, so outside a
    delegating logon it fails unless it runs on that node. Off: only -HostName counts."""
    orphans_show_blank: bool = True
    """After Remove-ClientAccessArray, databases that pointed at it show a blank
    RpcClientAccessServer (2013 code: the legacyDN no longer resolves; field §9). False: they
    keep showing the FQDN they were bound with."""
    remove_array_in_use_refused: bool = False
    """Remove-ClientAccessArray refuses while databases point at the array. [OPEN] for 2010;
    2013's code does not check, so the lab does not either unless this is set."""
    exchange_session_limit: int = 18
    """Exchange's throttling policy PowerShellMaxConcurrency: concurrent /PowerShell sessions
    per user (field §5); leaked sessions count until the app pool recycles."""
    powershell_stdin: str = "works"
    """How powershell.exe 2.0 treats the redirected stdin WinRM gives it (field §5: reported to
    hang, or to misread it, on some hosts): ``works``; ``hangs`` (a powershell.exe started
    without ``-InputFormat None`` never gets past reading stdin, until its process is killed);
    ``empty`` (it reads nothing). Default ``works``, not the stricter reading: stdin is
    casdesired's primary delivery and must be tested working; tests switch the failures on."""
    object_cost_ms: float = 0.02
    """The cost model: server time, in milliseconds, charged for every object a cmdlet
    returns (a mailbox of Get-Mailbox, a database of Get-MailboxDatabase...), whether the agent
    selects its properties or only counts it. Over remote PowerShell every object is
    serialised across the session; a few milliseconds each is a plausible figure for a real
    organisation (an estimate: bench/mailbox_count_bench.py uses 2 ms). The default keeps the
    suite quick while still making work proportional to what a cmdlet returns."""
    # The endpoint host as Windows would report it (what `casdesired doctor` checks). The
    # defaults are a stock Windows Server 2008 R2 SP1 Exchange 2010 server; each can be set to
    # what makes one of doctor's checks fail, and the lab then behaves as that host would.
    host_os: str = "Microsoft Windows Server 2008 R2 Enterprise"
    host_os_version: str = "6.1.7601.65536"
    host_powershell_version: str = "2.0"
    host_clr_version: str = "2.0.50727.5485"
    host_execution_policy_gpo: str = "Undefined"
    """The execution policy Group Policy sets (MachinePolicy): it beats the agent's
    ``-ExecutionPolicy Bypass``. ``Undefined``: none (the agent's Bypass is in force)."""
    host_dotnet35: bool = True
    """.NET 3.5's System.Web.Extensions is installed. Off: the agent cannot load its JSON
    serializer and stops before anything else, as PowerShell 2.0 would."""
    host_gzip_round_trip: bool = True
    """Off: GZipStream's round trip gives back other bytes (a damaged .NET Framework; no known
    cause on a working host, here so that doctor's check of it can be seen failing)."""
    host_clock_skew_seconds: float = 0.0
    """How far the host's clock is ahead of the lab's (negative: behind): every time the host
    reads or writes (lock leases, the clock doctor reads) is off by this much."""
    lock_directory_writable: bool = True
    """The account may create and write ``%ProgramData%\\casdesired``. Off: every open of the
    lock file fails with "Access to the path ... is denied", as NTFS would refuse it."""
    rbac_not_granted: tuple[str, ...] = ()
    """What the account's RBAC role assignments do not give it, as ``Cmdlet`` or ``Cmdlet
    -Parameter`` entries: Exchange's remote /PowerShell session does not publish them (an
    unpublished cmdlet "is not recognized", an unpublished parameter "cannot be found"). The
    snap-in bypasses RBAC and ignores this."""

    server_culture: str = "en-US"
    """[inferred] The regional format the Exchange server reads a date given as TEXT in (an
    ExDateTime parameter such as Search-AdminAuditLog -StartDate): ``en-US`` (M/d/yyyy),
    ``en-GB`` (dd/MM/yyyy) or ``de-DE`` (dd.MM.yyyy), optionally with a time. Stricter than
    .NET's lenient parse: any other text is refused, so a client must send dates as dates."""
    audit_search_role: bool = True
    """The lab's account holds the View-Only Audit Logs role (Organization Management does).
    Off: through /PowerShell, Search-AdminAuditLog does not exist for it (RBAC); the snap-in
    bypasses RBAC."""

    def to_json(self) -> dict[str, Any]:
        return {
            f.name: list(value) if isinstance(value := getattr(self, f.name), tuple) else value
            for f in fields(self)
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        defaults = cls()
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name in known:
            value = data.get(name, getattr(defaults, name))
            checked = _SETTING_CHECKS[name](value)
            if checked is None:
                raise ValueError(f"setting {name}: {value!r} is not allowed")
            values[name] = checked
        return cls(**values)


def _as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_seconds(value: Any) -> float | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if number and 0 <= value < 1e6 else None


def _as_count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


EXECUTION_POLICIES = (
    "Undefined", "Restricted", "AllSigned", "RemoteSigned", "Unrestricted", "Bypass",
)
_SETTING_CHECKS: dict[str, Any] = {
    "one_array_per_site": _as_bool,
    "databases_follow_array_fqdn": _as_bool,
    "nlb_drain_seconds": _as_seconds,
    "nlb_timeout_unit": lambda v: v if v in ("minutes", "seconds") else None,
    "nlb_convergence_seconds": _as_seconds,
    "nlb_add_reaches_new_node": _as_bool,
    "orphans_show_blank": _as_bool,
    "remove_array_in_use_refused": _as_bool,
    "exchange_session_limit": _as_count,
    "powershell_stdin": lambda v: v if v in POWERSHELL_STDIN else None,
    "object_cost_ms": lambda v: _as_seconds(v) if _as_seconds(v) is not None and v < 1e4 else None,
    "host_os": lambda v: _as_text(v),
    "host_os_version": lambda v: _as_text(v),
    "host_powershell_version": lambda v: _as_text(v),
    "host_clr_version": lambda v: _as_text(v),
    "host_execution_policy_gpo": lambda v: v if v in EXECUTION_POLICIES else None,
    "host_dotnet35": _as_bool,
    "host_gzip_round_trip": _as_bool,
    "host_clock_skew_seconds": lambda v: (
        float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e8
        else None
    ),
    "lock_directory_writable": _as_bool,
    "rbac_not_granted": lambda v: _as_grants(v),
    "server_culture": lambda v: v if v in ("en-US", "en-GB", "de-DE") else None,
    "audit_search_role": _as_bool,
}

_GRANT = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+(?: -[A-Za-z0-9]+)?$")


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _as_grants(value: Any) -> tuple[str, ...] | None:
    """``["Set-MailboxDatabase", "Set-ClientAccessServer -AutoDiscoverSiteScope"]``."""
    if not isinstance(value, (list, tuple)):
        return None
    if not all(isinstance(v, str) and _GRANT.match(v.strip()) for v in value):
        return None
    return tuple(v.strip() for v in value)
