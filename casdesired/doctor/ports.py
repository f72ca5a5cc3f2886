"""Static RPC port checks: every member of an array uses the same static ports.

Exchange team guidance for load-balanced CAS arrays (exchange2010.md §7; field §8): each member
sets ``MSExchangeRPC\\ParametersSystem`` ``TCP/IP Port`` (REG_DWORD) and, from SP1,
``MSExchangeAB\\Parameters`` ``RpcTcpPort`` (REG_SZ) to the same values, so the load balancer
balances TCP 135 and those two ports. None of the reference tools checks it. doctor reads both
on every CAS of each site with an array, through WMI's StdRegProv with your credential (no
double hop), as a DWORD or as a string, whichever the administrator wrote.
"""

from __future__ import annotations

from casdesired.desired.config import DesiredState
from casdesired.doctor import outcome
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.doctor.probe import ProbeRun, array_members, ports_id

TITLE = "every array member uses the same static RPC ports"
RPC = ("TCP/IP Port", "REG_DWORD")
ADDRESS_BOOK = ("RpcTcpPort", "REG_SZ")
REMEDY = (
    "On every member, in an elevated prompt, with the same two ports (59531 and 59532 are the "
    "range ExBPA recommends): 'reg add HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeRPC"
    "\\ParametersSystem /v \"TCP/IP Port\" /t REG_DWORD /d 59531 /f', 'reg add HKLM\\SYSTEM\\"
    "CurrentControlSet\\Services\\MSExchangeAB\\Parameters /v RpcTcpPort /t REG_SZ /d 59532 "
    "/f', then 'Restart-Service MSExchangeRPC, MSExchangeAB'; balance TCP 135, 59531 and 59532."
)


def _value(text: object) -> tuple[str, str] | None:
    """('REG_DWORD', '59531') from the agent's 'REG_DWORD|59531'; None when it is not set."""
    kind, sep, value = str(text or "").partition("|")
    return (kind, value) if sep else None


def checks(run: ProbeRun, desired: DesiredState) -> list[Check]:
    sites = array_members(desired)
    if not sites:
        return [skipped("ports.static-rpc", TITLE, "no site declares a present array")]
    if not run.ran:
        return [skipped("ports.static-rpc", TITLE, outcome.not_run(run.error), subject=site)
                for site in sites]
    return [_site(run, site, members) for site, members in sites.items()]


def _site(run: ProbeRun, site: str, members: list[tuple[str, str]]) -> Check:
    facts, unread, odd = [], [], []
    rpc: dict[str, str | None] = {}
    book: dict[str, str | None] = {}
    for name, fqdn in members:
        found = run.first(ports_id(name))
        if found is None:
            result = run.result(ports_id(name))
            said = result.error.message if result is not None and result.error else "not run"
            unread.append(f"{name} ({fqdn}): {said}")
            continue
        for (label, expected), seen, key in (
            (RPC, rpc, "RpcTcpPort"), (ADDRESS_BOOK, book, "AddressBookPort")
        ):
            value = _value(found.get(key))
            seen[name] = value[1] if value else None
            if value and value[0] != expected:
                odd.append(f"{name}: {label} is a {value[0]}; Exchange reads a {expected} "
                           "(the other type is likely ignored [inferred])")
        facts.append(f"{name}: TCP/IP Port {rpc[name] or 'not set'}, RpcTcpPort "
                     f"{book[name] or 'not set'}")
    if unread:
        return check("ports.static-rpc", TITLE, Status.FAIL, (*unread, *facts),
                     "Let the endpoint read each member's registry over WMI with your account: "
                     "the account a local administrator there, and Windows Firewall's "
                     "'Windows Management Instrumentation (WMI-In)' rule enabled.", subject=site)
    values = [*rpc.values(), *book.values()]
    if all(v is None for v in values):
        return check("ports.static-rpc", TITLE, Status.WARN,
                     (*facts, "no static RPC ports: each member picks dynamic ports (6005-59530), "
                      "so a load balancer must balance that whole range"),
                     REMEDY, subject=site)
    differ = len(set(rpc.values())) > 1 or len(set(book.values())) > 1 or None in values
    if differ:
        return check("ports.static-rpc", TITLE, Status.FAIL,
                     (*facts, "the members differ: a client balanced to another member finds "
                      "the port closed", *odd),
                     REMEDY, subject=site)
    if odd:
        return check("ports.static-rpc", TITLE, Status.WARN, (*facts, *odd), REMEDY, subject=site)
    return check("ports.static-rpc", TITLE, Status.PASS,
                 (*facts, "read through WMI StdRegProv with your credential"), subject=site)
