"""The deadline rule: when a service becomes overdue. One home; every path calls it.

- ``deadline_compute``: the deadline after the service's latest qualifying beat (heartbeats,
  job ends, configuration changes, the v1 import).
- ``deadline_met``: whether that deadline still lies ahead (the service is up).
- ``deadline_following``: the next deadline after one that was missed (service.still_down).
- ``next_beat_expected``: the deadline without grace, shown by the dashboard.
- ``INTERVAL_DEADLINE_SQL``: the same rule for interval schedules as a PostgreSQL expression, for
  the one-statement heartbeat hot path (tests/test_deadlines.py checks both agree for every
  schedule kind; bench/ingest/contract.py checks it again on the running stack).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from heartbeats import cron
from heartbeats.models import ScheduleKind, Service
from medic.limits import MAX_ALERT_INTERVAL_MINUTES, MAX_GRACE_SECONDS, bounded

# A beat this long (at most) before a cron fire time counts for that fire time: clocks drift
# and schedulers start jobs a little early. Bounded by the grace period and half the period.
CRON_EARLY_TOLERANCE = timedelta(minutes=5)


# ``deadline_compute`` for an interval schedule, given the beat time as the ``now`` parameter.
# Only columns of the service row appear; every value is a bound parameter.
# Stored numbers are clamped to their documented maxima (medic.limits) as in ``bounded``; the
# statement passes them as %(max_interval)s and %(max_grace)s.
def interval_deadline_sql(now: str = "%(now)s") -> str:
    """The rule as SQL, with the beat time taken from ``now`` (a parameter or a column of the
    statement's input: the group commit passes one time per beat)."""
    return (
        f"{now} + make_interval(secs => LEAST(alert_interval, %(max_interval)s) * 60)"
        " + make_interval(secs => LEAST(grace_period_seconds, %(max_grace)s))"
    )


INTERVAL_DEADLINE_SQL = interval_deadline_sql()
# The parameters INTERVAL_DEADLINE_SQL needs besides %(now)s.
INTERVAL_DEADLINE_PARAMS = {
    "max_interval": MAX_ALERT_INTERVAL_MINUTES,
    "max_grace": MAX_GRACE_SECONDS,
}


def deadline_compute(*, service: Service, nth_recent_at: datetime | None) -> datetime:
    """When ``service`` becomes overdue.

    Interval and at-least-N: ``nth_recent_at`` is the time of its ``threshold``-th most recent
    heartbeat (None when it has fewer): the window holds fewer than ``threshold`` heartbeats
    from that moment plus one interval on. A service without enough heartbeats gets one interval
    from registration (or reactivation), so a service that never reports is noticed, once.

    Cron: the first fire time after the last beat (or registration), in the service's zone
    (heartbeats.cron has the DST rules), plus grace.
    """
    grace = timedelta(seconds=bounded(service.grace_period_seconds, MAX_GRACE_SECONDS))
    base = nth_recent_at if nth_recent_at is not None else service.date_added
    if service.schedule_kind == ScheduleKind.CRON:
        zone = ZoneInfo(service.schedule_timezone)
        early = timedelta(0)
        if nth_recent_at is not None and grace:
            first = cron.next_fire_after(service.cron_expression, zone, base)
            period = cron.next_fire_after(service.cron_expression, zone, first) - first
            # Only a beat shortly before ``first`` is early for it; one long before is for
            # an earlier fire time.
            early = min(grace, CRON_EARLY_TOLERANCE, period / 2)
            if first - base > early:
                early = timedelta(0)
        return cron.next_fire_after(service.cron_expression, zone, base + early) + grace
    return (
        base
        + timedelta(minutes=bounded(service.alert_interval, MAX_ALERT_INTERVAL_MINUTES))
        + grace
    )


def deadline_met(
    *, deadline: datetime | None, nth_recent_at: datetime | None, now: datetime
) -> bool:
    """Up: the service has its ``threshold`` beats and its deadline is still ahead."""
    return nth_recent_at is not None and deadline is not None and deadline > now


def deadline_following(*, service: Service, missed: datetime) -> datetime:
    """The deadline after ``missed`` had nothing arrived: one more interval, or the next fire
    time (plus grace) for cron schedules."""
    grace = timedelta(seconds=bounded(service.grace_period_seconds, MAX_GRACE_SECONDS))
    if service.schedule_kind == ScheduleKind.CRON:
        zone = ZoneInfo(service.schedule_timezone)
        return cron.next_fire_after(service.cron_expression, zone, missed - grace) + grace
    return missed + timedelta(minutes=bounded(service.alert_interval, MAX_ALERT_INTERVAL_MINUTES))


def deadline_next_after(*, service: Service, missed: datetime, now: datetime) -> datetime:
    """The first deadline after ``now`` in the series that ``missed`` belongs to."""
    deadline = deadline_following(service=service, missed=missed)
    for _ in range(10_000):  # a service down for months, checked after a long outage
        if deadline > now:
            return deadline
        deadline = deadline_following(service=service, missed=deadline)
    return deadline


def next_beat_expected(service: Service) -> datetime | None:
    """When the next beat is due: the deadline without its grace period."""
    if service.next_deadline_at is None:
        return None
    return service.next_deadline_at - timedelta(seconds=service.grace_period_seconds)
