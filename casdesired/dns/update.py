"""Carry out one :class:`RecordChange` as an RFC 2136 dynamic update signed with TSIG.

Each update carries prerequisites that pin the record to what the plan saw (RFC 2136 §2.4):
a create requires that the name has no A RRset, an update or delete requires the exact A RRset
the plan read. A record someone changed since the plan makes the server refuse the whole update,
so casdesired never clobbers it. After the server accepts, the primary is asked again to prove
the change took.
"""

from __future__ import annotations

from collections.abc import Mapping

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.update

from casdesired.dns.errors import DnsError, DnsLookupError, DnsUpdateError
from casdesired.dns.lookup import sorted_addresses, to_dns_name
from casdesired.dns.records import RecordChange, primary_lookup
from casdesired.dns.tsig import TsigConfig, tsig_key

# RCODEs meaning "a prerequisite did not hold": the record is no longer what the plan saw.
_PREREQUISITE_FAILED = {
    dns.rcode.YXDOMAIN,
    dns.rcode.YXRRSET,
    dns.rcode.NXDOMAIN,
    dns.rcode.NXRRSET,
}


def build_update(change: RecordChange, key: dns.tsig.Key | None) -> dns.update.UpdateMessage:
    """The UPDATE message for ``change`` (signed when ``key``), prerequisites pinning ``before``."""
    name = to_dns_name(change.name)
    zone = to_dns_name(change.zone)
    if key is None:
        update = dns.update.UpdateMessage(zone)
    else:
        update = dns.update.UpdateMessage(
            zone, keyring=key, keyname=key.name, keyalgorithm=key.algorithm
        )
    if change.before_addresses:
        update.present(
            name,
            dns.rdataset.from_text(
                dns.rdataclass.IN, dns.rdatatype.A, 0, *change.before_addresses
            ),
        )
    else:
        update.absent(name, dns.rdatatype.A)
    if change.after_addresses:
        # replace() deletes the existing A RRset and adds the new one, atomically.
        update.replace(name, change.ttl, dns.rdatatype.A, *change.after_addresses)
    else:
        update.delete(name, dns.rdatatype.A)
    return update


def apply_record_change(
    change: RecordChange,
    *,
    environ: Mapping[str, str],
    timeout: float = 5.0,
) -> None:
    """Send ``change`` to the zone's primary its management names, then verify the primary
    now holds ``after``. The TSIG secret is read from the variable the management names.

    Raises DnsUpdateError with a message naming the server, zone, name and key (never the
    secret) when the update is refused, its prerequisites fail, or it did not take; DnsError for
    bad settings (unset secret variable, unknown algorithm).
    """
    tsig = change.management
    if to_dns_name(change.zone) != tsig.zone_name:
        raise DnsError(
            f"record change for {change.name} is for zone {change.zone}, "
            f"but DNS management is configured for zone {tsig.zone}"
        )
    key = tsig_key(tsig, environ)
    server = tsig.endpoint
    what = f"the update of {change.name} in zone {change.zone} at DNS server {server}"
    try:
        response = dns.query.tcp(
            build_update(change, key), server.host, port=server.port, timeout=timeout
        )
    except dns.tsig.PeerBadKey:
        raise DnsUpdateError(
            f"DNS server {server} does not know TSIG key {tsig.key_name} with algorithm "
            f"{tsig.algorithm} (BADKEY); {what} was not applied"
        ) from None
    except dns.tsig.PeerBadSignature:
        raise DnsUpdateError(
            f"DNS server {server} rejected the signature of TSIG key {tsig.key_name} (BADSIG): "
            f"the secret in {tsig.secret_env} does not match the server's; "
            f"{what} was not applied"
        ) from None
    except dns.tsig.PeerBadTime:
        raise DnsUpdateError(
            f"DNS server {server} rejected the TSIG time (BADTIME): this machine's clock and "
            f"the server's differ by more than the allowed fudge; {what} was not applied"
        ) from None
    except dns.exception.Timeout:
        raise DnsUpdateError(
            f"no answer within {timeout:g} s for {what}; it may or may not have been applied "
            "— run plan again to see the record's state"
        ) from None
    except OSError as exc:
        raise DnsUpdateError(
            f"DNS server {server} could not be reached for {what}: {exc.strerror or exc}"
        ) from None
    except dns.exception.DNSException as exc:
        # e.g. the server's answer failed our TSIG validation: we cannot trust what it said.
        raise DnsUpdateError(
            f"unusable answer to {what} ({type(exc).__name__}); run plan again to see whether "
            "it was applied"
        ) from None
    _raise_for_rcode(response, change, tsig, what)
    _verify(change, tsig, timeout)


def _raise_for_rcode(
    response: dns.message.Message, change: RecordChange, tsig: TsigConfig, what: str
) -> None:
    rcode = response.rcode()
    if rcode == dns.rcode.NOERROR:
        return
    server = tsig.endpoint
    if rcode in _PREREQUISITE_FAILED:
        held = ", ".join(change.before_addresses) or "no A record"
        raise DnsUpdateError(
            f"the A record of {change.name} changed since the plan (the plan saw {held}); "
            f"nothing was changed — run plan again ({dns.rcode.to_text(rcode)} from {server})"
        )
    if rcode == dns.rcode.REFUSED:
        raise DnsUpdateError(
            f"DNS server {server} refused {what} (REFUSED): its policy does not let "
            f"{tsig.signer} change this zone (BIND: allow-update / update-policy; Windows "
            "DNS: secure-only zones need GSS-TSIG, which casdesired does not speak)"
        )
    if rcode == dns.rcode.NOTAUTH:
        raise DnsUpdateError(
            f"DNS server {server} is not authoritative for zone {change.zone} (NOTAUTH); "
            "point DNS management at the zone's primary server"
        )
    if rcode == dns.rcode.NOTZONE:
        raise DnsUpdateError(f"{change.name} is not inside zone {change.zone} (NOTZONE)")
    raise DnsUpdateError(f"DNS server {server} rejected {what} ({dns.rcode.to_text(rcode)})")


def _verify(change: RecordChange, tsig: TsigConfig, timeout: float) -> None:
    """Ask the primary again: accepted is not the same as done (a CNAME silently wins)."""
    try:
        now = primary_lookup(tsig, timeout=timeout)(change.name)
    except DnsLookupError as exc:
        raise DnsUpdateError(
            f"DNS server {tsig.endpoint} accepted the {change.action.value} of {change.name} "
            f"but could not be asked to confirm it: {exc}"
        ) from None
    if tuple(sorted_addresses(now)) != tuple(sorted_addresses(set(change.after_addresses))):
        shown = ", ".join(sorted_addresses(now)) or "no A record"
        wanted = ", ".join(change.after_addresses) or "no A record"
        raise DnsUpdateError(
            f"DNS server {tsig.endpoint} accepted the {change.action.value} of {change.name} but "
            f"now holds {shown}, not {wanted} (is there a CNAME at that name?)"
        )
