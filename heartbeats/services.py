"""Writes for services and heartbeats. Views and tasks call these; nothing else writes rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from heartbeats import cron
from heartbeats.deadlines import (
    INTERVAL_DEADLINE_PARAMS,
    INTERVAL_DEADLINE_SQL,
    deadline_compute,
    deadline_met,
    deadline_next_after,
)
from heartbeats.models import (
    Heartbeat,
    HeartbeatSource,
    Priority,
    ScheduleKind,
    Service,
    ServiceStatus,
)
from heartbeats.selectors import nth_recent_heartbeat_at
from medic.errors import Conflict, InvalidInput, NotFound
from medic.events.models import DomainEvent, EventKind
from medic.events.services import event_record
from medic.ids import parse_id
from medic.limits import (
    MAX_ALERT_INTERVAL_MINUTES,
    MAX_FAILURE_THRESHOLD,
    MAX_GRACE_SECONDS,
    MAX_MUTE,
    MAX_RUN_SECONDS,
    MAX_SLOW_RUN_FACTOR,
    MAX_THRESHOLD,
    MESSAGE_MAX_LENGTH,
    STATUS_MAX_LENGTH,
    name_problem,
)
from medic.metrics import HEARTBEATS
from medic.models import AuditEvent
from medic.text import storable
from medic.timezones import TimezoneError, validate_timezone

# Statuses counted with their own label in medic_heartbeats_total; any other free text (v1
# allowed anything) is counted as "other" so label cardinality stays bounded.
KNOWN_STATUSES = frozenset({"UP", "DOWN", "DEGRADED", "OK", "FAIL", "WARN"})
MAX_STATUS_LEN = STATUS_MAX_LENGTH
MAX_MESSAGE_LEN = MESSAGE_MAX_LENGTH


def _out_of_range(value, low: float, high: float) -> bool:
    return value is None or not math.isfinite(value) or not low <= value <= high


# --- Deadlines --------------------------------------------------------------------------------


def service_event(
    service: Service, kind: str, payload: dict | None = None, *, at: datetime | None = None
) -> None:
    """Record a domain event about ``service`` in the caller's transaction."""
    event_record(
        kind=kind,
        service_id=service.pk,
        service_name=service.heartbeat_name,
        payload=payload,
        occurred_at=at,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def status_set(
    service: Service, new_status: str, update_fields: list[str], *, at: datetime | None = None
) -> None:
    """Change a locked service's status; coming back up from down records service.recovered
    (and ends the run of failures)."""
    if service.status == new_status:
        return
    previous = service.status
    service.status = new_status
    update_fields.append("status")
    if previous == ServiceStatus.DOWN:
        service.still_down_at = None
        update_fields.append("still_down_at")
    if previous == ServiceStatus.DOWN and new_status == ServiceStatus.UP:
        service.consecutive_failures = 0
        update_fields.append("consecutive_failures")
        went_down = (
            DomainEvent.objects.filter(service_id=service.pk, kind=EventKind.SERVICE_DOWN)
            .order_by("-id")
            .values_list("occurred_at", flat=True)
            .first()
        )
        service_event(service, EventKind.SERVICE_RECOVERED, {"down_since": _iso(went_down)}, at=at)


def down_set(service: Service, update_fields: list[str], *, now: datetime) -> None:
    """Mark a locked service down and arm its still-down check: the next deadline it misses
    while down (the sweep records ``service.still_down`` then)."""
    status_set(service, ServiceStatus.DOWN, update_fields, at=now)
    deadline = service.next_deadline_at or now
    if deadline <= now:
        deadline = deadline_next_after(service=service, missed=deadline, now=now)
    service.still_down_at = deadline
    update_fields.append("still_down_at")


# --- Lookup -----------------------------------------------------------------------------------


def service_get(ref: str | int, *, for_update: bool = False) -> Service:
    """A service by numeric id or by heartbeat name (case-insensitive)."""
    qs = Service.objects.select_for_update() if for_update else Service.objects.all()
    ref = str(ref)
    if (pk := parse_id(ref)) is not None:
        service = qs.filter(pk=pk).first()
        if service is not None:
            return service
    service = qs.annotate(_lname=Lower("heartbeat_name")).filter(_lname=ref.lower()).first()
    if service is None:
        raise NotFound(f"No service with id or heartbeat name '{ref}'.", code="service_not_found")
    return service


# --- Heartbeats -------------------------------------------------------------------------------


@dataclass
class HeartbeatResult:
    heartbeat: Heartbeat
    service: Service
    recovered: bool


def heartbeat_counted(status: str) -> None:
    """Count a stored heartbeat in ``medic_heartbeats_total`` by its normalised status."""
    upper = status.upper()
    HEARTBEATS.labels(status=upper if upper in KNOWN_STATUSES else "other").inc()


def heartbeat_record(
    *,
    service_ref: str | int,
    status: str = "UP",
    message: str = "",
    source: str = HeartbeatSource.V2,
    at: datetime | None = None,
) -> HeartbeatResult:
    """Store one heartbeat and move the service's deadline, atomically.

    The steady state on PostgreSQL (an active interval service with threshold 1 that is already
    up) is one statement, without the ORM: an UPDATE that moves the deadline and, in the same
    statement, the INSERT of the heartbeat row. Its WHERE clause is the precondition, and the
    UPDATE's row lock makes it safe against the sweep exactly like the SELECT ... FOR UPDATE of
    the general path: while the statement holds the row, the sweep (SKIP LOCKED) passes it by
    and later sees the new deadline; if the sweep marked the service down first, the statement
    waits for its lock, PostgreSQL re-checks the WHERE clause against the committed row, finds
    "down" and changes nothing. Everything else (unknown or inactive service, first beat,
    recovery, threshold > 1, other schedules, SQLite) takes the general path below: the row is
    locked for one short transaction while ``beat_apply`` decides.

    The statement's deadline is ``INTERVAL_DEADLINE_SQL``, the rule of ``deadline_compute`` for
    interval schedules (heartbeats.deadlines keeps both; tests/test_deadlines.py checks they agree
    for every schedule kind). Keep the statement to what ``beat_apply`` does for such a service.
    """
    now = at or timezone.now()
    unstorable = [
        name
        for name, text in (("status", status), ("message", message))
        if text and not storable(text)
    ]
    if unstorable:
        raise InvalidInput(
            fields={
                name: ["Must not contain NUL or unpaired surrogate characters."]
                for name in unstorable
            }
        )
    if connection.vendor == "postgresql":
        ref = str(service_ref)
        by_id = parse_id(ref) is not None  # else: service_get decides
        clean_status = (status or "").strip()[:MAX_STATUS_LEN] or "UP"  # as beat_apply
        fields = Service._meta.concrete_fields
        # Only model metadata is interpolated; every value is a bound parameter.
        sql = f"""
            WITH service AS (
                UPDATE {Service._meta.db_table}
                   SET last_status = %(status)s,
                       last_heartbeat_at = %(now)s,
                       next_deadline_at = {INTERVAL_DEADLINE_SQL}
                 WHERE {"id = %(id)s" if by_id else "lower(heartbeat_name) = %(name)s"}
                   AND active AND status = %(up)s AND threshold <= 1 AND schedule_kind = %(kind)s
             RETURNING *
            ), beat AS (
                INSERT INTO {Heartbeat._meta.db_table} (service_id, time, status, message, source)
                SELECT id, %(now)s, %(status)s, %(message)s, %(source)s FROM service
             RETURNING id
            )
            SELECT beat.id, {", ".join(f'service."{f.column}"' for f in fields)} FROM beat, service
        """  # noqa: S608
        params = {
            "id": int(ref) if by_id else None,
            "name": ref.lower(),
            **INTERVAL_DEADLINE_PARAMS,
            "now": now,
            "status": clean_status,
            "message": (message or "")[:MAX_MESSAGE_LEN],
            "source": source,
            "up": ServiceStatus.UP,
            "kind": ScheduleKind.INTERVAL,
        }
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is not None:
            values = list(row[1:])
            for i, field in enumerate(fields):
                if hasattr(field, "from_db_value"):  # what the ORM would apply when loading
                    values[i] = field.from_db_value(values[i], None, connection)
            service = Service.from_db(connection.alias, [f.attname for f in fields], values)
            heartbeat = Heartbeat.from_db(
                connection.alias,
                ["id", "service_id", "time", "status", "message", "source", "v1_id"],
                [row[0], service.pk, now, params["status"], params["message"], source, None],
            )
            heartbeat.service = service
            heartbeat_counted(clean_status)
            return HeartbeatResult(heartbeat=heartbeat, service=service, recovered=False)
    with transaction.atomic():
        service = service_get_active(service_ref)
        heartbeat, recovered = beat_apply(
            service=service, now=now, status=status, message=message, source=source
        )
    return HeartbeatResult(heartbeat=heartbeat, service=service, recovered=recovered)


def service_get_active(service_ref: str | int) -> Service:
    """The service, row-locked for the caller's transaction; refused when retired."""
    service = service_get(service_ref, for_update=True)
    if not service.active:
        raise Conflict(
            f"Service '{service.heartbeat_name}' is inactive; heartbeats are refused.",
            code="service_inactive",
        )
    return service


def beat_apply(
    *,
    service: Service,
    now: datetime,
    status: str,
    message: str = "",
    source: str = HeartbeatSource.V2,
    moves_deadline: bool = True,
    may_recover: bool = True,
) -> tuple[Heartbeat, bool]:
    """Insert a heartbeat row for a locked service and, unless told otherwise, move its deadline
    and bring it up. Returns the row and whether the service recovered from down."""
    status = (status or "").strip()[:MAX_STATUS_LEN] or "UP"
    heartbeat = Heartbeat.objects.create(
        service=service,
        time=now,
        status=status,
        message=(message or "")[:MAX_MESSAGE_LEN],
        source=source,
    )
    service.last_status = status
    fields = ["last_status"]
    previous = service.status
    if moves_deadline:
        service.last_heartbeat_at = now
        nth = now if service.threshold <= 1 else nth_recent_heartbeat_at(service)
        service.next_deadline_at = deadline_compute(service=service, nth_recent_at=nth)
        fields += ["last_heartbeat_at", "next_deadline_at"]
        if may_recover and deadline_met(
            deadline=service.next_deadline_at, nth_recent_at=nth, now=now
        ):
            status_set(service, ServiceStatus.UP, fields, at=now)
    service.save(update_fields=fields)
    recovered = previous == ServiceStatus.DOWN and service.status == ServiceStatus.UP
    heartbeat_counted(status)
    return heartbeat, recovered


def heartbeats_prune(*, older_than_days: int | None = None, batch: int = 5000) -> int:
    """Delete heartbeat rows past retention in bounded batches (no long locks)."""
    days = (
        older_than_days if older_than_days is not None else settings.MEDIC_HEARTBEAT_RETENTION_DAYS
    )
    cutoff = timezone.now() - timedelta(days=days)
    total = 0
    while True:
        ids = list(Heartbeat.objects.filter(time__lt=cutoff).values_list("id", flat=True)[:batch])
        if not ids:
            return total
        total += Heartbeat.objects.filter(id__in=ids).delete()[0]


# --- Service configuration --------------------------------------------------------------------


def _validate(service: Service) -> None:
    errors: dict[str, list[str]] = {}
    if not service.heartbeat_name or not service.heartbeat_name.strip():
        errors["heartbeat_name"] = ["A heartbeat name is required."]
    elif name_problem(service.heartbeat_name):
        errors["heartbeat_name"] = [name_problem(service.heartbeat_name)]
    if service.alert_interval is None or not service.alert_interval > 0:
        errors["alert_interval"] = ["Must be a positive number of minutes."]
    elif _out_of_range(service.alert_interval, 0, MAX_ALERT_INTERVAL_MINUTES):
        errors["alert_interval"] = [f"At most {MAX_ALERT_INTERVAL_MINUTES} minutes."]
    if _out_of_range(service.threshold, 1, MAX_THRESHOLD):
        errors["threshold"] = [f"Must be from 1 to {MAX_THRESHOLD}."]
    if _out_of_range(service.grace_period_seconds, 0, MAX_GRACE_SECONDS):
        errors["grace_period_seconds"] = [f"Must be from 0 to {MAX_GRACE_SECONDS} seconds."]
    if service.max_duration_seconds is not None and _out_of_range(
        service.max_duration_seconds, 1, MAX_RUN_SECONDS
    ):
        errors["max_duration_seconds"] = [f"Must be from 1 to {MAX_RUN_SECONDS} seconds."]
    if service.priority not in Priority.values:
        errors["priority"] = [f"Must be one of {', '.join(Priority.values)}."]
    if service.schedule_kind not in ScheduleKind.values:
        errors["schedule_kind"] = [f"Must be one of {', '.join(ScheduleKind.values)}."]
    try:
        validate_timezone(service.schedule_timezone)
    except TimezoneError as exc:
        errors["schedule_timezone"] = [str(exc)]
    if service.schedule_kind == ScheduleKind.CRON:
        try:
            service.cron_expression = cron.validate_cron(service.cron_expression)
        except cron.CronError as exc:
            errors["cron_expression"] = [str(exc)]
        if service.threshold != 1:
            errors["threshold"] = ["Cron services expect one beat per fire time: leave it at 1."]
    elif service.cron_expression:
        errors["cron_expression"] = ["Only for schedule_kind 'cron'."]
    if _out_of_range(service.failure_threshold, 1, MAX_FAILURE_THRESHOLD):
        errors["failure_threshold"] = [f"Must be from 1 to {MAX_FAILURE_THRESHOLD}."]
    if service.slow_run_factor is not None and (
        _out_of_range(service.slow_run_factor, 1, MAX_SLOW_RUN_FACTOR)
        or service.slow_run_factor == 1
    ):
        errors["slow_run_factor"] = [
            f"Must be more than 1 and at most {MAX_SLOW_RUN_FACTOR} (a multiple of the p95 "
            "duration)."
        ]
    if errors:
        raise InvalidInput(fields=errors)
    try:
        service.full_clean(validate_unique=False, validate_constraints=False)
    except Exception as exc:  # django ValidationError -> our envelope
        from medic.errors import to_medic_error

        raise to_medic_error(exc) from exc


def cron_period_minutes(expression: str, timezone_name: str) -> float:
    """Minutes between two fire times: the default re-notify interval of a cron service."""
    zone = ZoneInfo(timezone_name)
    first = cron.next_fire_after(expression, zone, timezone.now())
    second = cron.next_fire_after(expression, zone, first)
    return max((second - first).total_seconds() / 60, 1.0)


def service_create(*, actor: str = "system", **fields) -> Service:
    if not fields.get("service_name"):
        fields["service_name"] = fields.get("heartbeat_name") or ""
    if fields.get("schedule_kind") == ScheduleKind.CRON and not fields.get("alert_interval"):
        try:
            fields["alert_interval"] = cron_period_minutes(
                cron.validate_cron(fields.get("cron_expression", "")),
                validate_timezone(fields.get("schedule_timezone", "UTC")).key,
            )
        except (cron.CronError, TimezoneError):
            fields["alert_interval"] = 60.0  # _validate reports the real problem
    service = Service(**fields)
    now = timezone.now()
    service.date_added = service.date_modified = now
    _validate(service)
    service.next_deadline_at = deadline_compute(service=service, nth_recent_at=None)
    if not service.active:
        service.status = ServiceStatus.PAUSED
    try:
        with transaction.atomic():
            service.save()
            AuditEvent.objects.create(
                actor=actor,
                event="service.created",
                object_type="service",
                object_id=str(service.pk),
                details={"heartbeat_name": service.heartbeat_name},
            )
    except IntegrityError as exc:
        raise Conflict(
            f"A service named '{service.heartbeat_name}' already exists.",
            code="service_exists",
            fields={"heartbeat_name": ["Already registered (names are case-insensitive)."]},
        ) from exc
    return service


def service_update(*, service_ref: str | int, actor: str = "system", **changes) -> Service:
    """Partial update. Deadline-relevant changes recompute ``next_deadline_at`` at once."""
    with transaction.atomic():
        service = service_get(service_ref, for_update=True)
        fields: list[str] = []
        for name, value in changes.items():
            if name in ("active", "muted", "down", "mute_reason", "mute_until"):
                continue
            if getattr(service, name) != value:
                setattr(service, name, value)
                fields.append(name)
        if "active" in changes and changes["active"] != service.active:
            _set_active(service, changes["active"], fields)
        _validate(service)
        if fields:
            if service.active and service.status != ServiceStatus.DOWN:
                service.next_deadline_at = deadline_compute(
                    service=service, nth_recent_at=nth_recent_heartbeat_at(service)
                )
                fields.append("next_deadline_at")
            service.date_modified = timezone.now()
            fields.append("date_modified")
            service.save(update_fields=sorted(set(fields)))
            AuditEvent.objects.create(
                actor=actor,
                event="service.updated",
                object_type="service",
                object_id=str(service.pk),
                details={"changed": sorted(set(fields) - {"date_modified", "next_deadline_at"})},
            )
        if "muted" in changes:
            if changes["muted"] and not service.muted:
                service = service_mute(
                    service_ref=service.pk, reason=changes.get("mute_reason") or "", actor=actor
                )
            elif not changes["muted"] and service.muted:
                service = service_unmute(service_ref=service.pk, actor=actor)
        if "down" in changes:
            service = _force_down_flag(service, bool(changes["down"]))
    return service


def _set_active(service: Service, active: bool, fields: list[str]) -> None:
    service.active = active
    fields.append("active")
    if active:
        # A reactivated service gets one full interval before it can be overdue again.
        service.date_added = timezone.now()
        fields.append("date_added")
        status_set(service, ServiceStatus.NEW, fields)
    else:
        status_set(service, ServiceStatus.PAUSED, fields)
        service_event(service, EventKind.SERVICE_DEACTIVATED)


def _force_down_flag(service: Service, down: bool) -> Service:
    """v1 let clients set ``down``. Setting 0 on a down service marks it up and resolves its
    alert (the next missed deadline opens a new one); setting 1 is left to the sweep, which
    is the only writer of "down" so every down has its alert."""
    if down or service.status != ServiceStatus.DOWN:
        return service
    fields: list[str] = []
    status_set(service, ServiceStatus.UP, fields)
    # As if it had just beaten: the deadline rule of its schedule from now.
    service.next_deadline_at = deadline_compute(service=service, nth_recent_at=timezone.now())
    service.save(update_fields=[*fields, "next_deadline_at"])
    return service


def service_delete(*, service_ref: str | int, actor: str = "system") -> None:
    with transaction.atomic():
        service = service_get(service_ref, for_update=True)
        AuditEvent.objects.create(
            actor=actor,
            event="service.deleted",
            object_type="service",
            object_id=str(service.pk),
            details={"heartbeat_name": service.heartbeat_name},
        )
        service_event(service, EventKind.SERVICE_DELETED)
        service.delete()


# --- Mute -------------------------------------------------------------------------------------


def service_mute(
    *,
    service_ref: str | int,
    reason: str = "",
    duration: timedelta | None = None,
    actor: str = "system",
) -> Service:
    if duration is None:
        duration = timedelta(hours=settings.MEDIC_DEFAULT_MUTE_HOURS)
    if duration <= timedelta(0):
        raise InvalidInput(fields={"duration": ["Must be positive."]})
    if duration > MAX_MUTE:
        raise InvalidInput(fields={"duration": [f"At most {MAX_MUTE.days} days."]})
    now = timezone.now()
    with transaction.atomic():
        service = service_get(service_ref, for_update=True)
        service.muted = True
        service.mute_reason = (reason or "")[:500]
        service.mute_until = now + duration
        service.muted_by = actor
        service.date_muted = now
        service.save(update_fields=["muted", "mute_reason", "mute_until", "muted_by", "date_muted"])
        AuditEvent.objects.create(
            actor=actor,
            event="service.muted",
            object_type="service",
            object_id=str(service.pk),
            details={"reason": service.mute_reason, "until": service.mute_until.isoformat()},
        )
        service_event(
            service,
            EventKind.SERVICE_MUTED,
            {"reason": service.mute_reason, "until": _iso(service.mute_until), "by": actor},
        )
    return service


def service_unmute(
    *, service_ref: str | int, actor: str = "system", at: datetime | None = None
) -> Service:
    """Lift a mute (service.unmuted: alerting then sends an alert the mute held back)."""
    with transaction.atomic():
        service = service_get(service_ref, for_update=True)
        if not service.muted:
            return service
        service.muted = False
        service.mute_until = None
        service.mute_reason = ""
        service.muted_by = ""
        service.save(update_fields=["muted", "mute_until", "mute_reason", "muted_by"])
        AuditEvent.objects.create(
            actor=actor, event="service.unmuted", object_type="service", object_id=str(service.pk)
        )
        service_event(service, EventKind.SERVICE_UNMUTED, {"by": actor}, at=at)
    return service
