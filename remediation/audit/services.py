"""Writes of the remediation audit log: ``audit_record`` appends one row; ``audit_purge``
applies the retention. See docs/audit.md for the events recorded."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from remediation.audit.masking import mask_data as secrets_mask_data
from remediation.audit.metrics import AUDIT_ENTRIES, AUDIT_PURGED
from remediation.audit.models import AuditEntry

logger = logging.getLogger(__name__)
PURGE_BATCH = 5000


def _cut(value: str | None, field: str) -> str:
    if value is None:
        return ""
    return str(value)[: AuditEntry._meta.get_field(field).max_length]


def audit_record(
    *,
    actor: str,
    event: str,
    object_type: str,
    object_id: str,
    details: dict,
    playbook: str | None = None,
    service: str | None = None,
    execution_id: int | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one audit row. Call it inside the transaction of the change it records, so the
    change and its row commit (or roll back) together. Every stored secret's plaintext in
    ``details`` (strings at any depth, keys included) is replaced by ``••••••`` first. ``at``
    is when it happened when that is not now: history recorded from another system (the v1
    import), whose ``details`` then say where it comes from."""
    entry = AuditEntry(
        created_at=at or timezone.now(),
        actor=_cut(actor, "actor") or "system",
        event=event,
        object_type=_cut(object_type, "object_type") or "",
        object_id=_cut(object_id, "object_id") or "",
        playbook=_cut(playbook, "playbook"),
        service=_cut(service, "service"),
        execution_id=execution_id,
        details=secrets_mask_data(dict(details or {})),
    )
    entry.full_clean()
    entry.save()
    transaction.on_commit(lambda: AUDIT_ENTRIES.labels(event=event).inc())
    return entry


def audit_purge(*, now: datetime | None = None) -> int:
    """Remove rows older than MEDIC_AUDIT_RETENTION_DAYS (0 keeps everything), in short
    batches so the table is never locked for long. The only delete of audit rows: on
    PostgreSQL the append-only trigger lets a DELETE through only in a transaction that set
    ``medic.audit_purge``."""
    days = settings.MEDIC_AUDIT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL medic.audit_purge = 'on'")
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN "  # noqa: S608 - the table name is ours
                f"(SELECT id FROM {table} WHERE created_at < %s ORDER BY id LIMIT %s)",
                [cutoff, PURGE_BATCH],
            )
            removed = cursor.rowcount
        total += removed
        if removed < PURGE_BATCH:
            break
    if total:
        AUDIT_PURGED.inc(total)
        logger.info("audit entries purged", extra={"count": total, "before": cutoff.isoformat()})
    return total
