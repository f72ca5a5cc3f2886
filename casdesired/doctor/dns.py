"""DNS checks, from the runner: resolvers answer, array names resolve to their VIPs inside
only, and the TSIG key of the managed zone works.

The lookups are the plan's own (casdesired.dns.check), against the same resolvers (``lab`` is
the embedded lab's server). TSIG is proved with a signed SOA query to the zone's primary: the
server checks the signature and signs its answer, which dnspython checks in turn; nothing is
updated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from casdesired import model
from casdesired.desired.config import DesiredState
from casdesired.dns.check import ArrayExpectation, check_arrays, expectations_from_sites
from casdesired.dns.desired import DEFAULT_TIMEOUT, resolvers_for
from casdesired.dns.endpoints import parse_endpoint
from casdesired.dns.errors import DnsError
from casdesired.dns.lookup import FAILURES, lookup_a
from casdesired.dns.tsig import TsigConfig, tsig_key
from casdesired.doctor.model import Check, Status, check, skipped
from casdesired.findings import Severity

RESOLVER_REMEDY = (
    "Give dns.resolvers (and dns.external_resolvers) as IP addresses (ip:port) of DNS servers "
    "this runner reaches on port 53, UDP and TCP."
)


def checks(
    desired: DesiredState, environ: Mapping[str, str], known: Sequence[str] = ()
) -> list[Check]:
    """The DNS checks. The resolvers are asked for a name they should know: an array's FQDN,
    else a declared server's, else one of ``known`` (the endpoint's host name, the Exchange
    servers' FQDNs the read saw) -- an organisation file alone declares no name."""
    org = desired.organisation
    arrays = [e for e in expectations_from_sites(desired.sites)
              if e.ensure is model.Ensure.PRESENT]
    found: list[Check] = []
    with resolvers_for(org) as resolvers:
        shown = dict(zip(resolvers.internal, org.dns.resolvers, strict=False))
        names = [a.fqdn for a in arrays] or [s.fqdn for site in desired.sites
                                              for s in site.servers][:1] or [
            name for name in known if "." in name and not _is_address(name)][:1] or [org.name]
        listed = [*resolvers.internal, *resolvers.external]
        if not listed:
            found.append(skipped("dns.resolver", "each configured resolver answers",
                                 "dns.resolvers and dns.external_resolvers are empty: "
                                 "casdesired checks no name (plan says so too)"))
        unique = list(dict.fromkeys(listed))
        # Every resolver, the arrays and the outside at once: a silent resolver costs one
        # timeout, not one per question.
        with ThreadPoolExecutor(max_workers=len(unique) + 2) as pool:
            answers = [pool.submit(_resolver, r, names[0]) for r in unique]
            inside = pool.submit(_arrays, arrays, resolvers.internal)
            outside = pool.submit(_external, arrays, resolvers.external)
            for resolver, answer in zip(unique, answers, strict=True):
                label = resolver if shown.get(resolver, resolver) == resolver else (
                    f"{shown[resolver]} ({resolver})")
                found.append(replace(answer.result(), subject=label))
            found += inside.result()
            found.append(outside.result())
    found.append(_tsig(org.dns.management, environ))
    return found


def _resolver(resolver: str, name: str) -> Check:
    """Whether ``resolver`` gives a verdict (an answer, NXDOMAIN, no record) for ``name``."""
    title = "the resolver answers"
    try:
        endpoint = parse_endpoint(resolver)
    except DnsError as exc:
        return check("dns.resolver", title, Status.FAIL, (str(exc),), RESOLVER_REMEDY,
                     anchor="dns-resolver")
    lookup = lookup_a(name, endpoint, timeout=DEFAULT_TIMEOUT)
    if lookup.status not in FAILURES:
        return check("dns.resolver", title, Status.PASS, (lookup.describe(),))
    return check("dns.resolver", title, Status.FAIL, (lookup.describe(),), RESOLVER_REMEDY,
                 anchor="dns-resolver")


def _arrays(arrays: Sequence[ArrayExpectation], internal: Sequence[str]) -> list[Check]:
    """One check per array: all asked at once (plan's own lookups), reported per site."""
    if not internal:
        return [skipped("dns.array", _array_title(a), "no dns.resolvers configured",
                        subject=a.site) for a in arrays]
    findings = check_arrays(arrays, resolvers=internal, timeout=DEFAULT_TIMEOUT)
    found = []
    for array in arrays:
        mine = [f for f in findings if f.name == array.fqdn or f.site == array.site]
        if mine:
            found.append(check(
                "dns.array", _array_title(array), Status.FAIL, tuple(f.message for f in mine),
                f"Make {array.fqdn} an A record of {array.vip} alone on every internal DNS "
                "server (or let casdesired manage it: dns.management, docs/dns.md).",
                subject=array.site, anchor="dns-array",
            ))
        else:
            found.append(check(
                "dns.array", _array_title(array), Status.PASS,
                (f"{array.fqdn} resolves to {array.vip} through {', '.join(internal)}",),
                subject=array.site,
            ))
    return found


def _array_title(array: ArrayExpectation) -> str:
    return f"{array.fqdn} resolves to its VIP {array.vip} through every internal resolver"


def _external(arrays: Sequence[ArrayExpectation], external: Sequence[str]) -> Check:
    title = "array names do not resolve outside (internal only)"
    if not external:
        return skipped("dns.external", title,
                       "no dns.external_resolvers configured: whether the array names resolve "
                       "publicly is not checked")
    if not arrays:
        return skipped("dns.external", title, "no present array has a load balancer VIP")
    findings = check_arrays(arrays, resolvers=(), external_resolvers=external,
                            timeout=DEFAULT_TIMEOUT)
    if any(f.severity is Severity.WARNING and "resolves through external" in f.message
           for f in findings):
        return check("dns.external", title, Status.FAIL, tuple(f.message for f in findings),
                     "Remove the array names from public DNS: they must resolve inside the "
                     "organisation only (the Exchange team's CAS array guidance).",
                     anchor="dns-external")
    if findings:
        return check("dns.external", title, Status.WARN, tuple(f.message for f in findings),
                     RESOLVER_REMEDY, anchor="dns-external")
    return check("dns.external", title, Status.PASS,
                 (f"none of {', '.join(a.fqdn for a in arrays)} resolves through "
                  f"{', '.join(external)}",))


def _tsig(tsig: TsigConfig | None, environ: Mapping[str, str]) -> Check:
    title = "TSIG works for the managed zone"
    if tsig is None:
        return skipped("dns.tsig", title, "dns.management is not configured: casdesired manages "
                       "no DNS record")
    if tsig.unsigned:
        return skipped("dns.tsig", title, f"dns.management sends unsigned updates to "
                       f"{tsig.server}: there is no key to check")
    remedy = (
        f"Check that {tsig.secret_env} holds the base64 secret of key {tsig.key_name} "
        f"({tsig.algorithm}) exactly as the server has it, that the server knows that key, and "
        "that both clocks agree (TSIG allows 5 minutes)."
    )
    try:
        key = tsig_key(tsig, environ)
        endpoint = tsig.endpoint
        query = dns.message.make_query(tsig.zone_name, dns.rdatatype.SOA)
        query.use_tsig(key)
        answer = dns.query.udp(query, endpoint.host, port=endpoint.port,
                               timeout=DEFAULT_TIMEOUT)
    except DnsError as exc:
        return check("dns.tsig", title, Status.FAIL, (str(exc),), remedy, anchor="dns-tsig")
    except dns.exception.Timeout:
        return check("dns.tsig", title, Status.FAIL,
                     (f"DNS server {tsig.server} did not answer within {DEFAULT_TIMEOUT:g} s",),
                     remedy, anchor="dns-tsig")
    except (dns.exception.DNSException, OSError) as exc:
        # dnspython's texts name what failed (BADKEY, BADSIG, BADTIME), never the secret.
        return check("dns.tsig", title, Status.FAIL,
                     (f"a query signed with {tsig.signer} to {tsig.server} failed: "
                      f"{type(exc).__name__}: {exc}",), remedy, anchor="dns-tsig")
    rcode = answer.rcode()
    if rcode != dns.rcode.NOERROR or not answer.had_tsig:
        said = dns.rcode.to_text(rcode) if rcode != dns.rcode.NOERROR else "an unsigned answer"
        return check("dns.tsig", title, Status.FAIL,
                     (f"{tsig.server} answered a query signed with {tsig.signer} for zone "
                      f"{tsig.zone} with {said}",), remedy, anchor="dns-tsig")
    return check("dns.tsig", title, Status.PASS,
                 (f"{tsig.server} accepted a query signed with {tsig.signer} for zone "
                  f"{tsig.zone} and signed its answer (SOA); nothing was updated",))


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
