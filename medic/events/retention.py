"""Retention of the event outbox (``MEDIC_EVENT_RETENTION_DAYS``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from medic.events.metrics import EVENTS_PRUNED
from medic.events.models import DomainEvent, EventProgress


def events_prune(*, older_than_days: int | None = None, batch: int = 5000) -> int:
    """Delete events (and their progress rows) past retention, in bounded batches."""
    days = older_than_days if older_than_days is not None else settings.MEDIC_EVENT_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    total = 0
    while True:
        ids = list(
            DomainEvent.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[:batch]
        )
        if not ids:
            break
        EventProgress.objects.filter(event_id__in=ids).delete()
        total += DomainEvent.objects.filter(id__in=ids).delete()[0]
    EVENTS_PRUNED.inc(total)
    return total
