"""Alerting's periodic pass: repeat open alerts, send what a lifted hold kept back, resolve what
the events missed, re-enqueue overdue deliveries.

Safe to run in several workers at once (``SELECT ... FOR UPDATE SKIP LOCKED``); a row that
raises is logged, counted and pushed a minute forward, never retried in a tight loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import signature
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerting.delivery import DELIVER_TASK, deliveries_overdue
from alerting.models import Alert, AlertReason, AlertState
from alerting.services import alert_release_held, alert_renotify, alert_resolve_for_service
from heartbeats.models import ServiceStatus
from heartbeats.selectors import service_locked
from medic.metrics import SWEEP_ERRORS

logger = logging.getLogger(__name__)
_PUSH_ON_ERROR = timedelta(minutes=1)


@dataclass
class AlertSweepResult:
    renotified: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    requeued_deliveries: list[int] = field(default_factory=list)
    errors: int = 0


def alerting_sweep(*, now: datetime | None = None) -> AlertSweepResult:
    now = now or timezone.now()
    result = AlertSweepResult()
    _renotify(now, result)
    _release_held(now, result)
    _reconcile(now, result)
    # Deliveries run on the wall clock even when the sweep is driven by a simulated one.
    result.requeued_deliveries = deliveries_overdue()
    for delivery_id in result.requeued_deliveries:
        signature(DELIVER_TASK, args=(delivery_id,)).delay()
    return result


def _renotify(now: datetime, result: AlertSweepResult) -> None:
    batch = settings.MEDIC_SWEEP_BATCH_SIZE
    while True:
        failed: list[int] = []
        with transaction.atomic():
            alerts = list(
                Alert.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("service")
                .filter(state=AlertState.OPEN, next_notify_at__lte=now)
                .order_by("next_notify_at", "id")[:batch]
            )
            for alert in alerts:
                try:
                    with transaction.atomic():
                        alert_renotify(alert=alert, now=now)
                    result.renotified.append(alert.pk)
                except Exception:
                    logger.exception("sweep: re-notify failed", extra={"alert": alert.pk})
                    SWEEP_ERRORS.labels(stage="renotify").inc()
                    failed.append(alert.pk)
        if failed:
            result.errors += len(failed)
            Alert.objects.filter(pk__in=failed).update(next_notify_at=now + _PUSH_ON_ERROR)
        if len(alerts) < batch:
            return


def _release_held(now: datetime, result: AlertSweepResult) -> None:
    """Safety net for maintenance.ended and service.unmuted: an alert still held back although
    nothing holds it any more goes out."""
    held = Alert.objects.filter(state=AlertState.OPEN, suppressed=True).values_list(
        "service_id", flat=True
    )
    for service_id in list(held[:500]):
        try:
            with transaction.atomic():
                service = service_locked(service_id)
                if service is None or service.muted:
                    continue  # a mute is lifted by the heartbeats sweep (service.unmuted)
                alert = alert_release_held(service=service, now=now)
                if alert is not None:
                    result.released.append(alert.pk)
        except Exception:
            logger.exception("sweep: releasing a held alert failed", extra={"service": service_id})
            SWEEP_ERRORS.labels(stage="release").inc()
            result.errors += 1


def _reconcile(now: datetime, result: AlertSweepResult) -> None:
    """Safety net for service.recovered: an open alert whose service is no longer down is
    resolved."""
    stale = list(
        Alert.objects.filter(state=AlertState.OPEN)
        .exclude(service__status=ServiceStatus.DOWN)
        .exclude(reason=AlertReason.JOB_SLOW)  # informational: the service stays up
        .values_list("service_id", flat=True)[:500]
    )
    for service_id in stale:
        try:
            alert = alert_resolve_for_service(service_id=service_id, now=now, how="reconciled")
            if alert is not None:
                result.resolved.append(alert.pk)
        except Exception:
            logger.exception("sweep: reconcile failed", extra={"service": service_id})
            SWEEP_ERRORS.labels(stage="reconcile").inc()
            result.errors += 1
