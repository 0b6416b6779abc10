"""Alert lifecycle and the deliveries it causes.

Every notification is a ``Delivery`` row written in the same transaction as the alert change that
caused it; the Celery task that sends it is enqueued only after commit. A lost task is therefore
never a lost notification: the sweep re-enqueues deliveries whose next attempt is overdue.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerting.delivery import DELIVER_TASK
from alerting.models import (
    Alert,
    AlertReason,
    AlertState,
    Channel,
    Delivery,
    DeliveryStatus,
    NotificationEvent,
    RoutingMode,
)
from alerting.routing import route_for, route_for_alert
from heartbeats.maintenance import covered_services, window_covering
from medic.enqueue import enqueue_on_commit
from medic.events.models import EventKind
from medic.events.services import event_record
from medic.limits import MAX_ALERT_INTERVAL_MINUTES, bounded
from medic.metrics import ALERTS_OPENED, ALERTS_RESOLVED, NOTIFICATIONS

logger = logging.getLogger(__name__)


def dedup_key_for(heartbeat_name: str, opened_at: datetime | None = None) -> str:
    """The incident key (PagerDuty's dedup_key, at most 255 characters). One per alert: with one
    key per service the next outage would be folded into the previous, maybe acknowledged,
    incident. Without ``opened_at`` it is v1's per-service key (imported alerts keep it)."""
    if opened_at is None:
        return f"medic-{heartbeat_name}"
    stamp = opened_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"medic-{heartbeat_name[:226]}-{stamp}"


def renotify_delay(service) -> timedelta:
    minutes = settings.MEDIC_RENOTIFY_MINUTES or service.alert_interval
    return timedelta(minutes=bounded(minutes, MAX_ALERT_INTERVAL_MINUTES))


# --- Deliveries -------------------------------------------------------------------------------


def deliveries_create(
    *,
    alert: Alert,
    event: str,
    suppressed_reason: str = "",
    now: datetime | None = None,
    channels: frozenset[str] | None = None,
) -> list[int]:
    """Write one Delivery per routed target (only ``channels`` when given); enqueue sending
    after commit unless suppressed.

    In notify-until-success groups only the first target is sent; the others wait, and the
    next one is released when the previous has definitively failed (alerting.delivery).
    """
    now = now or timezone.now()
    route = route_for_alert(alert=alert, event=event, at=now)
    to_send: list[int] = []
    for group in route.groups:
        group_id = uuid.uuid4().hex if group.mode == RoutingMode.UNTIL_SUCCESS else ""
        for position, routed in enumerate(group.targets):
            if channels is not None and routed.channel not in channels:
                continue
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
    for delivery_id in to_send:
        enqueue_on_commit(DELIVER_TASK, delivery_id)
    return to_send


def hold_reason(service, now: datetime) -> str:
    """Why notifications for ``service`` are held back right now ('' when they are not)."""
    if not service.active:
        return "service inactive"
    if service.muted and (service.mute_until is None or service.mute_until > now):
        until = f" until {service.mute_until:%Y-%m-%d %H:%M} UTC" if service.mute_until else ""
        return f"muted{until}" + (f": {service.mute_reason}" if service.mute_reason else "")
    covering = window_covering(service=service, at=now)
    if covering is not None:
        window, end = covering
        return f"maintenance window '{window.name}' until {end:%Y-%m-%d %H:%M} UTC"
    return ""


# --- Lifecycle --------------------------------------------------------------------------------


_SUMMARIES = {
    "job_failed": "{name}: the job failed (exit code {exit_code})",
    "job_hung": "{name}: a run has been going for {running} (max {max_duration})",
    "job_not_completed": "{name}: a run started at {started} never completed",
    "job_slow": "{name}: a run took {duration}, over {limit} ({factor} x its p95)",
}


def _seconds(ms: float | None) -> str:
    if ms is None:
        return "an unknown time"
    seconds = int(ms / 1000)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else (f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s")
    )


def _summary(service, reason: str, details: dict) -> str:
    name = service.service_name or service.heartbeat_name
    if reason == AlertReason.MISSED_HEARTBEAT:
        return f"{name}: no heartbeat since {service.last_heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
    if reason == AlertReason.NEVER_REPORTED:
        return f"{name}: never sent a heartbeat"
    return _SUMMARIES[reason].format(
        name=name,
        exit_code=details.get("exit_code", "unknown"),
        running=_seconds((details.get("running_for_seconds") or 0) * 1000),
        max_duration=_seconds((service.max_duration_seconds or 0) * 1000),
        started=details.get("started_at") or "an unknown time",
        duration=_seconds(details.get("duration_ms")),
        limit=_seconds(details.get("limit_ms")),
        factor=service.slow_run_factor,
    )


def alert_open(
    *,
    service,
    now: datetime | None = None,
    reason: str | None = None,
    details: dict | None = None,
    source_event_id: int | None = None,
) -> Alert | None:
    """Open the incident for a service (caller holds the service row lock) and record
    ``alert.opened``.

    Returns None when an alert is already open (the unique constraint is the final word).
    """
    now = now or timezone.now()
    if reason is None:
        reason = (
            AlertReason.MISSED_HEARTBEAT
            if service.last_heartbeat_at
            else AlertReason.NEVER_REPORTED
        )
    details = details or {}
    held = hold_reason(service, now)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                service=service,
                dedup_key=dedup_key_for(service.heartbeat_name, now),
                external_reference_id=dedup_key_for(service.heartbeat_name, now),
                reason=reason,
                priority=service.priority,
                summary=_summary(service, reason, details)[:500],
                details=details,
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
    carried = {k: details[k] for k in ("exit_code", "output_tail", "run_id") if k in details}
    event_record(
        kind=EventKind.ALERT_OPENED,
        service_id=service.pk,
        service_name=service.heartbeat_name,
        occurred_at=now,
        payload={
            "alert_id": alert.pk,
            "reason": reason,
            "priority": alert.priority,
            "team": service.team or None,
            "source_event_id": source_event_id,
            "consecutive_failures": service.consecutive_failures,
            "suppressed": alert.suppressed,
            **carried,
        },
    )
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


def alert_resolve(
    *, alert: Alert, now: datetime | None = None, notify: bool = True, how: str = "recovered"
) -> None:
    """Resolve an open alert and record ``alert.resolved`` (``how``: recovered, manual,
    deactivated, run_within_bounds, reconciled)."""
    now = now or timezone.now()
    alert.state = AlertState.RESOLVED
    alert.resolved_at = now
    alert.next_notify_at = None
    alert.save(update_fields=["state", "resolved_at", "next_notify_at"])
    ALERTS_RESOLVED.inc()
    event_record(
        kind=EventKind.ALERT_RESOLVED,
        service_id=alert.service_id,
        service_name=alert.service.heartbeat_name,
        occurred_at=now,
        payload={"alert_id": alert.pk, "how": how, "reason": alert.reason},
    )
    # Nobody was told about a suppressed alert, so nobody is told it is over.
    if notify and not alert.suppressed:
        deliveries_create(alert=alert, event=NotificationEvent.RESOLVE, now=now)


def alert_resolve_for_service(
    *, service_id: int, now: datetime | None = None, how: str = "recovered"
) -> Alert | None:
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .select_related("service")
            .filter(service_id=service_id, state=AlertState.OPEN)
            .first()
        )
        if alert is not None:
            alert_resolve(alert=alert, now=now, how=how)
    return alert


def alert_close_for_service(*, service_id: int) -> None:
    """A retired (inactive) service's incident is closed; channels that heard of it hear it end."""
    alert_resolve_for_service(service_id=service_id, how="deactivated")


def alert_release_held(*, service, now: datetime | None = None) -> Alert | None:
    """Send the notifications of an open alert that was held back (mute or window ended)."""
    now = now or timezone.now()
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


def alert_notice(
    *,
    service,
    dedup_key: str,
    reason: str,
    summary: str,
    dedup_window: timedelta,
    now: datetime | None = None,
    details: dict | None = None,
) -> Alert:
    """Notify an event that is not an incident (an agent refused a script, ...) through the
    normal routing of ``service``; returns the notice.

    Nothing will end such an event, so the notice is written already resolved: alerting allows
    one *open* alert per service (an open notice would hide the service going down), and the
    reconcile pass resolves open alerts of services that are up, which would send a "recovered"
    message seconds later. Its trigger deliveries go out as for any alert (respecting mutes and
    windows); PagerDuty keeps the incident until someone resolves it there. A notice with the
    same ``dedup_key`` within ``dedup_window`` is returned instead of paging again.
    """
    now = now or timezone.now()
    recent = (
        Alert.objects.filter(
            service=service, dedup_key=dedup_key, opened_at__gte=now - dedup_window
        )
        .order_by("-opened_at")
        .first()
    )
    if recent is not None:
        return recent
    held = hold_reason(service, now)
    alert = Alert.objects.create(
        service=service,
        dedup_key=dedup_key[:300],
        external_reference_id=dedup_key[:300],
        state=AlertState.RESOLVED,
        reason=reason,
        priority=service.priority,
        summary=summary[:500],
        details=details or {},
        opened_at=now,
        resolved_at=now,
        suppressed=bool(held),
        notify_count=0 if held else 1,
        last_notified_at=None if held else now,
        next_notify_at=None,
    )
    deliveries_create(alert=alert, event=NotificationEvent.TRIGGER, suppressed_reason=held, now=now)
    return alert


def window_notices_create(*, window, kind: str, start: datetime, end: datetime) -> list[int]:
    """Tell the routes of the teams a maintenance window covers that it started or ended.

    Each covered team's route is resolved as for an alert of one of its services; Slack and
    webhook targets get the notice (PagerDuty only hears about incidents). Destinations reached
    through several teams are told once.
    """

    event = (
        NotificationEvent.MAINTENANCE_STARTED
        if kind == "started"
        else NotificationEvent.MAINTENANCE_ENDED
    )
    now = timezone.now()
    representatives = {}
    for service in covered_services(window).order_by("team", "heartbeat_name"):
        representatives.setdefault(service.team, service)
    seen: set[tuple[str, str]] = set()
    ids: list[int] = []
    occurrence = {"starts_at": start.isoformat(), "ends_at": end.isoformat()}
    for service in representatives.values():
        route = route_for(service=service, event=event, at=now)
        for group in route.groups:
            for routed in group.targets:
                if routed.channel == "pagerduty" or (routed.channel, routed.destination) in seen:
                    continue
                seen.add((routed.channel, routed.destination))
                delivery = Delivery.objects.create(
                    window=window,
                    window_occurrence=occurrence,
                    event=event,
                    channel=routed.channel,
                    target=routed.destination[:300],
                    notification_target=routed.target,
                    rule=group.rule,
                    next_attempt_at=now,
                )
                ids.append(delivery.pk)
    for delivery_id in ids:
        enqueue_on_commit(DELIVER_TASK, delivery_id)
    return ids


# --- Escalations and notices from remediation -------------------------------------------------


def alert_approval_set(*, alert_id: int, approval: dict, notify: bool) -> Alert | None:
    """A remediation waits on (or got) a human decision for this alert's service: ``approval``
    (state, playbook, why, deadline, how to decide) goes into the alert's details, which
    PagerDuty carries in ``custom_details``. With ``notify``, the alert's PagerDuty routes get
    the update now (same dedup key: the incident is updated, not duplicated). None when the
    alert is no longer open."""
    now = timezone.now()
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .select_related("service")
            .filter(pk=alert_id, state=AlertState.OPEN)
            .first()
        )
        if alert is None:
            return None
        alert.details = {**(alert.details or {}), "approval": approval}
        alert.save(update_fields=["details"])
        if notify:
            deliveries_create(
                alert=alert,
                # A trigger with the same dedup key: PagerDuty updates the open incident.
                event=NotificationEvent.TRIGGER,
                suppressed_reason=hold_reason(alert.service, now),
                now=now,
                channels=frozenset({Channel.PAGERDUTY}),
            )
    return alert


def alert_escalate(
    *, alert_id: int, remediation: dict, now: datetime | None = None
) -> Alert | None:
    """A remediation gave up: tell the alert's routes now, with what was tried.

    ``remediation`` (execution, playbook, story) is attached to the alert's details, where every
    transport shows it. One ``escalate`` delivery per destination the trigger reached,
    PagerDuty included (unlike a re-notification): PagerDuty gets a trigger for the open
    incident's dedup key with the story and a raised severity. Returns None when the alert is no
    longer open (nobody to tell).
    """
    now = now or timezone.now()
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .select_related("service")
            .filter(pk=alert_id, state=AlertState.OPEN)
            .first()
        )
        if alert is None:
            return None
        alert.details = {**(alert.details or {}), "remediation": remediation}
        alert.notify_count += 1
        alert.last_notified_at = now
        alert.next_notify_at = now + renotify_delay(alert.service)
        alert.save(update_fields=["details", "notify_count", "last_notified_at", "next_notify_at"])
        held = hold_reason(alert.service, now)
        deliveries_create(
            alert=alert, event=NotificationEvent.ESCALATE, suppressed_reason=held, now=now
        )
    return alert
