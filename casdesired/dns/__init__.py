"""DNS: check that array names resolve to their VIPs; optionally manage the records.

The public API (see docs/dns.md for how plan and apply use it):

* checks — :func:`check_arrays`, :func:`check_servers`, :func:`resolve_a`, the apply gate
  :func:`require_resolution`, and :func:`expectations_from_sites` to build what they check;
* management — :class:`TsigConfig`, :func:`plan_records` (with :func:`primary_lookup` as its
  ``live``), :class:`RecordChange` and :func:`apply_record_change`.
"""

from casdesired.dns.check import (
    ArrayExpectation,
    DnsFinding,
    check_arrays,
    check_servers,
    expectations_from_sites,
    require_resolution,
)
from casdesired.dns.errors import DnsError, DnsLookupError, DnsUpdateError
from casdesired.dns.lookup import resolve_a
from casdesired.dns.records import RecordChange, plan_records, primary_lookup
from casdesired.dns.tsig import TsigConfig
from casdesired.dns.update import apply_record_change

__all__ = [
    "ArrayExpectation",
    "DnsError",
    "DnsFinding",
    "DnsLookupError",
    "DnsUpdateError",
    "RecordChange",
    "TsigConfig",
    "apply_record_change",
    "check_arrays",
    "check_servers",
    "expectations_from_sites",
    "plan_records",
    "primary_lookup",
    "require_resolution",
    "resolve_a",
]
