"""Sending one delivery attempt and deciding what happens next (retry, success, failure)."""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from alerting import pacing
from alerting.models import Delivery, DeliveryAttempt, DeliveryStatus, NotificationEvent
from alerting.transports import TRANSPORTS, DeliveryError, Outcome, RateLimited, TransientError
from medic.enqueue import enqueue_on_commit
from medic.metrics import NOTIFICATION_DURATION, NOTIFICATIONS

logger = logging.getLogger(__name__)
# Enqueued by name: this module is what the task calls.
DELIVER_TASK = "alerting.deliver"
# A claimed attempt that has not finished after this long is considered lost and re-sent.
_CLAIM_TIMEOUT = timedelta(seconds=120)


# A reserved slot this close is taken now rather than scheduled.
_SLOT_SLACK = timedelta(milliseconds=50)
# A send that the pace admits within this long waits in place rather than being rescheduled.
_INLINE_WAIT = 2.0
# A resolve waits this long after an unfinished trigger to the same target is next tried.
_ORDER_GAP = timedelta(seconds=2)


def retry_delay(step: int) -> float:
    """Seconds before the retry after the ``step``-th transient failure (1-based): the schedule's
    base delay stretched by a random 0-50 %, so deliveries that failed together (a receiver that
    was down for everyone) do not all come back in the same second."""
    base = settings.MEDIC_DELIVERY_RETRY_DELAYS[step - 1]
    return base * (1 + random.random() / 2)  # jitter, not security


def rate_limited_delay(retry_after: float | None, failures: int) -> float:
    """After a 429: the receiver's ``Retry-After`` plus up to a second of jitter; without one,
    the retry schedule's delay for the next step (its last step once past its end)."""
    if retry_after is not None:
        return retry_after + random.random()
    steps = len(settings.MEDIC_DELIVERY_RETRY_DELAYS)
    return retry_delay(min(failures + 1, steps)) if steps else 30.0


def _earlier_unfinished(delivery: Delivery) -> Delivery | None:
    """A resolve must not overtake the trigger it ends (PagerDuty would open an incident after
    its resolve and keep it open): the unfinished earlier delivery of the same alert to the same
    destination, if any."""
    if delivery.alert_id is None or delivery.event != NotificationEvent.RESOLVE:
        return None
    return (
        Delivery.objects.filter(
            alert_id=delivery.alert_id,
            channel=delivery.channel,
            target=delivery.target,
            notification_target_id=delivery.notification_target_id,
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
            id__lt=delivery.pk,
        )
        .order_by("next_attempt_at")
        .first()
    )


def delivery_attempt(*, delivery_id: int) -> float | None:
    """Make the next attempt of a delivery. Returns the seconds until it should run again (a
    retry, or a sending slot reserved from its destination's pace), or None when the delivery is
    finished (or was already being handled by another worker)."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING])
            .first()
        )
        if delivery is None or (delivery.next_attempt_at and delivery.next_attempt_at > now):
            return None
        earlier = _earlier_unfinished(delivery)
        if earlier is not None:
            delivery.next_attempt_at = max(earlier.next_attempt_at or now, now) + _ORDER_GAP
            delivery.save(update_fields=["next_attempt_at"])
            return (delivery.next_attempt_at - now).total_seconds()
        transport = TRANSPORTS[delivery.channel]
        try:
            pace = transport.pace(delivery)
        except DeliveryError:
            pace = None  # the attempt fails below, with the reason
        if pace is not None and delivery.slot_at is None:
            wait = pacing.reserve(pace.key, per_second=pace.per_second, burst=pace.burst)
            slot = now + timedelta(seconds=wait)
            if slot - now > _SLOT_SLACK:
                # Not now: come back for the slot, which stays reserved for this delivery.
                delivery.slot_at = delivery.next_attempt_at = slot
                delivery.save(update_fields=["slot_at", "next_attempt_at"])
                return wait
        # Claim: a concurrent duplicate of this task finds next_attempt_at in the future.
        delivery.attempts += 1
        delivery.slot_at = None
        delivery.next_attempt_at = now + _CLAIM_TIMEOUT
        delivery.save(update_fields=["attempts", "slot_at", "next_attempt_at"])
    if pace is not None:
        wait = _admit(pace)
        if wait:
            # Sending now would break the destination's pace by more than we wait in place:
            # give the claim back and come back then.
            later = timezone.now() + timedelta(seconds=wait)
            Delivery.objects.filter(pk=delivery_id).update(
                attempts=F("attempts") - 1, slot_at=later, next_attempt_at=later
            )
            return wait
    delivery = Delivery.objects.select_related("alert__service", "notification_target").get(
        pk=delivery_id
    )
    started = time.monotonic()
    error = ""
    retryable = False
    rate_limited = False
    try:
        outcome = transport.send(delivery)
    except DeliveryError as exc:
        outcome = exc.outcome
        error = str(exc)
        retryable = isinstance(exc, TransientError)
        rate_limited = isinstance(exc, RateLimited)
    except Exception as exc:  # a bug in a transport must not lose the delivery record
        logger.exception("delivery transport crashed", extra={"delivery_id": delivery_id})
        outcome = Outcome(None, "")
        error = f"internal error: {exc.__class__.__name__}"
        retryable = True
    elapsed = time.monotonic() - started
    NOTIFICATION_DURATION.labels(channel=delivery.channel).observe(elapsed)
    if rate_limited:
        _hold_destination(transport, delivery, outcome)
    return _record(delivery, outcome, error, retryable, rate_limited, elapsed, now)


def _admit(pace) -> float:
    """Wait in place (at most _INLINE_WAIT) until the destination's pace admits a send; return 0
    when admitted, else the seconds still to wait."""
    waited = 0.0
    while True:
        wait = pacing.admit(pace.key, per_second=pace.per_second, burst=pace.burst)
        if wait <= 0:
            return 0.0
        if waited + wait > _INLINE_WAIT:
            return wait
        time.sleep(wait)
        waited += wait


def _hold_destination(transport, delivery: Delivery, outcome: Outcome) -> None:
    """A 429 is about the destination, not this delivery: every delivery to it waits."""
    if not outcome.retry_after:
        return
    try:
        pace = transport.pace(delivery)
    except DeliveryError:
        return
    if pace is not None:
        pacing.hold(pace.key, outcome.retry_after, per_second=pace.per_second, burst=pace.burst)


def _record(
    delivery: Delivery,
    outcome: Outcome,
    error: str,
    retryable: bool,
    rate_limited: bool,
    elapsed: float,
    started,
) -> float | None:
    delays = settings.MEDIC_DELIVERY_RETRY_DELAYS
    now = timezone.now()
    retry_in: float | None = None
    give_up_at = delivery.created_at + timedelta(seconds=settings.MEDIC_DELIVERY_GIVE_UP_SECONDS)
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
        elif rate_limited and now < give_up_at:
            # Rate limits say "later", not "broken": they do not use a step of the schedule.
            retry_in = rate_limited_delay(outcome.retry_after, delivery.failures)
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = now + timedelta(seconds=retry_in)
            outcome_label = "retry"
        elif retryable and not rate_limited and delivery.failures < len(delays):
            delivery.failures += 1
            retry_in = retry_delay(delivery.failures)
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = now + timedelta(seconds=retry_in)
            outcome_label = "retry"
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.completed_at = now
            delivery.next_attempt_at = None
            outcome_label = "failed"
        delivery.save(
            update_fields=[
                "status",
                "response_code",
                "error",
                "completed_at",
                "next_attempt_at",
                "failures",
            ]
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
