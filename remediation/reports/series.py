"""The outcome figures per day or week of a period (docs/outcomes.md, "Over time").

Buckets are UTC days for periods up to ``DAILY_UP_TO`` long, else ISO weeks (Monday 00:00 UTC),
each clipped to the period: the first and last bucket may be shorter. Every figure of a bucket is
computed exactly as the whole-period figure over the bucket's own alerts (an alert belongs to the
bucket it opened in), from one read of the period's rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, DateField
from django.db.models.functions import TruncDate, TruncWeek

from heartbeats.models import Service
from remediation.models import AgentMemoryDay
from remediation.reports.selectors import (
    ENDINGS,
    PERCENTILES,
    Period,
    _active_patterns,
    _classified,
    _covered,
    _interpolate,
    _ratio,
    incidents,
    refusal_days,
    success_metrics,
)

DAILY_UP_TO = timedelta(days=31)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    end: datetime


def bucket_size(period: Period) -> str:
    return "day" if period.length <= DAILY_UP_TO else "week"


def _floor(at: datetime, size: str) -> datetime:
    day = datetime.combine(at.astimezone(UTC).date(), time(), tzinfo=UTC)
    return day - timedelta(days=day.weekday()) if size == "week" else day


def buckets(period: Period) -> list[Bucket]:
    size = bucket_size(period)
    step = timedelta(days=7 if size == "week" else 1)
    out, start = [], _floor(period.since, size)
    while start < period.until:
        out.append(Bucket(max(start, period.since), min(start + step, period.until)))
        start += step
    return out


def _index(bucket_list: list[Bucket], at: datetime) -> int | None:
    for i, bucket in enumerate(bucket_list):
        if bucket.start <= at < bucket.end:
            return i
    return None


def _stats(values: list[float]) -> dict | None:
    if not values:
        return None
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 3),
        **{name: round(_interpolate(values, f), 3) for name, f in PERCENTILES},
    }


def _agents_over(period: Period, bucket_list: list[Bucket], size: str) -> list[int]:
    """Agents whose highest memory on some UTC day of the bucket was over the threshold."""
    trunc = TruncWeek if size == "week" else TruncDate
    rows = (
        AgentMemoryDay.objects.filter(
            day__gte=period.since.astimezone(UTC).date(),
            day__lte=(period.until - timedelta(microseconds=1)).astimezone(UTC).date(),
            max_rss_bytes__gt=settings.MEDIC_AGENT_MEMORY_THRESHOLD_BYTES,
        )
        .annotate(bucket=trunc("day", output_field=DateField()))
        .values("bucket")
        .annotate(n=Count("agent_id", distinct=True))
    )
    counts = [0] * len(bucket_list)
    for row in rows:
        start = datetime.combine(row["bucket"], time(), tzinfo=UTC)
        i = _index(bucket_list, max(start, period.since))
        if i is not None:
            counts[i] += row["n"]
    return counts


def _refusals(period: Period, bucket_list: list[Bucket]) -> list[dict | None]:
    """Per bucket, the refusals tallied on the UTC days it touches (None without the tally)."""
    days = refusal_days(period)
    if days is None:
        return [None] * len(bucket_list)
    out: list[dict] = [{} for _ in bucket_list]
    for day, counts in days.items():
        start = datetime.combine(day, time(), tzinfo=UTC)
        i = _index(bucket_list, max(start, period.since))
        if i is None:
            continue
        for reason, n in counts.items():
            out[i][reason] = out[i].get(reason, 0) + n
    return [dict(sorted(row.items())) for row in out]


def outcome_series(period: Period) -> dict:
    size = bucket_size(period)
    bucket_list = buckets(period)
    durations = [defaultdict(list) for _ in bucket_list]
    quick = [0] * len(bucket_list)
    for opened_at, ended_by, duration, interval in _classified(period).values_list(
        "opened_at", "ended_by", "duration", "service__alert_interval"
    ):
        i = _index(bucket_list, opened_at)
        seconds = duration.total_seconds()
        durations[i][ended_by].append(seconds)
        durations[i]["all"].append(seconds)
        if ended_by == "own" and seconds <= interval * 60:
            quick[i] += 1
    patterns = _active_patterns()
    opened = [0] * len(bucket_list)
    covered = [0] * len(bucket_list)
    rows = list(incidents(period).values_list("opened_at", "service_id"))
    services = Service.objects.in_bulk({service_id for _, service_id in rows})
    coverage_of = {pk: _covered(service, patterns) for pk, service in services.items()}
    for opened_at, service_id in rows:
        i = _index(bucket_list, opened_at)
        opened[i] += 1
        covered[i] += coverage_of[service_id]
    over = _agents_over(period, bucket_list, size)
    refused = _refusals(period, bucket_list)
    return {
        "bucket": size,
        "buckets": [
            {
                "start": bucket.start,
                "end": bucket.end,
                "alerts": opened[i],
                "mttr": {key: _stats(durations[i][key]) for key in ("all", *ENDINGS)},
                "alert_share": _ratio(covered[i], opened[i]),
                "false_positive_rate": _ratio(quick[i], opened[i]),
                "agents_over_memory_threshold": over[i],
                "refused_by_reason": refused[i],
            }
            for i, bucket in enumerate(bucket_list)
        ],
    }


def outcomes(period: Period) -> dict:
    """The whole report: the period's figures and the same figures per bucket."""
    return {**success_metrics(period), "series": outcome_series(period)}
