"""Reads for the dashboard pages. Every function here is bounded: a fixed number of queries
whatever the size of the fleet (the services page is measured in bench/dashboard)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When

from alerting.models import Alert, AlertState, Delivery, NotificationEvent, Team
from dashboard.remediation_selectors import approvals_count
from heartbeats.models import Service, ServiceStatus

# --- Header -----------------------------------------------------------------------------------


def header_counts() -> dict[str, int]:
    return {
        "down": Service.objects.filter(status=ServiceStatus.DOWN).count(),
        "open_alerts": Alert.objects.filter(state=AlertState.OPEN).count(),
        "approvals": approvals_count(),
    }


# --- Services ---------------------------------------------------------------------------------

# Problems first: what needs a look sits at the top of the default order.
_STATUS_RANK = Case(
    When(status=ServiceStatus.DOWN, then=Value(0)),
    When(status=ServiceStatus.NEW, then=Value(1)),
    When(status=ServiceStatus.UP, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)

SERVICE_SORTS: dict[str, tuple[str, ...]] = {
    "status": ("status_rank", "heartbeat_name"),
    "name": ("heartbeat_name",),
    "last": ("-last_heartbeat_at", "heartbeat_name"),
    "deadline": ("next_deadline_at", "heartbeat_name"),
    "team": ("team", "heartbeat_name"),
    "priority": ("priority", "heartbeat_name"),
}


def sort_order(sort: str) -> list[str]:
    """``name`` ascending, ``-name`` descending; unknown keys fall back to the default."""
    key = sort.lstrip("-")
    fields = SERVICE_SORTS.get(key, SERVICE_SORTS["status"])
    if not sort.startswith("-"):
        return [*fields, "id"]
    flipped = [f[1:] if f.startswith("-") else f"-{f}" for f in fields[:1]]
    return [*flipped, *fields[1:], "id"]


def service_list(
    *,
    search: str = "",
    status: str = "",
    team: str = "",
    priority: str = "",
    sort: str = "status",
) -> QuerySet[Service]:
    qs = Service.objects.annotate(status_rank=_STATUS_RANK)
    if search:
        qs = qs.filter(Q(heartbeat_name__icontains=search) | Q(service_name__icontains=search))
    if status == "muted":
        qs = qs.filter(muted=True)
    elif status:
        qs = qs.filter(status=status)
    if team:
        qs = qs.filter(team=team)
    if priority:
        qs = qs.filter(priority=priority)
    return qs.order_by(*sort_order(sort))


def team_names() -> list[str]:
    """Every team name in use: Team rows and the names services carry (one UNION query)."""
    names = (
        Service.objects.order_by()
        .values_list("team", flat=True)
        .union(Team.objects.order_by().values_list("name", flat=True))
    )
    return sorted(set(names), key=str.lower)


def service_recent_heartbeats(service: Service, limit: int = 20):
    return list(service.heartbeats.order_by("-time", "-id")[:limit])


def service_alerts(service: Service, limit: int = 10) -> tuple[Alert | None, list[Alert]]:
    alerts = list(service.alerts.order_by("-opened_at", "-id")[: limit + 1])
    open_alert = next((a for a in alerts if a.state == AlertState.OPEN), None)
    past = [a for a in alerts if a is not open_alert][:limit]
    return open_alert, past


# --- Alerts -----------------------------------------------------------------------------------


def alert_list(
    *,
    service: str = "",
    team: str = "",
    priority: str = "",
    state: str = "",
    opened_from: datetime | None = None,
    opened_to: datetime | None = None,
) -> QuerySet[Alert]:
    qs = Alert.objects.select_related("service")
    if service:
        qs = qs.filter(
            Q(service__heartbeat_name__icontains=service)
            | Q(service__service_name__icontains=service)
        )
    if team:
        qs = qs.filter(service__team=team)
    if priority:
        qs = qs.filter(priority=priority)
    if state:
        qs = qs.filter(state=state)
    if opened_from:
        qs = qs.filter(opened_at__gte=opened_from)
    if opened_to:
        qs = qs.filter(opened_at__lt=opened_to)
    return qs.order_by("-opened_at", "-id")


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # opened, notified, suppressed, renotified, escalated, resolved, recovery
    title: str
    detail: str = ""
    deliveries: list[Delivery] = field(default_factory=list)


_ORDER = {
    "opened": 0,
    "unrouted": 1,
    "suppressed": 1,
    "notified": 1,
    "renotified": 1,
    "escalated": 1,
    "resolved": 2,
}


def alert_timeline(alert: Alert, deliveries: list[Delivery]) -> list[TimelineEntry]:
    """What happened to an alert, oldest first, from the Alert row and its Delivery rows.

    Deliveries written by one event (one ``deliveries_create`` call) share ``event`` and
    ``created_at``, so they form one step: "notified 2 targets", "suppressed: muted until ...".
    A trigger step after a suppressed one is the notification sent when the hold lifted.
    """
    entries = [
        TimelineEntry(
            at=alert.opened_at,
            kind="opened",
            title="Opened",
            detail=f"{alert.get_reason_display()}: {alert.summary}",
        )
    ]
    held_before = False
    key = lambda d: (d.created_at, d.event)  # noqa: E731
    for (at, event), group in itertools.groupby(sorted(deliveries, key=key), key=key):
        rows = list(group)
        if all(d.status == "suppressed" for d in rows):
            kind, title = "suppressed", "Notification held back"
            detail = rows[0].suppressed_reason
            held_before = held_before or event == NotificationEvent.TRIGGER
        elif event == NotificationEvent.TRIGGER:
            kind = "notified"
            title = "Notified after the hold lifted" if held_before else "Notified"
            detail = _targets_summary(rows)
        elif event == NotificationEvent.RENOTIFY:
            kind, title, detail = "renotified", "Re-notified (still down)", _targets_summary(rows)
        elif event == NotificationEvent.ESCALATE:
            kind, title = "escalated", "Escalated (a remediation gave up)"
            detail = _targets_summary(rows)
        else:
            kind, title, detail = "recovery", "Recovery sent", _targets_summary(rows)
        entries.append(TimelineEntry(at=at, kind=kind, title=title, detail=detail, deliveries=rows))
    if not deliveries:
        # Nothing routed: say so rather than leave the operator guessing whether anyone heard.
        held = alert.suppressed
        entries.append(
            TimelineEntry(
                at=alert.opened_at,
                kind="suppressed" if held else "unrouted",
                title="Notifications held back" if held else "Nobody was notified",
                detail="No route reached a target: set a team Slack channel, PagerDuty or a "
                "routing rule.",
            )
        )
    if alert.resolved_at:
        entries.append(TimelineEntry(at=alert.resolved_at, kind="resolved", title="Resolved"))
    entries.sort(key=lambda e: (e.at, _ORDER.get(e.kind, 3)))
    return entries


def _targets_summary(rows: list[Delivery]) -> str:
    parts = [f"{d.get_channel_display()} {d.target} ({d.get_status_display()})" for d in rows]
    return "; ".join(parts) if parts else "no targets routed"


def alert_deliveries(alert: Alert) -> list[Delivery]:
    return list(alert.deliveries.prefetch_related("attempt_rows").order_by("created_at", "id"))


# --- Teams ------------------------------------------------------------------------------------


def teams_with_counts() -> list[Team]:
    services = (
        Service.objects.filter(team=OuterRef("name"))
        .order_by()
        .values("team")
        .annotate(n=Count("id"))
        .values("n")
    )
    return list(Team.objects.annotate(service_count=Subquery(services)).order_by("name"))


# --- Job runs and maintenance windows (read-only; their writes belong to heartbeats) -----------


def _heartbeats_model(name: str):
    from heartbeats import models as heartbeat_models

    return getattr(heartbeat_models, name, None)


def has_job_runs() -> bool:
    return _heartbeats_model("JobRun") is not None


def has_maintenance() -> bool:
    return _heartbeats_model("MaintenanceWindow") is not None


@dataclass
class JobRunsSection:
    runs: list
    stats: dict
    chart: list[dict]
    chart_max_ms: int


def service_job_runs(service: Service, limit: int = 20) -> JobRunsSection | None:
    """Recent runs, duration percentiles and the points of the duration chart (last 50)."""
    job_run = _heartbeats_model("JobRun")
    if job_run is None:
        return None
    from heartbeats.selectors import duration_stats

    runs = list(job_run.objects.filter(service=service).order_by("-created_at", "-id")[:50])
    if not runs:
        return JobRunsSection(runs=[], stats={}, chart=[], chart_max_ms=0)
    timed = [r for r in reversed(runs) if r.duration_ms is not None]
    top = max((r.duration_ms for r in timed), default=0)
    chart = [{"run": r, "ms": r.duration_ms, "failed": r.status == "failed"} for r in timed]
    return JobRunsSection(
        runs=runs[:limit], stats=duration_stats(service=service), chart=chart, chart_max_ms=top
    )


@dataclass
class WindowRow:
    window: object
    state: str  # active, upcoming, past
    current: tuple[datetime, datetime] | None
    upcoming: list[tuple[datetime, datetime]]


def maintenance_rows(now: datetime, *, service: Service | None = None) -> list[WindowRow]:
    """Every window (or those covering ``service``) with its open and next occurrences."""
    window_model = _heartbeats_model("MaintenanceWindow")
    if window_model is None:
        return []
    from heartbeats.maintenance import covers, occurrence_at, occurrences

    rows = []
    for window in window_model.objects.prefetch_related("services").order_by("name"):
        if service is not None and not covers(window, service):
            continue
        current = occurrence_at(window, now)
        upcoming = [o for o in occurrences(window, now, 4) if o != current][:3]
        if current:
            state = "active"
        elif upcoming:
            state = "upcoming"
        else:
            state = "past"
        rows.append(WindowRow(window=window, state=state, current=current, upcoming=upcoming))
    order = {"active": 0, "upcoming": 1, "past": 2}
    rows.sort(key=lambda r: (order[r.state], r.upcoming[0][0] if r.upcoming else now))
    return rows


def service_maintenance_windows(service: Service, now: datetime) -> list[WindowRow] | None:
    if not has_maintenance():
        return None
    return [r for r in maintenance_rows(now, service=service) if r.state != "past"]


# --- Maintenance window preview ---------------------------------------------------------------


@dataclass
class PreviewRow:
    start: datetime
    end: datetime
    start_local: str  # "Sun 2026-03-29 03:00 CEST (UTC+02:00)"
    end_local: str
    start_utc: str  # "2026-03-29 01:00"
    end_utc: str
    duration: str
    state: str  # "open now", "over" or ""
    flags: list[str]


def _cron_named_time(expression: str, zone, start: datetime) -> datetime | None:
    """The wall-clock time the cron expression named for the occurrence at ``start``, when it
    differs from the clock at ``start`` (a time skipped by a spring-forward change)."""
    from croniter import croniter

    from heartbeats.cron import localize

    local = start.astimezone(zone).replace(tzinfo=None)
    if croniter.match(expression, local):
        return None
    iterator = croniter(expression, local - timedelta(hours=3))
    for _ in range(500):
        named = iterator.get_next(datetime)
        if named >= local:
            return None
        if localize(named, zone) == start:
            return named
    return None


@dataclass
class Preview:
    rows: list[PreviewRow]
    zone: str
    recurring: bool
    after: datetime | None  # None: from now
    notes: list[str] = field(default_factory=list)
    saved: bool = False  # the stored window, not what the form holds


def window_preview(window, after: datetime, now: datetime, count: int = 5) -> list[PreviewRow]:
    """The next ``count`` occurrences of ``window`` from ``after`` (a one-time window: its only
    one) in the window's zone, each flagged where a DST change moves or stretches it."""
    from zoneinfo import ZoneInfo

    from dashboard.templatetags.dashboard import offset_text, seconds, zone_offset, zone_time
    from heartbeats.maintenance import occurrences

    zone = ZoneInfo(window.time_zone)
    if window.recurring:
        spans = occurrences(window, after, count)
    else:
        spans = [(window.starts_at, window.ends_at)]
    rows = []
    previous = after.astimezone(zone).utcoffset()
    for start, end in spans:
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        flags = []
        named = _cron_named_time(window.cron_expression, zone, start) if window.recurring else None
        if named is not None:
            before = (start - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
            jump_from = (before + timedelta(seconds=1)).strftime("%H:%M")
            flags.append(
                f"{named:%H:%M} does not exist on {named:%Y-%m-%d} (clocks jump from {jump_from} "
                f"to {local_start:%H:%M}): starts at the jump, {local_start:%H:%M} "
                f"{local_start.tzname()}."
            )
        if local_start.replace(fold=1).utcoffset() != local_start.utcoffset():
            flags.append(
                f"{local_start:%H:%M} happens twice on {local_start:%Y-%m-%d} (clocks fall back): "
                f"starts at the first, {local_start:%H:%M} {local_start.tzname()}."
            )
        if local_start.utcoffset() != previous:
            flags.append(
                f"DST change: now {zone_offset(local_start)} ({local_start.tzname()}), was "
                f"{offset_text(previous)}; {local_start:%H:%M} local is "
                f"{start.astimezone(UTC):%H:%M} UTC."
            )
        if local_end.utcoffset() != local_start.utcoffset():
            flags.append(
                f"Clocks change during this one ({zone_offset(local_start)} → "
                f"{zone_offset(local_end)}): it lasts {seconds(int((end - start).total_seconds()))}"
                f" and ends at {local_end:%H:%M} {local_end.tzname()} on the clock."
            )
        previous = local_end.utcoffset()
        state = "over" if end <= now else ("open now" if start <= now else "")
        rows.append(
            PreviewRow(
                start=start,
                end=end,
                start_local=zone_time(start, window.time_zone),
                end_local=zone_time(end, window.time_zone),
                start_utc=start.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                end_utc=end.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                duration=seconds(int((end - start).total_seconds())),
                state=state,
                flags=flags,
            )
        )
    return rows
