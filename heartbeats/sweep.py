"""The heartbeats sweep: notice overdue services and hung runs, expire mutes, announce
maintenance windows. Each verdict changes the service and records a domain event in one
transaction; what follows (alerts, notifications, playbooks) is up to the events' consumers.

Safe to run in several workers at once: rows are claimed with ``SELECT ... FOR UPDATE SKIP
LOCKED`` in short batches. A row that raises is logged, counted and pushed a minute forward; it
never stops the pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from heartbeats.deadlines import deadline_next_after
from heartbeats.jobs import run_mark_hung, runs_overdue
from heartbeats.maintenance import announcements
from heartbeats.models import JobRun, Service, ServiceStatus
from heartbeats.services import down_set, service_event, service_unmute
from medic.events.models import EventKind
from medic.events.services import event_record
from medic.healthchecks import sweep_ran
from medic.metrics import DETECTION_DELAY, SWEEP_DURATION, SWEEP_ERRORS, SWEEP_LAG, SWEEP_LAST_RUN

logger = logging.getLogger(__name__)
_PUSH_ON_ERROR = timedelta(minutes=1)


@dataclass
class SweepResult:
    marked_down: list[int] = field(default_factory=list)
    still_down: list[int] = field(default_factory=list)
    unmuted: list[int] = field(default_factory=list)
    hung_runs: list[int] = field(default_factory=list)
    window_notices: list[tuple[str, str]] = field(default_factory=list)
    errors: int = 0


def sweep(*, now: datetime | None = None) -> SweepResult:
    started = time.monotonic()
    now = now or timezone.now()
    result = SweepResult()
    _record_lag(now)
    _mark_overdue(now, result)
    _still_down(now, result)
    _hung_runs(now, result)
    _expire_mutes(now, result)
    _maintenance(now, result)
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


def _claim_loop(rows, handle, stage: str, push, result: SweepResult, done: list[int]) -> None:
    """Claim batches of ``rows()`` and ``handle`` each in a savepoint; push failures forward."""
    batch = settings.MEDIC_SWEEP_BATCH_SIZE
    while True:
        failed: list[int] = []
        with transaction.atomic():
            claimed = list(rows()[:batch])
            for row in claimed:
                try:
                    with transaction.atomic():
                        handle(row)
                    done.append(row.pk)
                except Exception:
                    logger.exception(f"sweep: {stage} failed", extra={"row": row.pk})
                    SWEEP_ERRORS.labels(stage=stage).inc()
                    failed.append(row.pk)
        if failed:
            result.errors += len(failed)
            push(failed)
        if len(claimed) < batch:
            return


def _reason(service: Service) -> str:
    return "missed_heartbeat" if service.last_heartbeat_at else "never_reported"


def _mark_overdue(now: datetime, result: SweepResult) -> None:
    def mark_down(service: Service) -> None:
        missed = service.next_deadline_at
        fields = ["consecutive_failures"]
        service.consecutive_failures += 1
        down_set(service, fields, now=now)
        service.save(update_fields=fields)
        DETECTION_DELAY.observe(max(0.0, (now - missed).total_seconds()))
        service_event(service, EventKind.SERVICE_DOWN, _down_payload(service, missed), at=now)

    _claim_loop(
        lambda: (
            _due_services(now)
            .select_for_update(skip_locked=True)
            .order_by("next_deadline_at", "id")
        ),
        mark_down,
        "mark_down",
        lambda ids: Service.objects.filter(pk__in=ids).update(
            next_deadline_at=now + _PUSH_ON_ERROR
        ),
        result,
        result.marked_down,
    )


def _down_payload(service: Service, missed: datetime) -> dict:
    return {
        "consecutive_failures": service.consecutive_failures,
        "deadline_at": missed.isoformat(),
        "last_heartbeat_at": (
            service.last_heartbeat_at.isoformat() if service.last_heartbeat_at else None
        ),
        "reason": _reason(service),
    }


def _still_down(now: datetime, result: SweepResult) -> None:
    """Each further deadline a down service misses: ``service.still_down``, one more failure."""

    def still_down(service: Service) -> None:
        missed = service.still_down_at
        service.consecutive_failures += 1
        service.still_down_at = deadline_next_after(service=service, missed=missed, now=now)
        service.save(update_fields=["consecutive_failures", "still_down_at"])
        service_event(service, EventKind.SERVICE_STILL_DOWN, _down_payload(service, missed), at=now)

    _claim_loop(
        lambda: (
            Service.objects.filter(active=True, status=ServiceStatus.DOWN, still_down_at__lte=now)
            .select_for_update(skip_locked=True)
            .order_by("still_down_at", "id")
        ),
        still_down,
        "still_down",
        lambda ids: Service.objects.filter(pk__in=ids).update(still_down_at=now + _PUSH_ON_ERROR),
        result,
        result.still_down,
    )


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
    """Windows that opened or closed: one ``maintenance.started``/``.ended`` event each."""
    try:
        with transaction.atomic():
            for window, kind, start, end in announcements(now=now):
                event_record(
                    kind=(
                        EventKind.MAINTENANCE_STARTED
                        if kind == "started"
                        else EventKind.MAINTENANCE_ENDED
                    ),
                    payload={
                        "window_id": window.pk,
                        "window_name": window.name,
                        "starts_at": start.isoformat(),
                        "ends_at": end.isoformat(),
                    },
                    occurred_at=now,
                )
                result.window_notices.append((window.name, kind))
    except Exception:
        logger.exception("sweep: maintenance announcements failed")
        SWEEP_ERRORS.labels(stage="maintenance").inc()
        result.errors += 1


def _expire_mutes(now: datetime, result: SweepResult) -> None:
    expired = list(
        Service.objects.filter(muted=True, mute_until__lte=now).values_list("pk", flat=True)[:500]
    )
    for service_id in expired:
        try:
            service_unmute(service_ref=service_id, actor="system:mute-expired", at=now)
            result.unmuted.append(service_id)
        except Exception:
            logger.exception("sweep: unmute failed", extra={"service": service_id})
            SWEEP_ERRORS.labels(stage="unmute").inc()
            result.errors += 1
