"""Reads of the remediation audit log: one filter definition shared by the list and the
export, and the export's streaming row source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from remediation.audit.models import AuditEntry

EXPORT_CHUNK = 2000


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    actor: str | None = None
    # An exact event, or a family with a trailing ".*" ("script.*").
    event: str | None = None
    playbook: str | None = None
    service: str | None = None
    execution_id: int | None = None


def audit_list(filters: AuditFilter | None = None) -> QuerySet[AuditEntry]:
    f = filters or AuditFilter()
    qs = AuditEntry.objects.all()
    if f.since is not None:
        qs = qs.filter(created_at__gte=f.since)
    if f.until is not None:
        qs = qs.filter(created_at__lt=f.until)
    if f.actor:
        qs = qs.filter(actor=f.actor)
    if f.event:
        if f.event.endswith(".*"):
            qs = qs.filter(event__startswith=f.event[:-1])
        else:
            qs = qs.filter(event=f.event)
    if f.playbook:
        qs = qs.filter(playbook=f.playbook)
    if f.service:
        qs = qs.filter(service=f.service)
    if f.execution_id is not None:
        qs = qs.filter(execution_id=f.execution_id)
    return qs.order_by("-id")


def audit_export_rows(filters: AuditFilter | None = None) -> Iterator[AuditEntry]:
    """Oldest first, through a server-side cursor on PostgreSQL: memory stays constant
    whatever the number of rows."""
    return audit_list(filters).order_by("id").iterator(chunk_size=EXPORT_CHUNK)
