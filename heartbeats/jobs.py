"""Job runs: start/complete/fail signals, correlation, failure and slowness events.

A run is identified by ``run_id`` (generated at start when the job sends none). A complete or
fail without a run id closes the latest running run. Signals may arrive late, twice or out of
order: a duplicate end changes nothing, an end before its start creates the run and the late
start fills in ``started_at``.

Only ends move the schedule: ``complete`` and ``fail`` count as the beat the schedule expects
(a failed run did run; its failure is alerted on its own), ``start`` does not — a job that
starts and never completes is late.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from heartbeats.models import JobRun, RunStatus, Service, ServiceStatus
from heartbeats.selectors import duration_stats
from heartbeats.services import beat_apply, down_set, service_event, service_get_active
from medic.errors import InvalidInput
from medic.events.models import EventKind
from medic.limits import MAX_RUN_SECONDS, MESSAGE_MAX_LENGTH, bounded
from medic.metrics import JOB_DURATION, JOB_RUNS

OUTPUT_TAIL_BYTES = 10 * 1024
RUNS_KEPT = 100
MAX_RUN_DURATION_MS = 366 * 86400 * 1000  # a reported duration of more than a year is an error
MAX_EXIT_CODE = 255


@dataclass
class SignalResult:
    run: JobRun
    service: Service
    duplicate: bool = False


def _tail(text: str) -> str:
    data = (text or "").encode("utf-8", errors="replace")
    if len(data) <= OUTPUT_TAIL_BYTES:
        return text or ""
    return data[-OUTPUT_TAIL_BYTES:].decode("utf-8", errors="ignore")


def _clean_run_id(run_id: str | None) -> str | None:
    if run_id is None or run_id == "":
        return None
    run_id = str(run_id).strip()
    if not run_id or len(run_id) > 64 or any(c.isspace() for c in run_id):
        raise InvalidInput(fields={"run_id": ["1 to 64 characters, no spaces."]})
    return run_id


def job_start(
    *, service_ref: str | int, run_id: str | None = None, at: datetime | None = None
) -> SignalResult:
    now = at or timezone.now()
    run_id = _clean_run_id(run_id)
    with transaction.atomic():
        service = service_get_active(service_ref)
        run = JobRun.objects.filter(service=service, run_id=run_id).first() if run_id else None
        if run is not None:
            if run.started_at is None:  # the end arrived first
                run.started_at = now
                if run.duration_ms is None and run.ended_at is not None:
                    run.duration_ms = max(0, int((run.ended_at - now).total_seconds() * 1000))
                run.save(update_fields=["started_at", "duration_ms"])
            return SignalResult(run=run, service=service, duplicate=True)
        if service.max_duration_seconds:
            deadline = now + timedelta(
                seconds=bounded(service.max_duration_seconds, MAX_RUN_SECONDS)
            )
        elif service.next_deadline_at and service.next_deadline_at > now:
            deadline = service.next_deadline_at
        else:
            deadline = None
        run = JobRun.objects.create(
            service=service,
            run_id=run_id or uuid.uuid4().hex[:16],
            started_at=now,
            deadline_at=deadline,
            created_at=now,
        )
        beat_apply(service=service, now=now, status="STARTED", moves_deadline=False)
    return SignalResult(run=run, service=service)


def job_end(
    *,
    service_ref: str | int,
    succeeded: bool,
    run_id: str | None = None,
    exit_code: int | None = None,
    message: str = "",
    output_tail: str = "",
    duration_ms: int | None = None,
    at: datetime | None = None,
) -> SignalResult:
    now = at or timezone.now()
    run_id = _clean_run_id(run_id)
    if duration_ms is not None and not 0 <= duration_ms <= MAX_RUN_DURATION_MS:
        raise InvalidInput(fields={"duration_ms": [f"Must be from 0 to {MAX_RUN_DURATION_MS}."]})
    if exit_code is not None and not -MAX_EXIT_CODE <= exit_code <= MAX_EXIT_CODE:
        raise InvalidInput(
            fields={"exit_code": [f"Must be from -{MAX_EXIT_CODE} to {MAX_EXIT_CODE}."]}
        )
    with transaction.atomic():
        service = service_get_active(service_ref)
        runs = JobRun.objects.select_for_update().filter(service=service)
        if run_id:
            run = runs.filter(run_id=run_id).first()
        else:
            run = runs.filter(status=RunStatus.RUNNING).order_by("-started_at", "-id").first()
        if run is not None and run.status != RunStatus.RUNNING:
            return SignalResult(run=run, service=service, duplicate=True)
        if run is None:
            run = JobRun(service=service, run_id=run_id or uuid.uuid4().hex[:16], created_at=now)
        run.status = RunStatus.COMPLETED if succeeded else RunStatus.FAILED
        run.ended_at = now
        run.exit_code = exit_code
        run.message = (message or "")[:MESSAGE_MAX_LENGTH]
        run.output_tail = _tail(output_tail)
        if duration_ms is not None:
            run.duration_ms = duration_ms
        elif run.started_at is not None:
            run.duration_ms = max(0, int((now - run.started_at).total_seconds() * 1000))
        run.deadline_at = None
        run.save()
        status = "COMPLETED" if succeeded else "FAILED"
        if succeeded:
            service.consecutive_failures = 0
            service.save(update_fields=["consecutive_failures"])
            beat_apply(service=service, now=now, status=status, message=message)
            _check_slow(service, run, now)
        else:
            service.consecutive_failures += 1
            service.save(update_fields=["consecutive_failures"])
            failing = service.consecutive_failures >= service.failure_threshold
            beat_apply(
                service=service, now=now, status=status, message=message, may_recover=not failing
            )
            _record_failure(service, run, now, failing=failing)
        _trim(service)
    outcome = "completed" if succeeded else "failed"
    JOB_RUNS.labels(outcome=outcome).inc()
    if run.duration_ms is not None:
        JOB_DURATION.labels(team=service.team[:50]).observe(run.duration_ms / 1000)
    return SignalResult(run=run, service=service)


def run_details(run: JobRun) -> dict:
    return {
        "run_id": run.run_id,
        "exit_code": run.exit_code,
        "duration_ms": run.duration_ms,
        "message": run.message,
        "output_tail": run.output_tail,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
    }


def _record_failure(service: Service, run: JobRun, now: datetime, *, failing: bool) -> None:
    """Every failed run is a ``job.failed`` event; from ``failure_threshold`` failures in a row
    on, the service is down too (alerting opens its alert from the event)."""
    if failing and service.status != ServiceStatus.DOWN:
        fields: list[str] = []
        down_set(service, fields, now=now)
        service.save(update_fields=fields)
    payload = run_details(run) | {
        "consecutive_failures": service.consecutive_failures,
        "failure_threshold": service.failure_threshold,
    }
    service_event(service, EventKind.JOB_FAILED, payload, at=now)


def _check_slow(service: Service, run: JobRun, now: datetime) -> None:
    """``job.slow`` when this run took longer than ``slow_run_factor`` times the p95 of earlier
    runs; ``job.completed`` (within bounds) otherwise, which ends a slow-run alert."""
    if not service.slow_run_factor or run.duration_ms is None:
        return
    stats = duration_stats(service=service, exclude_run_id=run.pk)
    if stats["p95_ms"] is None:
        return
    limit = stats["p95_ms"] * service.slow_run_factor
    details = run_details(run) | {"p95_ms": stats["p95_ms"], "limit_ms": round(limit)}
    kind = EventKind.JOB_SLOW if run.duration_ms > limit else EventKind.JOB_COMPLETED
    service_event(service, kind, details, at=now)


def _trim(service: Service) -> None:
    stale = list(
        JobRun.objects.filter(service=service)
        .exclude(status=RunStatus.RUNNING)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)[RUNS_KEPT : RUNS_KEPT + 500]
    )
    if stale:
        JobRun.objects.filter(id__in=stale).delete()


def runs_overdue(*, now: datetime, batch: int = 200) -> list[JobRun]:
    """Running runs past their deadline that have not been alerted (locked, skip-locked)."""
    return list(
        JobRun.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("service")
        .filter(status=RunStatus.RUNNING, hung_alerted=False, deadline_at__lte=now)
        .order_by("deadline_at", "id")[:batch]
    )


def run_mark_hung(*, run: JobRun, now: datetime) -> None:
    """The sweep's verdict on a run past its deadline: the service goes down, with a
    ``job.hung`` event when max_duration was exceeded, else ``job.not_completed``."""
    service = Service.objects.select_for_update().get(pk=run.service_id)
    run.hung_alerted = True
    run.save(update_fields=["hung_alerted"])
    if not service.active:
        return
    kind = EventKind.JOB_HUNG if service.max_duration_seconds else EventKind.JOB_NOT_COMPLETED
    if service.status != ServiceStatus.DOWN:
        fields: list[str] = []
        down_set(service, fields, now=now)
        service.save(update_fields=fields)
    running_for = int((now - run.started_at).total_seconds()) if run.started_at else None
    payload = run_details(run) | {"running_for_seconds": running_for}
    service_event(service, kind, payload, at=now)
