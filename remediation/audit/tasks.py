"""Thin Celery tasks of the audit log."""

from __future__ import annotations

from celery import shared_task

from remediation.audit.services import audit_purge


@shared_task(name="audit.purge", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def purge() -> None:
    """Apply MEDIC_AUDIT_RETENTION_DAYS (scheduled hourly by migration audit 0002)."""
    audit_purge()
