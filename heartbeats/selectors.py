"""Reads for other layers: a service by id, its failure count, duration statistics."""

from __future__ import annotations

import math
from datetime import datetime

from django.db import connection
from django.db.models import Avg, Count, Max, Min

from heartbeats.models import Heartbeat, JobRun, RunStatus, Service

MIN_RUNS_FOR_STATS = 5


def service_locked(service_id: int | None) -> Service | None:
    """The service row, locked for the caller's transaction; None if it no longer exists."""
    if service_id is None:
        return None
    return Service.objects.select_for_update().filter(pk=service_id).first()


def service_consecutive_failures(service_id: int) -> int:
    """Failures in a row: failed runs, or deadlines missed while down (0 when it is fine)."""
    return (
        Service.objects.filter(pk=service_id).values_list("consecutive_failures", flat=True).first()
        or 0
    )


def nth_recent_heartbeat_at(service: Service) -> datetime | None:
    """The time of the ``threshold``-th most recent heartbeat since registration (None when it
    has fewer): the anchor of the deadline rule (heartbeats.deadlines)."""
    if service.threshold <= 1:
        return service.last_heartbeat_at
    times = list(
        Heartbeat.objects.filter(service=service, time__gte=service.date_added)
        .order_by("-time")
        .values_list("time", flat=True)[service.threshold - 1 : service.threshold]
    )
    return times[0] if times else None


def _percentile(sorted_values: list[int], fraction: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return math.nan
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def duration_stats(*, service: Service, exclude_run_id: int | None = None) -> dict:
    """count, avg, min, max, p50, p95, p99 (milliseconds) of the kept completed runs.

    Computed in the database on PostgreSQL (percentile_cont); percentiles are null with a reason
    when fewer than five runs have a duration.
    """
    runs = JobRun.objects.filter(
        service=service, status=RunStatus.COMPLETED, duration_ms__isnull=False
    )
    if exclude_run_id is not None:
        runs = runs.exclude(pk=exclude_run_id)
    result: dict = {
        "count": 0,
        "avg_ms": None,
        "min_ms": None,
        "max_ms": None,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "reason": None,
    }
    if connection.vendor == "postgresql":
        sql, params = runs.values("duration_ms").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT count(*), avg(duration_ms), min(duration_ms), max(duration_ms),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms)
                FROM ({sql}) AS runs""",  # noqa: S608 (Django-built subquery, parameters bound)
                params,
            )
            count, avg, low, high, p50, p95, p99 = cursor.fetchone()
    else:
        aggregate = runs.aggregate(
            count=Count("id"),
            avg=Avg("duration_ms"),
            low=Min("duration_ms"),
            high=Max("duration_ms"),
        )
        count, avg, low, high = (aggregate[k] for k in ("count", "avg", "low", "high"))
        values = sorted(runs.values_list("duration_ms", flat=True))
        p50, p95, p99 = (
            (_percentile(values, f) for f in (0.5, 0.95, 0.99)) if values else (None, None, None)
        )
    result["count"] = count or 0
    if not count:
        result["reason"] = "no completed runs with a duration yet"
        return result
    result.update(avg_ms=round(float(avg), 1), min_ms=low, max_ms=high)
    if count < MIN_RUNS_FOR_STATS:
        result["reason"] = (
            f"percentiles need at least {MIN_RUNS_FOR_STATS} completed runs; there are {count}"
        )
        return result
    result.update(
        p50_ms=round(float(p50), 1), p95_ms=round(float(p95), 1), p99_ms=round(float(p99), 1)
    )
    return result


def heartbeat_received_since(*, service_id: int, since) -> bool:
    """Has the service sent a heartbeat after ``since``? (An index probe on service, time.)"""
    from heartbeats.models import Heartbeat

    return Heartbeat.objects.filter(service_id=service_id, time__gt=since).exists()


def service_status(*, service_id: int) -> str | None:
    return Service.objects.filter(pk=service_id).values_list("status", flat=True).first()
