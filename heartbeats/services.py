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

from alerting.schedules import ScheduleError, validate_timezone
from heartbeats import cron
from heartbeats.models import (
    Heartbeat,
    HeartbeatSource,
    Priority,
    ScheduleKind,
    Service,
    ServiceStateChange,
    ServiceStatus,
)
from medic.enqueue import enqueue_on_commit
from medic.errors import Conflict, InvalidInput, NotFound
from medic.ids import looks_like_id, parse_id
from medic.metrics import HEARTBEATS
from medic.models import AuditEvent
from medic.text import storable

# Statuses counted with their own label in medic_heartbeats_total; any other free text (v1
# allowed anything) is counted as "other" so label cardinality stays bounded.
KNOWN_STATUSES = frozenset({"UP", "DOWN", "DEGRADED", "OK", "FAIL", "WARN"})
MAX_STATUS_LEN = 32
MAX_MESSAGE_LEN = 1000

# Documented maxima of a service's numbers (docs/api.md#limits). _validate enforces them on
# every write; the places that compute with stored values clamp to them too (bounded()), so a
# value stored before a bound existed, or edited in the database, cannot make a request fail.
MAX_ALERT_INTERVAL_MINUTES = 60 * 24 * 3660  # about ten years: deadlines stay representable
MAX_THRESHOLD = 10_000
MAX_GRACE_SECONDS = 7 * 86400
MAX_RUN_SECONDS = 30 * 86400  # max_duration_seconds
MAX_FAILURE_THRESHOLD = 1_000
MAX_SLOW_RUN_FACTOR = 1_000
MAX_MUTE = timedelta(days=90)


def bounded(value: float, high: float) -> float:
    """A stored number as computations may use it: within [0, high], NaN read as high."""
    return min(max(value, 0), high) if math.isfinite(value) else high


def _out_of_range(value, low: float, high: float) -> bool:
    return value is None or not math.isfinite(value) or not low <= value <= high


# --- Deadlines --------------------------------------------------------------------------------


# A beat this long (at most) before a cron fire time counts for that fire time: clocks drift
# and schedulers start jobs a little early. Bounded by the grace period and half the period.
CRON_EARLY_TOLERANCE = timedelta(minutes=5)


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


def _nth_recent_heartbeat_at(service: Service) -> datetime | None:
    if service.threshold <= 1:
        return service.last_heartbeat_at
    times = list(
        Heartbeat.objects.filter(service=service, time__gte=service.date_added)
        .order_by("-time")
        .values_list("time", flat=True)[service.threshold - 1 : service.threshold]
    )
    return times[0] if times else None


def status_set(service: Service, new_status: str, update_fields: list[str]) -> None:
    if service.status == new_status:
        return
    ServiceStateChange.objects.create(
        service=service, from_status=service.status, to_status=new_status
    )
    service.status = new_status
    update_fields.append("status")


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

    The statement's deadline is ``deadline_compute`` for interval schedules: the beat time plus
    ``alert_interval`` minutes plus the grace period (bench/ingest/contract.py checks that both
    agree). Keep the two together, and keep it to what ``beat_apply`` does for such a service.
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
                       next_deadline_at = %(now)s
                           + make_interval(secs => LEAST(alert_interval, %(max_interval)s) * 60)
                           + make_interval(secs => LEAST(grace_period_seconds, %(max_grace)s))
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
            "max_interval": MAX_ALERT_INTERVAL_MINUTES,
            "max_grace": MAX_GRACE_SECONDS,
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
            upper = clean_status.upper()
            HEARTBEATS.labels(status=upper if upper in KNOWN_STATUSES else "other").inc()
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
        nth = now if service.threshold <= 1 else _nth_recent_heartbeat_at(service)
        service.next_deadline_at = deadline_compute(service=service, nth_recent_at=nth)
        fields += ["last_heartbeat_at", "next_deadline_at"]
        if may_recover and nth is not None and service.next_deadline_at > now:
            status_set(service, ServiceStatus.UP, fields)
    service.save(update_fields=fields)
    recovered = previous == ServiceStatus.DOWN and service.status == ServiceStatus.UP
    if recovered:
        from heartbeats.tasks import process_state_changes

        enqueue_on_commit(process_state_changes)
    upper = status.upper()
    HEARTBEATS.labels(status=upper if upper in KNOWN_STATUSES else "other").inc()
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
    elif looks_like_id(service.heartbeat_name):
        errors["heartbeat_name"] = ["Must not be only digits (it would be mistaken for an id)."]
    elif "/" in service.heartbeat_name:
        errors["heartbeat_name"] = ["Must not contain '/'."]
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
    except ScheduleError as exc:
        errors["schedule_timezone"] = exc.fields.get("timezone", [str(exc)])
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
        except (cron.CronError, ScheduleError):
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
                    service=service, nth_recent_at=_nth_recent_heartbeat_at(service)
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
        from alerting.services import alert_close_for_service

        transaction.on_commit(lambda: alert_close_for_service(service_id=service.pk))


def _force_down_flag(service: Service, down: bool) -> Service:
    """v1 let clients set ``down``. Setting 0 on a down service marks it up and resolves its
    alert (the next missed deadline opens a new one); setting 1 is left to the sweep, which
    is the only writer of "down" so every down has its alert."""
    if down or service.status != ServiceStatus.DOWN:
        return service
    fields: list[str] = []
    status_set(service, ServiceStatus.UP, fields)
    service.next_deadline_at = timezone.now() + timedelta(
        minutes=service.alert_interval, seconds=service.grace_period_seconds
    )
    service.save(update_fields=[*fields, "next_deadline_at"])
    from heartbeats.tasks import process_state_changes

    enqueue_on_commit(process_state_changes)
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
    return service


def service_unmute(*, service_ref: str | int, actor: str = "system") -> Service:
    """Lift a mute. An alert that opened while muted is notified now (it was only held back)."""
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
        from alerting.services import alert_release_held

        alert_release_held(service=service)
    return service
