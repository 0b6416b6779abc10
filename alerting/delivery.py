"""Sending one delivery attempt and deciding what happens next (retry, success, failure)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerting.models import Delivery, DeliveryAttempt, DeliveryStatus
from alerting.transports import TRANSPORTS, DeliveryError, Outcome, TransientError
from medic.enqueue import enqueue_on_commit
from medic.metrics import NOTIFICATION_DURATION, NOTIFICATIONS

logger = logging.getLogger(__name__)
# Enqueued by name: this module is what the task calls.
DELIVER_TASK = "alerting.deliver"
# A claimed attempt that has not finished after this long is considered lost and re-sent.
_CLAIM_TIMEOUT = timedelta(seconds=120)


def delivery_attempt(*, delivery_id: int) -> float | None:
    """Make the next attempt of a delivery. Returns the retry delay in seconds, or None when the
    delivery is finished (or was already being handled by another worker)."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING])
            .first()
        )
        if delivery is None or (delivery.next_attempt_at and delivery.next_attempt_at > now):
            return None
        # Claim: a concurrent duplicate of this task finds next_attempt_at in the future.
        delivery.attempts += 1
        delivery.next_attempt_at = now + _CLAIM_TIMEOUT
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    delivery = Delivery.objects.select_related("alert__service", "notification_target").get(
        pk=delivery_id
    )
    transport = TRANSPORTS[delivery.channel]
    started = time.monotonic()
    error = ""
    retryable = False
    try:
        outcome = transport.send(delivery)
    except DeliveryError as exc:
        outcome = exc.outcome
        error = str(exc)
        retryable = isinstance(exc, TransientError)
    except Exception as exc:  # a bug in a transport must not lose the delivery record
        logger.exception("delivery transport crashed", extra={"delivery_id": delivery_id})
        outcome = Outcome(None, "")
        error = f"internal error: {exc.__class__.__name__}"
        retryable = True
    elapsed = time.monotonic() - started
    NOTIFICATION_DURATION.labels(channel=delivery.channel).observe(elapsed)
    return _record(delivery, outcome, error, retryable, elapsed, now)


def _record(
    delivery: Delivery, outcome: Outcome, error: str, retryable: bool, elapsed: float, started
) -> float | None:
    delays = settings.MEDIC_DELIVERY_RETRY_DELAYS
    now = timezone.now()
    retry_in: float | None = None
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started,
            duration_ms=int(elapsed * 1000),
            status_code=outcome.status_code,
            response_body=outcome.body[:2000],
            error=error[:1000],
        )
        delivery.response_code = outcome.status_code
        delivery.error = error[:1000]
        if not error:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.completed_at = now
            delivery.next_attempt_at = None
            outcome_label = "success"
        elif retryable and delivery.attempts <= len(delays):
            retry_in = float(delays[delivery.attempts - 1])
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = now + timedelta(seconds=retry_in)
            outcome_label = "retry"
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.completed_at = now
            delivery.next_attempt_at = None
            outcome_label = "failed"
        delivery.save(
            update_fields=["status", "response_code", "error", "completed_at", "next_attempt_at"]
        )
        if delivery.group:
            _advance_group(delivery)
    NOTIFICATIONS.labels(channel=delivery.channel, outcome=outcome_label).inc()
    log = logger.warning if error else logger.info
    log(
        "notification %s",
        outcome_label,
        extra={
            "delivery_id": delivery.pk,
            "alert_id": delivery.alert_id,
            "channel": delivery.channel,
            "attempt": delivery.attempts,
            "status_code": outcome.status_code,
            "error": error,
        },
    )
    return retry_in


def _advance_group(delivery: Delivery) -> None:
    """notify-until-success: after a success the rest of the group is skipped; after a final
    failure the next waiting target is released."""
    waiting = Delivery.objects.filter(
        group=delivery.group, status=DeliveryStatus.WAITING, position__gt=delivery.position
    ).order_by("position")
    if delivery.status == DeliveryStatus.SUCCEEDED:
        waiting.update(status=DeliveryStatus.SKIPPED, completed_at=timezone.now())
    elif delivery.status == DeliveryStatus.FAILED:
        following = waiting.first()
        if following is not None:
            following.status = DeliveryStatus.PENDING
            following.next_attempt_at = timezone.now()
            following.save(update_fields=["status", "next_attempt_at"])
            enqueue_on_commit(DELIVER_TASK, following.pk)


def deliveries_overdue(*, now=None) -> list[int]:
    """Deliveries whose next attempt should have happened a while ago (their task was lost)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.MEDIC_DELIVERY_RECOVERY_SECONDS)
    return list(
        Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
            next_attempt_at__lt=now - grace,
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:500]
    )
