"""Alert lifecycle and the deliveries it causes.

Every notification is a ``Delivery`` row written in the same transaction as the alert change that
caused it; the Celery task that sends it is enqueued only after commit. A lost task is therefore
never a lost notification: the sweep re-enqueues deliveries whose next attempt is overdue.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerting.models import (
    Alert,
    AlertReason,
    AlertState,
    Delivery,
    DeliveryStatus,
    NotificationEvent,
    RoutingMode,
)
from alerting.routing import route_for
from medic.enqueue import enqueue_on_commit
from medic.metrics import ALERTS_OPENED, ALERTS_RESOLVED, NOTIFICATIONS

logger = logging.getLogger(__name__)


def dedup_key_for(heartbeat_name: str) -> str:
    return f"medic-{heartbeat_name}"


def renotify_delay(service) -> timedelta:
    minutes = settings.MEDIC_RENOTIFY_MINUTES or service.alert_interval
    return timedelta(minutes=minutes)


# --- Deliveries -------------------------------------------------------------------------------


def deliveries_create(
    *, alert: Alert, event: str, suppressed_reason: str = "", now: datetime | None = None
) -> list[int]:
    """Write one Delivery per routed target; enqueue sending after commit unless suppressed.

    In notify-until-success groups only the first target is sent; the others wait, and the
    next one is released when the previous has definitively failed (alerting.delivery).
    """
    now = now or timezone.now()
    route = route_for(service=alert.service, event=event, at=now, priority=alert.priority)
    to_send: list[int] = []
    for group in route.groups:
        group_id = uuid.uuid4().hex if group.mode == RoutingMode.UNTIL_SUCCESS else ""
        for position, routed in enumerate(group.targets):
            if suppressed_reason:
                status = DeliveryStatus.SUPPRESSED
            elif group_id and position > 0:
                status = DeliveryStatus.WAITING
            else:
                status = DeliveryStatus.PENDING
            delivery = Delivery.objects.create(
                alert=alert,
                event=event,
                channel=routed.channel,
                target=routed.destination[:300],
                notification_target=routed.target,
                rule=group.rule,
                group=group_id,
                position=position,
                status=status,
                suppressed_reason=suppressed_reason[:200],
                created_at=now,
                # Wall-clock time even when the sweep runs on a simulated clock: sending is now.
                next_attempt_at=timezone.now() if status == DeliveryStatus.PENDING else None,
                completed_at=now if suppressed_reason else None,
            )
            if status == DeliveryStatus.SUPPRESSED:
                NOTIFICATIONS.labels(channel=routed.channel, outcome="suppressed").inc()
            elif status == DeliveryStatus.PENDING:
                to_send.append(delivery.pk)
    if to_send:
        from alerting.tasks import deliver

        for delivery_id in to_send:
            enqueue_on_commit(deliver, delivery_id)
    return to_send


def hold_reason(service, now: datetime) -> str:
    """Why notifications for ``service`` are held back right now ('' when they are not)."""
    if not service.active:
        return "service inactive"
    if service.muted and (service.mute_until is None or service.mute_until > now):
        until = f" until {service.mute_until:%Y-%m-%d %H:%M} UTC" if service.mute_until else ""
        return f"muted{until}" + (f": {service.mute_reason}" if service.mute_reason else "")
    return ""


# --- Lifecycle --------------------------------------------------------------------------------


def alert_open(*, service, now: datetime | None = None) -> Alert | None:
    """Open the incident for a service that just went down (caller holds the service row lock).

    Returns None when an alert is already open (the unique constraint is the final word).
    """
    now = now or timezone.now()
    reason = (
        AlertReason.MISSED_HEARTBEAT if service.last_heartbeat_at else AlertReason.NEVER_REPORTED
    )
    if service.last_heartbeat_at:
        summary = (
            f"{service.service_name or service.heartbeat_name}: no heartbeat since "
            f"{service.last_heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    else:
        summary = f"{service.service_name or service.heartbeat_name}: never sent a heartbeat"
    held = hold_reason(service, now)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                service=service,
                dedup_key=dedup_key_for(service.heartbeat_name),
                external_reference_id=dedup_key_for(service.heartbeat_name),
                reason=reason,
                priority=service.priority,
                summary=summary,
                opened_at=now,
                suppressed=bool(held),
                notify_count=0 if held else 1,
                last_notified_at=None if held else now,
                next_notify_at=now + renotify_delay(service),
            )
    except IntegrityError:
        return None
    ALERTS_OPENED.labels(reason=reason).inc()
    deliveries_create(alert=alert, event=NotificationEvent.TRIGGER, suppressed_reason=held, now=now)
    return alert


def alert_renotify(*, alert: Alert, now: datetime | None = None) -> None:
    """Repeat an open alert (caller holds the alert row lock)."""
    now = now or timezone.now()
    service = alert.service
    alert.next_notify_at = now + renotify_delay(service)
    if hold_reason(service, now) or alert.suppressed:
        alert.save(update_fields=["next_notify_at"])
        return
    alert.notify_count += 1
    alert.last_notified_at = now
    alert.save(update_fields=["next_notify_at", "notify_count", "last_notified_at"])
    deliveries_create(alert=alert, event=NotificationEvent.RENOTIFY, now=now)


def alert_resolve(*, alert: Alert, now: datetime | None = None, notify: bool = True) -> None:
    now = now or timezone.now()
    alert.state = AlertState.RESOLVED
    alert.resolved_at = now
    alert.next_notify_at = None
    alert.save(update_fields=["state", "resolved_at", "next_notify_at"])
    ALERTS_RESOLVED.inc()
    # Nobody was told about a suppressed alert, so nobody is told it is over.
    if notify and not alert.suppressed:
        deliveries_create(alert=alert, event=NotificationEvent.RESOLVE, now=now)


def alert_resolve_for_service(*, service_id: int, now: datetime | None = None) -> Alert | None:
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .select_related("service")
            .filter(service_id=service_id, state=AlertState.OPEN)
            .first()
        )
        if alert is not None:
            alert_resolve(alert=alert, now=now)
    return alert


def alert_close_for_service(*, service_id: int) -> None:
    """A retired (inactive) service's incident is closed; channels that heard of it hear it end."""
    alert_resolve_for_service(service_id=service_id)


def alert_release_held(*, service) -> Alert | None:
    """Send the notifications of an open alert that was held back (mute or window ended)."""
    now = timezone.now()
    if hold_reason(service, now):
        return None
    alert = (
        Alert.objects.select_for_update()
        .select_related("service")
        .filter(service=service, state=AlertState.OPEN, suppressed=True)
        .first()
    )
    if alert is None:
        return None
    alert.suppressed = False
    alert.notify_count += 1
    alert.last_notified_at = now
    alert.next_notify_at = now + renotify_delay(service)
    alert.save(update_fields=["suppressed", "notify_count", "last_notified_at", "next_notify_at"])
    deliveries_create(alert=alert, event=NotificationEvent.TRIGGER, now=now)
    return alert
