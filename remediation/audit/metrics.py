"""Prometheus metrics of the audit log (docs/audit.md, "Metrics")."""

from prometheus_client import Counter

AUDIT_ENTRIES = Counter(
    "medic_audit_entries_total", "Remediation audit rows written (committed), by event.", ["event"]
)
AUDIT_PURGED = Counter(
    "medic_audit_entries_purged_total", "Audit rows removed by the retention purge."
)
