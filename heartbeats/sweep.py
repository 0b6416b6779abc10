"""The sweep: notice overdue services, repeat open alerts, expire mutes, resolve recoveries.

Safe to run in several workers at once: rows are claimed with ``SELECT ... FOR UPDATE SKIP
LOCKED`` in short batches, and a partial unique index allows one open alert per service. A row
that raises is logged, counted and pushed a minute forward; it never stops the pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerting.delivery import deliveries_overdue
from alerting.models import Alert, AlertReason, AlertState
from alerting.services import (
    alert_open,
    alert_release_held,
    alert_renotify,
    alert_resolve_for_service,
    window_notices_create,
)
from heartbeats.jobs import run_mark_hung, runs_overdue
from heartbeats.maintenance import announcements
from heartbeats.models import JobRun, Service, ServiceStateChange, ServiceStatus
from heartbeats.services import service_unmute
from medic.healthchecks import sweep_ran
from medic.metrics import DETECTION_DELAY, SWEEP_DURATION, SWEEP_ERRORS, SWEEP_LAG, SWEEP_LAST_RUN

logger = logging.getLogger(__name__)
_PUSH_ON_ERROR = timedelta(minutes=1)


@dataclass
class SweepResult:
    marked_down: list[int] = field(default_factory=list)
    renotified: list[int] = field(default_factory=list)
    unmuted: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    hung_runs: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    window_notices: list[tuple[str, str]] = field(default_factory=list)
    requeued_deliveries: list[int] = field(default_factory=list)
    errors: int = 0


def sweep(*, now: datetime | None = None) -> SweepResult:
    started = time.monotonic()
    now = now or timezone.now()
    result = SweepResult()
    _record_lag(now)
    _mark_overdue(now, result)
    _hung_runs(now, result)
    _renotify(now, result)
    _expire_mutes(now, result)
    _maintenance(now, result)
    process_state_changes(result=result)
    _reconcile(now, result)
    # Deliveries run on the wall clock even when the sweep is driven by a simulated one.
    result.requeued_deliveries = deliveries_overdue()
    if result.requeued_deliveries:
        from alerting.tasks import deliver

        for delivery_id in result.requeued_deliveries:
            deliver.delay(delivery_id)
    SWEEP_DURATION.observe(time.monotonic() - started)
    SWEEP_LAST_RUN.set(time.time())
    sweep_ran()
    return result


def _due_services(now: datetime):
    return Service.objects.filter(
        active=True, status__in=[ServiceStatus.NEW, ServiceStatus.UP], next_deadline_at__lte=now
    )


def _record_lag(now: datetime) -> None:
    oldest = (
        _due_services(now)
        .order_by("next_deadline_at")
        .values_list("next_deadline_at", flat=True)
        .first()
    )
    SWEEP_LAG.set((now - oldest).total_seconds() if oldest else 0.0)


def _mark_overdue(now: datetime, result: SweepResult) -> None:
    batch = settings.MEDIC_SWEEP_BATCH_SIZE
    while True:
        failed: list[int] = []
        with transaction.atomic():
            services = list(
                _due_services(now)
                .select_for_update(skip_locked=True)
                .order_by("next_deadline_at", "id")[:batch]
            )
            for service in services:
                try:
                    with transaction.atomic():
                        _mark_down(service, now)
                    result.marked_down.append(service.pk)
                except Exception:
                    logger.exception("sweep: marking down failed", extra={"service": service.pk})
                    SWEEP_ERRORS.labels(stage="mark_down").inc()
                    failed.append(service.pk)
        if failed:
            result.errors += len(failed)
            Service.objects.filter(pk__in=failed).update(next_deadline_at=now + _PUSH_ON_ERROR)
        if len(services) < batch:
            return


def _mark_down(service: Service, now: datetime) -> None:
    ServiceStateChange.objects.create(
        service=service, from_status=service.status, to_status=ServiceStatus.DOWN, created_at=now
    )
    service.status = ServiceStatus.DOWN
    service.save(update_fields=["status"])
    DETECTION_DELAY.observe(max(0.0, (now - service.next_deadline_at).total_seconds()))
    alert_open(service=service, now=now)


def _renotify(now: datetime, result: SweepResult) -> None:
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


def _hung_runs(now: datetime, result: SweepResult) -> None:
    """Running job runs past their deadline: hung (max_duration) or never completed."""
    while True:
        with transaction.atomic():
            runs = runs_overdue(now=now, batch=settings.MEDIC_SWEEP_BATCH_SIZE)
            for run in runs:
                try:
                    with transaction.atomic():
                        run_mark_hung(run=run, now=now)
                    result.hung_runs.append(run.pk)
                except Exception:
                    logger.exception("sweep: hung-run check failed", extra={"run": run.pk})
                    SWEEP_ERRORS.labels(stage="hung_run").inc()
                    result.errors += 1
                    JobRun.objects.filter(pk=run.pk).update(deadline_at=now + _PUSH_ON_ERROR)
        if len(runs) < settings.MEDIC_SWEEP_BATCH_SIZE:
            return


def _maintenance(now: datetime, result: SweepResult) -> None:
    """Announce windows that opened or closed, then send alerts a closed window held back."""
    try:
        with transaction.atomic():
            for window, kind, start, end in announcements(now=now):
                window_notices_create(window=window, kind=kind, start=start, end=end)
                result.window_notices.append((window.name, kind))
    except Exception:
        logger.exception("sweep: maintenance announcements failed")
        SWEEP_ERRORS.labels(stage="maintenance").inc()
        result.errors += 1
    held = Alert.objects.filter(state=AlertState.OPEN, suppressed=True).values_list(
        "service_id", flat=True
    )
    for service_id in list(held[:500]):
        try:
            with transaction.atomic():
                service = Service.objects.select_for_update().get(pk=service_id)
                if service.muted:
                    continue  # a mute is lifted by _expire_mutes (it also clears the fields)
                alert = alert_release_held(service=service, now=now)
                if alert is not None:
                    result.released.append(alert.pk)
        except Exception:
            logger.exception("sweep: releasing a held alert failed", extra={"service": service_id})
            SWEEP_ERRORS.labels(stage="release").inc()
            result.errors += 1


def _expire_mutes(now: datetime, result: SweepResult) -> None:
    expired = list(
        Service.objects.filter(muted=True, mute_until__lte=now).values_list("pk", flat=True)[:500]
    )
    for service_id in expired:
        try:
            service_unmute(service_ref=service_id, actor="system:mute-expired")
            result.unmuted.append(service_id)
        except Exception:
            logger.exception("sweep: unmute failed", extra={"service": service_id})
            SWEEP_ERRORS.labels(stage="unmute").inc()
            result.errors += 1


def process_state_changes(*, result: SweepResult | None = None, batch: int = 200) -> int:
    """Consume the outbox: a service that came back up gets its alert resolved (and recovery
    notifications). Rows are claimed with SKIP LOCKED, so the eager task and the sweep can run
    this at the same moment without resolving twice."""
    processed = 0
    while True:
        with transaction.atomic():
            changes = list(
                ServiceStateChange.objects.select_for_update(skip_locked=True)
                .filter(processed_at__isnull=True)
                .order_by("created_at", "id")[:batch]
            )
            for change in changes:
                try:
                    with transaction.atomic():
                        if (
                            change.to_status == ServiceStatus.UP
                            and change.from_status == ServiceStatus.DOWN
                        ):
                            alert = alert_resolve_for_service(service_id=change.service_id)
                            if alert is not None and result is not None:
                                result.resolved.append(alert.pk)
                except Exception:
                    logger.exception("sweep: state change failed", extra={"change": change.pk})
                    SWEEP_ERRORS.labels(stage="state_change").inc()
                    if result is not None:
                        result.errors += 1
                # Marked processed even on failure: _reconcile resolves what this missed.
                change.processed_at = timezone.now()
                change.save(update_fields=["processed_at"])
                processed += 1
        if len(changes) < batch:
            return processed


def _reconcile(now: datetime, result: SweepResult) -> None:
    """Safety net for the outbox: an open alert whose service is no longer down is resolved."""
    stale = list(
        Alert.objects.filter(state=AlertState.OPEN)
        .exclude(service__status=ServiceStatus.DOWN)
        .exclude(reason=AlertReason.JOB_SLOW)  # informational: the service stays up
        .values_list("service_id", flat=True)[:500]
    )
    for service_id in stale:
        try:
            alert = alert_resolve_for_service(service_id=service_id, now=now)
            if alert is not None:
                result.resolved.append(alert.pk)
        except Exception:
            logger.exception("sweep: reconcile failed", extra={"service": service_id})
            SWEEP_ERRORS.labels(stage="reconcile").inc()
            result.errors += 1
