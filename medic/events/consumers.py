"""Consumers of domain events, and the dispatcher that feeds them.

Each consumer keeps its own progress (``EventProgress`` rows), so alerting and the playbook
engine never wait for each other and each handles an event once, idempotently by event id.

Claiming: ``SELECT ... FOR UPDATE SKIP LOCKED`` on the consumer's pending rows, lowest event id
first, leaving out any row whose service has an earlier pending event for the same consumer
(locked by another worker, or waiting for a retry): events of one service are handled in the
order they happened, while other services go on. The handler runs in the transaction that marks
the row processed, so a crash before the commit leaves the event pending, and a crash after it
never repeats it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from medic.events.metrics import EVENTS_FAILED, EVENTS_PROCESSED
from medic.events.models import DomainEvent, EventKind, EventProgress

logger = logging.getLogger(__name__)

# A failed handler is retried after 2, 4, 8, ... seconds, at most this far apart.
MAX_RETRY_DELAY = timedelta(minutes=5)


@dataclass(frozen=True)
class Consumer:
    name: str
    handler: Callable[[DomainEvent], None]
    kinds: frozenset[str]


_consumers: dict[str, Consumer] = {}


def consumer_register(
    name: str, handler: Callable[[DomainEvent], None], *, kinds: set[str]
) -> None:
    """Register ``handler`` for events of ``kinds`` under ``name`` (call from AppConfig.ready).

    Registering the same name again replaces the handler (ready() may run twice in tests).
    Only events recorded while the consumer is registered are delivered to it.
    """
    unknown = set(kinds) - set(EventKind.values)
    if unknown:
        raise ValueError(f"unknown event kinds: {sorted(unknown)}")
    if not name or len(name) > EventProgress._meta.get_field("consumer").max_length:
        raise ValueError("a consumer name is 1 to 64 characters")
    _consumers[name] = Consumer(name=name, handler=handler, kinds=frozenset(kinds))


def consumer_unregister(name: str) -> None:
    """Forget a consumer (its pending rows stay, and are handled if it registers again)."""
    _consumers.pop(name, None)


def consumer_names() -> list[str]:
    return sorted(_consumers)


def consumers_for(kind: str) -> list[Consumer]:
    return [c for c in _consumers.values() if kind in c.kinds]


def _claim(name: str):
    earlier = EventProgress.objects.filter(
        consumer=name,
        processed_at__isnull=True,
        service_id=OuterRef("service_id"),
        event_id__lt=OuterRef("event_id"),
    )
    return (
        EventProgress.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("event")
        .filter(consumer=name, processed_at__isnull=True, next_attempt_at__lte=timezone.now())
        .exclude(Exists(earlier))
        .order_by("event_id")
        .first()
    )


def _retry_delay(attempts: int) -> timedelta:
    return min(timedelta(seconds=2 ** min(attempts, 16)), MAX_RETRY_DELAY)


def consumer_dispatch(name: str, *, limit: int = 1000) -> int:
    """Run consumer ``name`` over its pending events (at most ``limit``); returns how many it
    handled successfully. One transaction per event."""
    consumer = _consumers[name]
    handled = 0
    for _ in range(limit):
        with transaction.atomic():
            progress = _claim(name)
            if progress is None:
                return handled
            event = progress.event
            try:
                with transaction.atomic():
                    consumer.handler(event)
            except Exception as exc:
                logger.exception(
                    "event consumer failed",
                    extra={"consumer": name, "event": event.pk, "kind": event.kind},
                )
                EVENTS_FAILED.labels(consumer=name, kind=event.kind).inc()
                progress.attempts += 1
                progress.next_attempt_at = timezone.now() + _retry_delay(progress.attempts)
                progress.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                progress.save(update_fields=["attempts", "next_attempt_at", "last_error"])
                continue
            progress.processed_at = timezone.now()
            progress.save(update_fields=["processed_at"])
            EVENTS_PROCESSED.labels(consumer=name, kind=event.kind).inc()
            handled += 1
    return handled


def events_dispatch(*, limit: int = 1000) -> int:
    """Run every registered consumer over its pending events."""
    return sum(consumer_dispatch(name, limit=limit) for name in consumer_names())
