"""Import a Medic v1 database into v2 (``manage.py import_v1``, docs/migrating-from-v1.md).

v1 kept everything in one PostgreSQL schema (``medic``): ``services``, ``"heartbeatEvents"`` and
``alerts``. It is read with psycopg directly, in one read-only REPEATABLE READ transaction, so the
three tables are one consistent snapshot even while v1 keeps running.

Idempotent by construction, so it can run once for a rehearsal and again just before the cut-over:
services are matched by heartbeat name regardless of case and only differing fields are written;
heartbeats and alerts carry their v1 id in the unique ``v1_id`` column and are inserted only when
missing. A second run over the same data writes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from alerting.models import Alert, AlertReason, AlertState
from alerting.services import dedup_key_for, renotify_delay
from heartbeats.deadlines import deadline_compute, deadline_met
from heartbeats.models import Heartbeat, HeartbeatSource, Priority, Service, ServiceStatus
from heartbeats.selectors import nth_recent_heartbeat_at
from heartbeats.services import MAX_STATUS_LEN
from medic.models import AuditEvent

logger = logging.getLogger(__name__)

ACTOR = "cli:import_v1"
TABLES = ("services", "heartbeatEvents", "alerts")
# Configuration v1 owns: an existing v2 service is brought in line with v1 on these only.
CONFIG_FIELDS = (
    "service_name",
    "active",
    "alert_interval",
    "threshold",
    "team",
    "priority",
    "runbook",
)
_MAX_WARNINGS = 50


class V1ImportError(Exception):
    """The import cannot start or go on (bad DSN, missing schema or table); nothing is half-done
    beyond what a re-run completes."""


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
            f"skipped {self.skipped}"
        )


@dataclass
class ImportSummary:
    dry_run: bool
    services: Counts = field(default_factory=Counts)
    heartbeats: Counts = field(default_factory=Counts)
    alerts: Counts = field(default_factory=Counts)
    # Services whose derived state (last heartbeat, status, deadline) had to change.
    recomputed: int = 0
    warnings: list[str] = field(default_factory=list)
    omitted_warnings: int = 0

    @property
    def changed(self) -> bool:
        return self.recomputed > 0 or any(
            c.created or c.updated for c in (self.services, self.heartbeats, self.alerts)
        )

    def warn(self, message: str) -> None:
        if len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.omitted_warnings += 1


# --- Reading v1 -------------------------------------------------------------------------------


def _connect(dsn: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(dsn, connect_timeout=10, row_factory=dict_row)
    except psycopg.Error as exc:
        raise V1ImportError(f"Cannot connect to the v1 database: {exc}".strip()) from exc
    # One snapshot for all three tables; read-only so a mistake cannot touch v1.
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


def _check_schema(conn: psycopg.Connection, schema: str) -> None:
    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if found is None:
        raise V1ImportError(
            f"Schema '{schema}' does not exist in the v1 database (v1 uses 'medic'; pass "
            "--schema if yours differs)."
        )
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm')",
        (schema, list(TABLES)),
    ).fetchall()
    missing = sorted(set(TABLES) - {r["relname"] for r in rows})
    if missing:
        raise V1ImportError(
            f"Schema '{schema}' lacks the v1 table(s) {', '.join(missing)}: is this a Medic v1 "
            "database?"
        )


def _query(schema: str, template: str) -> sql.Composed:
    return sql.SQL(template).format(
        services=sql.Identifier(schema, "services"),
        heartbeats=sql.Identifier(schema, "heartbeatEvents"),
        alerts=sql.Identifier(schema, "alerts"),
    )


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value.strip())
        if value is None:
            return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value
    return None


def _flag(value: Any) -> bool:
    return bool(value) and str(value).strip().lower() not in {"0", "false", "f", "no", ""}


# --- Services ---------------------------------------------------------------------------------


def _desired(row: dict[str, Any], now: datetime, summary: ImportSummary) -> dict[str, Any] | None:
    """v2 field values for one v1 service row, or None when it cannot be imported."""
    name = (row["heartbeat_name"] or "").strip()
    label = f"v1 service {row['service_id']} ({name or 'no name'})"
    if not name or len(name) > 255:
        summary.warn(f"{label}: skipped, the heartbeat name is empty or over 255 characters.")
        return None
    try:
        interval = float(row["alert_interval"])
    except (TypeError, ValueError):
        interval = 0.0
    if not interval > 0:
        summary.warn(f"{label}: skipped, alert_interval {row['alert_interval']!r} is not positive.")
        return None
    priority = (row["priority"] or "p3").strip().lower()
    if priority not in Priority.values:
        summary.warn(f"{label}: priority {row['priority']!r} is not p1..p5; imported as p3.")
        priority = "p3"
    threshold = row["threshold"] if isinstance(row["threshold"], int) else 1
    if threshold < 1:
        summary.warn(f"{label}: threshold {row['threshold']!r} raised to 1.")
        threshold = 1
    muted = _flag(row["muted"])
    muted_at = _aware(row["date_muted"])
    mute_until = (muted_at or now) + timedelta(hours=settings.MEDIC_DEFAULT_MUTE_HOURS)
    if muted and mute_until <= now:
        muted = False  # v1 would have unmuted it by now
    return {
        "heartbeat_name": name,
        "service_name": (row["service_name"] or "").strip() or name,
        "active": _flag(row["active"]),
        "alert_interval": interval,
        "threshold": threshold,
        "team": (row["team"] or "").strip() or "site-reliability",
        "priority": priority,
        "runbook": row["runbook"] or "",
        "muted": muted,
        "mute_until": mute_until,
        "date_muted": muted_at or now,
        "date_added": _aware(row["date_added"]) or now,
        "date_modified": _aware(row["date_modified"]) or _aware(row["date_added"]) or now,
    }


def _apply_mute(service: Service, desired: dict[str, Any]) -> list[str]:
    """Follow v1's mute flag. The mute's end is set only when the flag flips, so a re-run leaves
    a running mute alone."""
    if desired["muted"] == service.muted:
        return []
    service.muted = desired["muted"]
    if service.muted:
        service.mute_until = desired["mute_until"]
        service.date_muted = desired["date_muted"]
        service.muted_by = ACTOR
        service.mute_reason = "muted in Medic v1"
    else:
        service.mute_until = None
        service.muted_by = ""
        service.mute_reason = ""
    return ["muted", "mute_until", "date_muted", "muted_by", "mute_reason"]


def _import_services(
    rows: list[dict[str, Any]], now: datetime, summary: ImportSummary
) -> dict[int, Service]:
    """Create or align v2 services; returns v1 service_id -> v2 service."""
    by_name = {s.heartbeat_name.lower(): s for s in Service.objects.all()}
    first_v1_id: dict[str, int] = {}
    mapping: dict[int, Service] = {}
    for row in rows:
        desired = _desired(row, now, summary)
        if desired is None:
            summary.services.skipped += 1
            continue
        key = desired["heartbeat_name"].lower()
        if key in first_v1_id:
            # v1 compared names exactly, so it could hold "Api" and "api"; v2 cannot.
            summary.warn(
                f"v1 service {row['service_id']} ({desired['heartbeat_name']}) differs only by "
                f"case from v1 service {first_v1_id[key]}: its heartbeats and alerts are merged "
                "into that one."
            )
            if key in by_name:
                mapping[row["service_id"]] = by_name[key]
            summary.services.skipped += 1
            continue
        first_v1_id[key] = row["service_id"]
        service = by_name.get(key)
        try:
            if service is None:
                service = Service(
                    heartbeat_name=desired["heartbeat_name"],
                    date_added=desired["date_added"],
                    date_modified=desired["date_modified"],
                    **{name: desired[name] for name in CONFIG_FIELDS},
                )
                service.status = ServiceStatus.NEW if service.active else ServiceStatus.PAUSED
                _apply_mute(service, desired)
                service.next_deadline_at = deadline_compute(service=service, nth_recent_at=None)
                service.full_clean(validate_unique=False, validate_constraints=False)
                service.save()
                by_name[key] = service
                summary.services.created += 1
            else:
                changed = [f for f in CONFIG_FIELDS if getattr(service, f) != desired[f]]
                for name in changed:
                    setattr(service, name, desired[name])
                changed += _apply_mute(service, desired)
                if changed:
                    service.date_modified = now
                    service.full_clean(validate_unique=False, validate_constraints=False)
                    service.save(update_fields=[*changed, "date_modified"])
                    summary.services.updated += 1
                else:
                    summary.services.unchanged += 1
        except ValidationError as exc:
            summary.warn(f"v1 service {row['service_id']} ({key}): not written, {exc.messages}.")
            summary.services.skipped += 1
            if service.pk is None:
                continue
            service.refresh_from_db()  # keep the existing service, unchanged
        mapping[row["service_id"]] = service
    return mapping


# --- Heartbeats -------------------------------------------------------------------------------


def _heartbeat_batches(
    conn: psycopg.Connection, schema: str, since: datetime | None, batch_size: int
) -> Iterator[list[tuple]]:
    query = "SELECT heartbeat_id, service_id, time, status FROM {heartbeats}"
    params: tuple = ()
    if since is not None:
        query += " WHERE time >= %s"
        params = (since,)
    query += " ORDER BY heartbeat_id"
    # A server-side cursor streams the table: a million rows never sit in memory at once.
    with conn.cursor(name="medic_import_heartbeats", row_factory=tuple_row) as cur:
        cur.itersize = batch_size
        cur.execute(_query(schema, query), params)
        while rows := cur.fetchmany(batch_size):
            yield rows


def _import_heartbeats(
    conn: psycopg.Connection,
    schema: str,
    mapping: dict[int, Service],
    since: datetime | None,
    batch_size: int,
    summary: ImportSummary,
    progress: Callable[[str], None] | None,
) -> None:
    orphans: set[int] = set()
    read = 0
    for rows in _heartbeat_batches(conn, schema, since, batch_size):
        read += len(rows)
        ids = [r[0] for r in rows]
        existing = set(
            Heartbeat.objects.filter(v1_id__gte=min(ids), v1_id__lte=max(ids)).values_list(
                "v1_id", flat=True
            )
        )
        new: list[Heartbeat] = []
        for heartbeat_id, service_id, at, status in rows:
            if heartbeat_id in existing:
                summary.heartbeats.unchanged += 1
                continue
            service = mapping.get(service_id)
            at = _aware(at)
            if service is None or at is None:
                orphans.add(service_id)
                summary.heartbeats.skipped += 1
                continue
            new.append(
                Heartbeat(
                    service_id=service.pk,
                    time=at,
                    status=(status or "")[:MAX_STATUS_LEN],
                    source=HeartbeatSource.IMPORT,
                    v1_id=heartbeat_id,
                )
            )
        # ignore_conflicts: a concurrent run inserting the same v1 ids is not an error.
        Heartbeat.objects.bulk_create(new, batch_size=batch_size, ignore_conflicts=True)
        summary.heartbeats.created += len(new)
        if progress is not None and read % (batch_size * 20) < batch_size:
            progress(f"heartbeats: {read} read, {summary.heartbeats.created} created")
    if orphans:
        summary.warn(
            f"{summary.heartbeats.skipped} heartbeat(s) of {len(orphans)} v1 service id(s) that "
            "were not imported (unknown or skipped service, or no time) were skipped."
        )


# --- Alerts -----------------------------------------------------------------------------------


def _import_alerts(
    rows: list[dict[str, Any]],
    mapping: dict[int, Service],
    reported: set[int],
    now: datetime,
    summary: ImportSummary,
) -> None:
    imported = {a.v1_id: a for a in Alert.objects.filter(v1_id__in=[r["alert_id"] for r in rows])}
    open_services = set(
        Alert.objects.filter(state=AlertState.OPEN).values_list("service_id", flat=True)
    )
    # v1 allowed several active alerts per service; v2 allows one (a partial unique index). The
    # newest stays open, the others arrive resolved.
    newest_open: dict[int, tuple] = {}
    for row in rows:
        service = mapping.get(row["service_id"])
        if service is not None and _flag(row["active"]) and row["alert_id"] not in imported:
            rank = (_aware(row["created_date"]) or now, row["alert_id"])
            if service.pk not in newest_open or rank > newest_open[service.pk]:
                newest_open[service.pk] = rank
    new: list[Alert] = []
    orphans = 0
    for row in rows:
        service = mapping.get(row["service_id"])
        if service is None:
            orphans += 1
            summary.alerts.skipped += 1
            continue
        opened_at = _aware(row["created_date"]) or _aware(row["closed_date"]) or now
        closed_at = _aware(row["closed_date"])
        cycle = row["alert_cycle"] if isinstance(row["alert_cycle"], int) else 0
        existing = imported.get(row["alert_id"])
        if existing is not None:
            if not _flag(row["active"]) and existing.state == AlertState.OPEN:
                # Closed in v1 since the previous run: follow it (v1 sent the recovery itself).
                existing.state = AlertState.RESOLVED
                existing.resolved_at = closed_at or now
                existing.next_notify_at = None
                existing.notify_count = max(existing.notify_count, cycle)
                existing.save(
                    update_fields=["state", "resolved_at", "next_notify_at", "notify_count"]
                )
                open_services.discard(existing.service_id)
                summary.alerts.updated += 1
            else:
                summary.alerts.unchanged += 1
            continue
        is_open = (
            _flag(row["active"])
            and newest_open.get(service.pk, (None, None))[1] == row["alert_id"]
            and service.pk not in open_services
        )
        if is_open:
            open_services.add(service.pk)
        new.append(
            Alert(
                service=service,
                # v1's key, so resolving here resolves the PagerDuty incident v1 opened.
                dedup_key=(row["external_reference_id"] or "")[:300]
                or dedup_key_for(service.heartbeat_name),
                state=AlertState.OPEN if is_open else AlertState.RESOLVED,
                reason=(
                    AlertReason.MISSED_HEARTBEAT
                    if service.pk in reported
                    else AlertReason.NEVER_REPORTED
                ),
                priority=service.priority,
                summary=(row["alert_name"] or f"Heartbeat failure for {service.heartbeat_name}")[
                    :500
                ],
                opened_at=opened_at,
                resolved_at=None if is_open else (closed_at or opened_at),
                notify_count=max(cycle, 0),
                last_notified_at=opened_at if is_open and cycle > 0 else None,
                # v1 already notified: the next round is one re-notify delay away.
                next_notify_at=now + renotify_delay(service) if is_open else None,
                external_reference_id=(row["external_reference_id"] or "")[:300],
                v1_id=row["alert_id"],
            )
        )
    Alert.objects.bulk_create(new, ignore_conflicts=True)
    # ON CONFLICT DO NOTHING also swallows the one-open-alert index: an alert the sweep opened
    # meanwhile would silently drop ours, so what did not land is inserted again, resolved.
    landed = set(
        Alert.objects.filter(v1_id__in=[a.v1_id for a in new]).values_list("v1_id", flat=True)
    )
    retry = [a for a in new if a.v1_id not in landed and a.state == AlertState.OPEN]
    for alert in retry:
        alert.pk = None
        alert.state = AlertState.RESOLVED
        alert.resolved_at = alert.opened_at
        alert.next_notify_at = None
    Alert.objects.bulk_create(retry, ignore_conflicts=True)
    summary.alerts.created += len(new)
    if orphans:
        summary.warn(f"{orphans} alert(s) of v1 services that were not imported were skipped.")


# --- Derived state ----------------------------------------------------------------------------


def _recompute(
    service_ids: set[int], v1_last: dict[int, tuple[datetime, str]], now: datetime
) -> int:
    """Bring last_heartbeat_at, status and next_deadline_at in line with the imported history:
    up with enough recent heartbeats, down with an open alert, new otherwise (paused if
    inactive). Returns how many services changed."""
    open_services = set(
        Alert.objects.filter(state=AlertState.OPEN, service_id__in=service_ids).values_list(
            "service_id", flat=True
        )
    )
    changed = 0
    for pk in sorted(service_ids):
        with transaction.atomic():
            # Locked like heartbeat_record does: a live heartbeat cannot interleave.
            service = Service.objects.select_for_update().get(pk=pk)
            before = (
                service.last_heartbeat_at,
                service.last_status,
                service.status,
                service.next_deadline_at,
            )
            last = v1_last.get(pk)
            if last is not None and (
                service.last_heartbeat_at is None or last[0] > service.last_heartbeat_at
            ):
                service.last_heartbeat_at = last[0]
                service.last_status = (last[1] or "")[:MAX_STATUS_LEN]
            nth = nth_recent_heartbeat_at(service)
            service.next_deadline_at = deadline_compute(service=service, nth_recent_at=nth)
            if not service.active:
                service.status = ServiceStatus.PAUSED
            elif deadline_met(deadline=service.next_deadline_at, nth_recent_at=nth, now=now):
                service.status = ServiceStatus.UP
            elif pk in open_services:
                service.status = ServiceStatus.DOWN
            else:
                # Due at once if its deadline has passed: the sweep then alerts as v1 would.
                service.status = ServiceStatus.NEW
            after = (
                service.last_heartbeat_at,
                service.last_status,
                service.status,
                service.next_deadline_at,
            )
            if after != before:
                service.save(
                    update_fields=["last_heartbeat_at", "last_status", "status", "next_deadline_at"]
                )
                changed += 1
    return changed


def _v1_last_heartbeats(
    conn: psycopg.Connection, schema: str, mapping: dict[int, Service]
) -> dict[int, tuple[datetime, str]]:
    """Newest v1 heartbeat per v2 service, over all of v1's history (not only what is copied)."""
    latest: dict[int, tuple[datetime, str]] = {}
    rows = conn.execute(
        _query(
            schema,
            "SELECT DISTINCT ON (service_id) service_id, time, status FROM {heartbeats} "
            "ORDER BY service_id, time DESC, heartbeat_id DESC",
        )
    ).fetchall()
    for row in rows:
        service = mapping.get(row["service_id"])
        at = _aware(row["time"])
        if service is None or at is None:
            continue
        if service.pk not in latest or at > latest[service.pk][0]:
            latest[service.pk] = (at, row["status"] or "")
    return latest


# --- Entry point ------------------------------------------------------------------------------


def v1_import(
    *,
    dsn: str,
    schema: str = "medic",
    dry_run: bool = False,
    heartbeat_days: int | None = None,
    batch_size: int = 5000,
    progress: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Import v1's services, heartbeats and alerts. ``heartbeat_days`` limits the heartbeats
    copied to that many recent days (default: the retention, MEDIC_HEARTBEAT_RETENTION_DAYS;
    0 copies all); older ones would only be pruned again."""
    summary = ImportSummary(dry_run=dry_run)
    now = timezone.now()
    days = settings.MEDIC_HEARTBEAT_RETENTION_DAYS if heartbeat_days is None else heartbeat_days
    since = now - timedelta(days=days) if days and days > 0 else None
    conn = _connect(dsn)
    try:
        try:
            _check_schema(conn, schema)
            services = conn.execute(
                _query(
                    schema,
                    "SELECT service_id, heartbeat_name, service_name, active, alert_interval, "
                    "threshold, team, priority, muted, down, runbook, date_added, date_modified, "
                    "date_muted FROM {services} ORDER BY service_id",
                )
            ).fetchall()
            alerts = conn.execute(
                _query(
                    schema,
                    "SELECT alert_id, alert_name, service_id, active, external_reference_id, "
                    "alert_cycle, created_date, closed_date FROM {alerts} ORDER BY alert_id",
                )
            ).fetchall()
            # A dry run does everything inside one transaction that is rolled back, so its
            # summary is exactly what the real run would report.
            outer = transaction.atomic() if dry_run else contextlib.nullcontext()
            with outer:
                with transaction.atomic():
                    mapping = _import_services(services, now, summary)
                if progress is not None:
                    progress(f"services: {summary.services}")
                _import_heartbeats(conn, schema, mapping, since, batch_size, summary, progress)
                v1_last = _v1_last_heartbeats(conn, schema, mapping)
                with transaction.atomic():
                    _import_alerts(alerts, mapping, set(v1_last), now, summary)
                summary.recomputed = _recompute({s.pk for s in mapping.values()}, v1_last, now)
                if summary.changed:
                    AuditEvent.objects.create(
                        actor=ACTOR,
                        event="v1.imported",
                        object_type="import",
                        details={
                            "schema": schema,
                            "services": vars(summary.services),
                            "heartbeats": vars(summary.heartbeats),
                            "alerts": vars(summary.alerts),
                            "recomputed": summary.recomputed,
                        },
                    )
                if dry_run:
                    transaction.set_rollback(True)
        except psycopg.Error as exc:
            raise V1ImportError(f"Reading the v1 database failed: {exc}".strip()) from exc
    finally:
        conn.close()
    return summary
