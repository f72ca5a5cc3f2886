"""DNS: check that array names resolve to their VIPs; optionally manage the records.

The public API (see docs/dns.md for how plan and apply use it):

* checks — :func:`check_arrays`, :func:`check_servers`, :func:`resolve_a`, and
  :func:`expectations_from_sites` to build what they check; findings are
  :class:`casdesired.findings.Finding` with ``source: dns``;
* management — :class:`TsigConfig`, :func:`plan_records` (with :func:`primary_lookup` as its
  ``live``), the change :class:`RecordChange` (:func:`record_change` builds one) and
  :func:`apply_record_change`;
* a plan's DNS source — :class:`casdesired.dns.source.DnsSource`.

Nothing here decides what a finding means for apply: the plan does, and apply's gate says it.
"""

from casdesired.dns.check import (
    ArrayExpectation,
    ServerExpectation,
    check_arrays,
    check_servers,
    expectations_from_sites,
)
from casdesired.dns.errors import DnsError, DnsLookupError, DnsUpdateError
from casdesired.dns.lookup import resolve_a
from casdesired.dns.records import (
    RecordChange,
    RecordCreate,
    RecordDelete,
    RecordUpdate,
    plan_records,
    primary_lookup,
    record_change,
)
from casdesired.dns.tsig import TsigConfig
from casdesired.dns.update import apply_record_change

__all__ = [
    "ArrayExpectation",
    "DnsError",
    "DnsLookupError",
    "DnsUpdateError",
    "RecordChange",
    "RecordCreate",
    "RecordDelete",
    "RecordUpdate",
    "ServerExpectation",
    "TsigConfig",
    "apply_record_change",
    "check_arrays",
    "check_servers",
    "expectations_from_sites",
    "plan_records",
    "primary_lookup",
    "record_change",
    "resolve_a",
]
