"""The DNS layer's exceptions, under casdesired's one root.

Messages name servers, zones, record names and key names; never a TSIG secret.
"""

from __future__ import annotations

from casdesired.errors import CasdesiredError


class DnsError(CasdesiredError):
    """A DNS check or record change could not be carried out (bad settings, unreachable server)."""


class DnsLookupError(DnsError):
    """A name could not be resolved: NXDOMAIN, no A record, SERVFAIL, REFUSED or a timeout."""


class DnsUpdateError(DnsError):
    """An RFC 2136 update was refused, failed its prerequisites, or did not take."""
