"""DNS: check that array names resolve to their VIPs; optionally manage the records."""
