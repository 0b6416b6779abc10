"""Maintenance windows: when they are open, whom they cover, and their start/end notices.

A window is one-time (``starts_at`` → ``ends_at``) or recurring (a cron expression in the
window's IANA zone, each occurrence lasting ``duration_minutes``; DST rules as in
heartbeats.cron). Detection continues inside a window; notifications are held back and recorded
as suppressed, and an alert still open when the window closes goes out then (the sweep releases
it).
"""

from __future__ import annotations

import fnmatch
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from heartbeats import cron
from heartbeats.models import MaintenanceWindow, Service, WindowScope
from medic.errors import Conflict, InvalidInput, NotFound
from medic.ids import parse_id
from medic.models import AuditEvent
from medic.timezones import TimezoneError, validate_timezone

logger = logging.getLogger(__name__)
MAX_DURATION = timedelta(days=30)


# --- Occurrences ------------------------------------------------------------------------------


def occurrence_at(window: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) of the occurrence open at ``at``, or None."""
    if not window.recurring:
        if window.starts_at and window.ends_at and window.starts_at <= at < window.ends_at:
            return window.starts_at, window.ends_at
        return None
    zone = ZoneInfo(window.time_zone)
    start = cron.previous_fire_at_or_before(window.cron_expression, zone, at)
    if start is None:
        return None
    end = start + timedelta(minutes=window.duration_minutes or 0)
    return (start, end) if at < end else None


def occurrences(window: MaintenanceWindow, after: datetime, count: int) -> list[tuple]:
    """The next ``count`` occurrences that end after ``after`` (the open one first)."""
    if not window.recurring:
        if window.ends_at and window.ends_at > after:
            return [(window.starts_at, window.ends_at)]
        return []
    out = []
    current = occurrence_at(window, after)
    if current:
        out.append(current)
    zone = ZoneInfo(window.time_zone)
    cursor = after
    duration = timedelta(minutes=window.duration_minutes or 0)
    while len(out) < count:
        start = cron.next_fire_after(window.cron_expression, zone, cursor)
        out.append((start, start + duration))
        cursor = start
    return out[:count]


def covers(window: MaintenanceWindow, service: Service) -> bool:
    if window.scope == WindowScope.ALL:
        return True
    if window.scope == WindowScope.TEAM:
        return service.team == window.team
    if window.scope == WindowScope.PATTERN:
        return fnmatch.fnmatchcase(service.heartbeat_name.lower(), window.pattern.lower())
    return window.services.filter(pk=service.pk).exists()


def window_covering(*, service: Service, at: datetime) -> tuple[MaintenanceWindow, datetime] | None:
    """The open window covering ``service`` at ``at`` (latest end first), with its end."""
    best = None
    for window in MaintenanceWindow.objects.all():
        occurrence = occurrence_at(window, at)
        if occurrence and covers(window, service) and (best is None or occurrence[1] > best[1]):
            best = (window, occurrence[1])
    return best


def covered_services(window: MaintenanceWindow):
    qs = Service.objects.filter(active=True)
    if window.scope == WindowScope.TEAM:
        return qs.filter(team=window.team)
    if window.scope == WindowScope.SERVICES:
        return qs.filter(maintenance_windows=window)
    if window.scope == WindowScope.PATTERN:
        names = qs.values_list("pk", "heartbeat_name")
        ids = [pk for pk, n in names if fnmatch.fnmatchcase(n.lower(), window.pattern.lower())]
        return qs.filter(pk__in=ids)
    return qs


# --- Writes -----------------------------------------------------------------------------------


def window_get(ref: str | int) -> MaintenanceWindow:
    ref = str(ref)
    pk = parse_id(ref)
    window = MaintenanceWindow.objects.filter(pk=pk).first() if pk is not None else None
    window = window or MaintenanceWindow.objects.filter(name=ref).first()
    if window is None:
        raise NotFound(f"No maintenance window with id or name '{ref}'.")
    return window


def _validate(window: MaintenanceWindow, services: list[Service] | None) -> None:
    errors: dict[str, list[str]] = {}
    try:
        window.time_zone = validate_timezone(window.time_zone).key
    except TimezoneError as exc:
        errors["timezone"] = [str(exc)]
    if window.cron_expression:
        if window.starts_at or window.ends_at:
            errors["cron_expression"] = [
                "A window is one-time (starts_at, ends_at) or "
                "recurring (cron_expression, duration_minutes), not both."
            ]
        try:
            window.cron_expression = cron.validate_cron(window.cron_expression)
        except cron.CronError as exc:
            errors["cron_expression"] = [str(exc)]
        if not window.duration_minutes:
            errors["duration_minutes"] = ["Required for a recurring window."]
        elif timedelta(minutes=window.duration_minutes) > MAX_DURATION:
            errors["duration_minutes"] = ["At most 30 days."]
    else:
        if not window.starts_at:
            errors["starts_at"] = ["Required (or give cron_expression for a recurring window)."]
        if not window.ends_at:
            errors["ends_at"] = ["Required for a one-time window."]
        if window.starts_at and window.ends_at:
            if window.ends_at <= window.starts_at:
                errors["ends_at"] = ["Must be after starts_at."]
            elif window.ends_at - window.starts_at > MAX_DURATION:
                errors["ends_at"] = ["A window lasts at most 30 days."]
    if window.scope == WindowScope.TEAM and not window.team:
        errors["team"] = ["Required when scope is 'team'."]
    if window.scope == WindowScope.PATTERN and not window.pattern:
        errors["pattern"] = ["Required when scope is 'pattern' (e.g. 'billing-*')."]
    if window.scope == WindowScope.SERVICES and services is not None and not services:
        errors["services"] = ["List at least one service when scope is 'services'."]
    if errors:
        raise InvalidInput(fields=errors)


def window_check(*, services: list[Service] | None = None, **fields) -> MaintenanceWindow:
    """An unsaved window built from ``fields`` and checked by the rules of ``window_create``
    (zone and cron expression normalised); raises InvalidInput as they do. For previews."""
    window = MaintenanceWindow(**fields)
    _validate(window, services if window.scope == WindowScope.SERVICES else None)
    return window


def _save(window: MaintenanceWindow) -> None:
    try:
        with transaction.atomic():
            window.save()
    except IntegrityError as exc:
        raise Conflict(
            f"A maintenance window named '{window.name}' already exists.",
            fields={"name": ["Already taken."]},
        ) from exc


@transaction.atomic
def window_create(
    *, actor: str, services: list[Service] | None = None, **fields
) -> MaintenanceWindow:
    window = MaintenanceWindow(created_by=actor, **fields)
    _validate(window, services if window.scope == WindowScope.SERVICES else None)
    _save(window)
    if services is not None:
        window.services.set(services)
    AuditEvent.objects.create(
        actor=actor,
        event="maintenance_window.created",
        object_type="maintenance_window",
        object_id=str(window.pk),
        details={"name": window.name, "scope": window.scope},
    )
    return window


@transaction.atomic
def window_update(
    *, ref: str | int, actor: str, services: list[Service] | None = None, **changes
) -> MaintenanceWindow:
    window = window_get(ref)
    for field, value in changes.items():
        setattr(window, field, value)
    current = services if services is not None else list(window.services.all())
    _validate(window, current if window.scope == WindowScope.SERVICES else None)
    window.updated_at = timezone.now()
    _save(window)
    if services is not None:
        window.services.set(services)
    AuditEvent.objects.create(
        actor=actor,
        event="maintenance_window.updated",
        object_type="maintenance_window",
        object_id=str(window.pk),
        details={"changed": sorted(changes)},
    )
    return window


@transaction.atomic
def window_delete(*, ref: str | int, actor: str) -> None:
    window = window_get(ref)
    AuditEvent.objects.create(
        actor=actor,
        event="maintenance_window.deleted",
        object_type="maintenance_window",
        object_id=str(window.pk),
        details={"name": window.name},
    )
    window.delete()


# --- Start/end notices (called by the sweep) --------------------------------------------------


def announcements(*, now: datetime) -> list[tuple[MaintenanceWindow, str, datetime, datetime]]:
    """Record and return the (window, "started"|"ended", start, end) notices due at ``now``.

    Each occurrence is announced once when it opens and once when it closes; the window row
    remembers what was announced, so several sweepers and restarts send nothing twice.
    """
    due = []
    for window in MaintenanceWindow.objects.select_for_update(skip_locked=True).filter(notify=True):
        before = (window.announced_start, window.announced_end)
        occurrence = occurrence_at(window, now)
        if (
            window.announced_start
            and window.announced_end
            and (occurrence is None or occurrence[0] != window.announced_start)
        ):
            due.append((window, "ended", window.announced_start, window.announced_end))
            window.announced_start = window.announced_end = None
        if occurrence and occurrence[0] != window.announced_start:
            window.announced_start, window.announced_end = occurrence
            due.append((window, "started", *occurrence))
        if (window.announced_start, window.announced_end) != before:
            window.save(update_fields=["announced_start", "announced_end"])
    return due
