"""Writes of the event outbox."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from medic.enqueue import enqueue_on_commit
from medic.events.consumers import consumers_for
from medic.events.metrics import EVENTS_RECORDED
from medic.events.models import DomainEvent, EventKind, EventProgress
from medic.events.tasks import dispatch


def event_record(
    *,
    kind: str,
    service_id: int | None = None,
    service_name: str = "",
    payload: dict | None = None,
    occurred_at: datetime | None = None,
) -> DomainEvent:
    """Record a fact in the caller's transaction (the one that changes the state it records).

    Consumers interested in ``kind`` get a pending progress row in the same transaction, and a
    dispatch task is enqueued once it commits; the periodic ``medic.events.sweep`` picks up
    whatever that task misses (broker down, worker killed).
    """
    if kind not in EventKind.values:
        raise ValueError(f"unknown event kind {kind!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction of the state change")
    now = timezone.now()
    event = DomainEvent.objects.create(
        kind=kind,
        service_id=service_id,
        service_name=(service_name or "")[:255],
        occurred_at=occurred_at or now,
        payload=payload or {},
        created_at=now,
    )
    consumers = consumers_for(kind)
    if consumers:
        EventProgress.objects.bulk_create(
            EventProgress(consumer=c.name, event=event, service_id=service_id, next_attempt_at=now)
            for c in consumers
        )
        enqueue_on_commit(dispatch)
    EVENTS_RECORDED.labels(kind=kind).inc()
    return event
