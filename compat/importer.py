"""Import a Medic v1 database into v2 (``manage.py import_v1``, docs/migrating-from-v1.md).

v1 kept everything in one PostgreSQL schema (``medic``): ``services``, ``"heartbeatEvents"`` and
``alerts`` in every version, and from v1 HEAD's migrations on teams, schedules, targets, webhooks,
job runs, windows, secrets, API keys, scripts, playbooks and the remediation history. It is read
with psycopg directly, in one read-only REPEATABLE READ transaction, so all tables are one
consistent snapshot even while v1 keeps running.

Idempotent by construction, so it can run once for a rehearsal and again just before the cut-over:
services are matched by heartbeat name regardless of case and only differing fields are written;
heartbeats and alerts carry their v1 id in the unique ``v1_id`` column and are inserted only when
missing; the other tables are matched by name or v1 id and written only when v1 changed (a
playbook by the fingerprint its last imported version carries). A second run over the same data
writes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from alerting.config import (
    rule_create,
    target_create,
    team_create,
    team_update,
    working_hours_create,
    working_hours_update,
)
from alerting.config_api import TargetSerializer
from alerting.models import (
    Alert,
    AlertReason,
    AlertState,
    NotificationTarget,
    RoutingWhen,
    Team,
    WorkingHours,
)
from alerting.services import dedup_key_for, renotify_delay
from heartbeats.deadlines import deadline_compute, deadline_met
from heartbeats.models import (
    Heartbeat,
    HeartbeatSource,
    JobRun,
    MaintenanceWindow,
    Priority,
    RunStatus,
    Service,
    ServiceStatus,
    WindowScope,
)
from heartbeats.selectors import nth_recent_heartbeat_at
from heartbeats.services import MAX_STATUS_LEN
from medic.apikeys import V1_CREATED_BY, api_key_import_v1, v1_key_candidates
from medic.crypto import DecryptionError, decrypt
from medic.errors import InvalidInput
from medic.models import ApiKey, AuditEvent
from remediation.approvals.models import ApprovalMode, ApprovalRequest, ApprovalState, Channel
from remediation.approvals.services import approval_history_record
from remediation.audit.models import AuditEntry
from remediation.audit.services import audit_record
from remediation.models import Script
from remediation.playbooks.models import (
    HISTORY_KIND,
    Execution,
    ExecutionState,
    Playbook,
    StepState,
)
from remediation.playbooks.services import (
    execution_history_record,
    playbook_disable,
    playbook_save,
)
from remediation.secrets.models import Secret
from remediation.secrets.services import secret_set
from remediation.services import script_create, script_disable, script_update

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
# Columns v1 HEAD added to services (migrations 001+); an older install lacks them and then
# leaves these v2 fields alone.
HEAD_FIELDS = ("grace_period_seconds", "max_duration_seconds")
# v1's worker writes these two as America/Chicago wall-clock time into zone-aware columns.
V1_TIMEZONE = "America/Chicago"
# v1 tables Medic 2 does not import, and why (reported with their row counts).
NOT_IMPORTED = {
    "webhook_deliveries": "v1 never committed them; delivery history has no Medic 2 home",
    "service_snapshots": "v1's undo history for service edits has no Medic 2 home",
}
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

    def written(self, *, new: bool) -> None:
        if new:
            self.created += 1
        else:
            self.updated += 1

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
    teams: Counts = field(default_factory=Counts)
    schedules: Counts = field(default_factory=Counts)
    targets: Counts = field(default_factory=Counts)
    scripts: Counts = field(default_factory=Counts)
    job_runs: Counts = field(default_factory=Counts)
    maintenance_windows: Counts = field(default_factory=Counts)
    secrets: Counts = field(default_factory=Counts)
    playbooks: Counts = field(default_factory=Counts)
    executions: Counts = field(default_factory=Counts)
    approvals: Counts = field(default_factory=Counts)
    audit_log: Counts = field(default_factory=Counts)
    api_keys: Counts = field(default_factory=Counts)
    # v1 table -> rows left in v1 (NOT_IMPORTED says why).
    not_imported: dict[str, int] = field(default_factory=dict)
    # Services whose derived state (last heartbeat, status, deadline) had to change.
    recomputed: int = 0
    warnings: list[str] = field(default_factory=list)
    omitted_warnings: int = 0

    @property
    def changed(self) -> bool:
        return self.recomputed > 0 or any(c.created or c.updated for c in self.tables().values())

    def tables(self) -> dict[str, Counts]:
        return {
            "services": self.services,
            "heartbeats": self.heartbeats,
            "alerts": self.alerts,
            "teams": self.teams,
            "schedules": self.schedules,
            "targets": self.targets,
            "scripts": self.scripts,
            "job_runs": self.job_runs,
            "maintenance_windows": self.maintenance_windows,
            "secrets": self.secrets,
            "playbooks": self.playbooks,
            "executions": self.executions,
            "approvals": self.approvals,
            "audit_log": self.audit_log,
            "api_keys": self.api_keys,
        }

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


def _wall_clock(value: Any, zone: ZoneInfo) -> datetime | None:
    """An instant v1's worker stored as wall-clock time in ``zone`` (its ``now_cdt``) in a column
    with a zone, read back as if that time were UTC. The repeated hour when DST ends is
    ambiguous: the first occurrence (daylight time) is taken."""
    at = _aware(value)
    if at is None:
        return None
    wall = at.astimezone(UTC).replace(tzinfo=None)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


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
    head: dict[str, Any] = {}
    if "grace_period_seconds" in row:
        grace = row["grace_period_seconds"]
        head["grace_period_seconds"] = grace if isinstance(grace, int) and grace > 0 else 0
    if "max_duration_ms" in row:
        ms = row["max_duration_ms"]
        # v2 counts whole seconds: rounded up, so a run is never called hung earlier than in v1.
        head["max_duration_seconds"] = (
            math.ceil(ms / 1000) if isinstance(ms, int) and ms > 0 else None
        )
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
        **head,
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
        fields = [*CONFIG_FIELDS, *(f for f in HEAD_FIELDS if f in desired)]
        service = by_name.get(key)
        try:
            if service is None:
                service = Service(
                    heartbeat_name=desired["heartbeat_name"],
                    date_added=desired["date_added"],
                    date_modified=desired["date_modified"],
                    **{name: desired[name] for name in fields},
                )
                service.status = ServiceStatus.NEW if service.active else ServiceStatus.PAUSED
                _apply_mute(service, desired)
                service.next_deadline_at = deadline_compute(service=service, nth_recent_at=None)
                service.full_clean(validate_unique=False, validate_constraints=False)
                service.save()
                by_name[key] = service
                summary.services.created += 1
            else:
                changed = [f for f in fields if getattr(service, f) != desired[f]]
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
    zone: ZoneInfo,
    summary: ImportSummary,
) -> None:
    for row in rows:
        # v1's worker wrote both as wall-clock time in its zone: correct them once, here.
        row["created_date"] = _wall_clock(row["created_date"], zone)
        row["closed_date"] = _wall_clock(row["closed_date"], zone)
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
            rank = (row["created_date"] or now, row["alert_id"])
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
        opened_at = row["created_date"] or row["closed_date"] or now
        closed_at = row["closed_date"]
        cycle = row["alert_cycle"] if isinstance(row["alert_cycle"], int) else 0
        existing = imported.get(row["alert_id"])
        if existing is not None:
            if _follow_v1(existing, row, opened_at, closed_at, cycle, now):
                if existing.state == AlertState.RESOLVED:
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
                dedup_key=_incident(row["external_reference_id"])
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
                external_reference_id=_incident(row["external_reference_id"]),
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


def _incident(value: Any) -> str:
    """v1's PagerDuty dedup key; NULL, '' and the text 'NULL' all mean no incident was opened."""
    text = str(value or "").strip()
    return "" if text.upper() in {"", "NULL", "NONE"} else text[:300]


def _follow_v1(
    alert: Alert,
    row: dict[str, Any],
    opened_at: datetime,
    closed_at: datetime | None,
    cycle: int,
    now: datetime,
) -> bool:
    """Bring an alert imported by an earlier run in line with its v1 row: corrected times, a
    close in v1, v1's failing-check count while it stays open. Derived only from the v1 row, so
    a re-run over unchanged v1 data writes nothing whatever the time. Returns whether it
    changed."""
    fields: list[str] = []
    if alert.opened_at != opened_at:
        alert.opened_at = opened_at
        fields.append("opened_at")
    if not _flag(row["active"]) and alert.state == AlertState.OPEN:
        # Closed in v1 since the previous run: follow it (v1 sent the recovery itself).
        alert.state = AlertState.RESOLVED
        alert.resolved_at = closed_at or now
        alert.next_notify_at = None
        fields += ["state", "resolved_at", "next_notify_at"]
    elif not _flag(row["active"]) and closed_at is not None and alert.resolved_at != closed_at:
        alert.resolved_at = closed_at  # e.g. an earlier import that took v1's times as UTC
        fields.append("resolved_at")
    if cycle > alert.notify_count:
        # Still failing in v1: its worker counted more checks (and re-notified on its own).
        alert.notify_count = cycle
        fields.append("notify_count")
    if fields:
        alert.save(update_fields=fields)
    return bool(fields)


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
            # Only v1's data moves a status: with the same heartbeats, deadline and alerts as the
            # previous run, a deadline that passed in between changes nothing (the sweep, once
            # started, is what notices it).
            settled = (
                service.active
                and service.status != ServiceStatus.PAUSED
                and (service.last_heartbeat_at, service.last_status, service.next_deadline_at)
                == (before[0], before[1], before[3])
                and (pk in open_services) == (service.status == ServiceStatus.DOWN)
            )
            if settled:
                pass
            elif not service.active:
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


# --- Job runs, maintenance windows, secrets --------------------------------------------------


def _import_teams(
    rows: list[dict[str, Any]],
    services: list[dict[str, Any]],
    mapping: dict[int, Service],
    summary: ImportSummary,
) -> None:
    """v1 teams -> teams (name, Slack channel), matched by name. A service keeps v1's ``team``
    text, which is what v1 alerted with (``team_id`` was read by nothing); a service whose
    ``team_id`` names another team is reported."""
    existing = {t.name: t for t in Team.objects.all()}
    names = {}
    for row in rows:
        name = (row["name"] or "").strip()
        channel = (row.get("slack_channel_id") or "").strip()
        names[_v1_pk(row)] = name
        if not name or len(name) > 100 or len(channel) > 64:
            summary.teams.skipped += 1
            summary.warn(f"v1 team {_v1_pk(row)}: skipped, name or Slack channel id too long.")
            continue
        team = existing.get(name)
        if team is not None and team.slack_channel_id == channel:
            summary.teams.unchanged += 1
            continue
        # Through the alerting service layer, audited like a team created in the API.
        if team is None:
            team_create(name=name, slack_channel_id=channel, actor=ACTOR)
        else:
            team_update(ref=team.pk, slack_channel_id=channel, actor=ACTOR)
        summary.teams.written(new=team is None)
    for row in services:
        linked = names.get(row.get("team_id"))
        service = mapping.get(row["service_id"])
        if linked and service is not None and linked != service.team:
            summary.warn(
                f"v1 service {row['service_id']} ({service.heartbeat_name}): team_id names team "
                f"'{linked}' but v1 alerted as team '{service.team}'; kept '{service.team}'."
            )


def _schedule_names(
    services: list[dict[str, Any]], targets: list[dict[str, Any]], schedules: list[dict[str, Any]]
) -> None:
    """Note on each v1 target the name of its service's schedule (what its ``period`` meant)."""
    names = {_v1_pk(r): r["name"] for r in schedules}
    of_service = {r["service_id"]: names.get(r.get("schedule_id")) for r in services}
    for row in targets:
        row["_schedule_name"] = of_service.get(row["service_id"])


def _hours_spec(row: dict[str, Any]) -> dict[str, Any]:
    """v1 ``hours`` ({"monday": [{"start": "09:00", "end": "17:00"}]}, local to ``timezone``,
    end exclusive, end < start past midnight) as a working-hours spec: the same rules."""
    hours = row.get("hours") or {}
    windows = []
    for day, ranges in hours.items() if isinstance(hours, dict) else []:
        for span in ranges if isinstance(ranges, list) else [ranges]:
            if isinstance(span, dict):
                windows.append(
                    {"days": [str(day).lower()], "start": span.get("start"), "end": span.get("end")}
                )
    week = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    # JSONB keeps keys in its own order: the week's order reads better, and stays the same.
    windows.sort(key=lambda w: (week.index(w["days"][0]) if w["days"][0] in week else 7, str(w)))
    return {"timezone": row.get("timezone"), "windows": windows}


def _import_schedules(
    rows: list[dict[str, Any]], services: list[dict[str, Any]], summary: ImportSummary
) -> None:
    """v1 schedules -> working-hours schedules (through the alerting service layer, audited),
    matched by name. v1 read them for nothing; Medic 2 uses working hours in routing rules, so
    the services v1 linked (``schedule_id``) are reported, not linked."""
    existing = {w.name: w for w in WorkingHours.objects.all()}
    for row in rows:
        name = (row["name"] or "").strip()
        spec = _hours_spec(row)
        current = existing.get(name)
        if current is not None and current.spec == spec:
            summary.schedules.unchanged += 1
            continue
        try:
            with transaction.atomic():
                if current is None:
                    working_hours_create(name=name, spec=spec, actor=ACTOR)
                else:
                    working_hours_update(ref=current.pk, spec=spec, actor=ACTOR)
        except (InvalidInput, ValidationError) as exc:
            summary.schedules.skipped += 1
            summary.warn(f"v1 schedule {_v1_pk(row)} ({name}): skipped, {exc}.")
            continue
        summary.schedules.written(new=current is None)
    linked = sum(1 for row in services if row.get("schedule_id"))
    if linked:
        summary.warn(
            f"{linked} v1 service(s) name a schedule (services.schedule_id, read by nothing in "
            "v1): use the imported working hours in routing rules to make them count."
        )


_PERIOD = {
    "always": RoutingWhen.ALWAYS,
    "during_hours": RoutingWhen.WORKING_HOURS,
    "after_hours": RoutingWhen.AFTER_HOURS,
}


def _target_fields(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """A v1 target's config as the fields of a Medic 2 target of that kind. v1 kept headers in
    plain JSON; they often carry credentials, so they become secret headers (sealed)."""
    if kind == "slack":
        return {"channel": config.get("channel_id")}
    if kind == "pagerduty":
        return {"routing_key": config.get("service_key")}
    return {"url": config.get("url"), "secret_headers": config.get("headers") or {}}


def _import_targets(
    targets: list[dict[str, Any]],
    webhooks: list[dict[str, Any]],
    mapping: dict[int, Service],
    summary: ImportSummary,
) -> None:
    """v1 notification_targets and webhooks -> notification targets, each with a routing rule
    for its service (a global v1 webhook: for every service), validated like ``POST
    /v2/notification-targets``. v1 HEAD never sent to them, so both arrive DISABLED: enabling
    them is a decision to review. Created once, by name (``v1-target-<id>``, ``v1-webhook-<id>``);
    a later run leaves them as the operator edited them."""
    schedule_names = {w.name: w for w in WorkingHours.objects.all()}
    existing = set(NotificationTarget.objects.values_list("name", flat=True))
    items = [(f"v1-target-{_v1_pk(r)}", r, r["type"], r.get("config") or {}) for r in targets]
    items += [
        (f"v1-webhook-{_v1_pk(r)}", r, "webhook", {"url": r["url"], "headers": r.get("headers")})
        for r in webhooks
    ]
    for name, row, kind, config in items:
        if name in existing:
            summary.targets.unchanged += 1
            continue
        service = mapping.get(row.get("service_id")) if row.get("service_id") else None
        if row.get("service_id") and service is None:
            summary.targets.skipped += 1
            summary.warn(f"v1 {name}: skipped, its service was not imported.")
            continue
        data = {"name": name, "kind": kind, "enabled": False, **_target_fields(kind, config)}
        serializer = TargetSerializer(data=data)
        if not serializer.is_valid():
            summary.targets.skipped += 1
            summary.warn(f"v1 {name}: skipped, {dict(serializer.errors)}.")
            continue
        when = _PERIOD.get(row.get("period") or "always", RoutingWhen.ALWAYS)
        hours = None
        if when != RoutingWhen.ALWAYS:
            hours = schedule_names.get(row.get("_schedule_name") or "")
            if hours is None:
                summary.warn(
                    f"v1 {name}: period {row.get('period')} without an imported schedule for its "
                    "service; its rule applies always."
                )
                when = RoutingWhen.ALWAYS
        valid = serializer.validated_data
        with transaction.atomic():
            target, _ = target_create(
                name=name,
                kind=kind,
                config=valid["config"],
                secrets=valid["secrets"],
                enabled=False,
                actor=ACTOR,
            )
            rule_create(
                targets=[target],
                actor=ACTOR,
                name=name,
                enabled=False,
                service=service,
                position=100 + int(row.get("priority") or 0),
                when=when,
                schedule=hours,
            )
        summary.targets.created += 1


_SHEBANG = {"bash": "#!/bin/bash", "python": "#!/usr/bin/env python3"}


def _import_scripts(rows: list[dict[str, Any]], summary: ImportSummary) -> None:
    """v1 registered_scripts -> scripts (through the remediation service layer: versioned,
    audited), run locally as v1 ran them, with v1's interpreter as the ``#!`` line when the
    content has none. Created DISABLED, like everything that would run unreviewed; a changed v1
    script becomes a new version and keeps the enabled state it has here."""
    existing = {s.name: s for s in Script.objects.all()}
    for row in rows:
        name = row["name"]
        content = row["content"] or ""
        if not content.startswith("#!"):
            shebang = _SHEBANG.get((row.get("interpreter") or "bash").lower(), _SHEBANG["bash"])
            content = f"{shebang}\n{content}"
        spec = {"body": content, "timeout_seconds": row.get("timeout_seconds") or 30}
        script = existing.get(name)
        try:
            with transaction.atomic():
                if script is None:
                    script_create(name=name, actor=ACTOR, run_local=True, **spec)
                    script_disable(name=name, actor=ACTOR)
                else:
                    current = script.versions.get(version=script.current_version)
                    if (current.body, current.timeout_seconds) == (
                        spec["body"],
                        spec["timeout_seconds"],
                    ):
                        summary.scripts.unchanged += 1
                        continue
                    script_update(name=name, actor=ACTOR, **spec)
                    if not script.enabled:
                        script_disable(name=name, actor=ACTOR)
        except InvalidInput as exc:
            summary.scripts.skipped += 1
            summary.warn(f"v1 registered script {name}: skipped, {exc.fields or exc}.")
            continue
        summary.scripts.written(new=script is None)


def _tables(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    """The v1 tables present in ``schema`` with their row counts (older installs lack many)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
        (schema,),
    ).fetchall()
    counts = {}
    for row in rows:
        name = row["relname"]
        query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(schema, name))
        counts[name] = conn.execute(query).fetchone()["n"]
    return counts


def _rows(conn: psycopg.Connection, schema: str, table: str) -> list[dict[str, Any]]:
    """Every row of a v1 table in primary-key order (each v1 table starts with its SERIAL key)."""
    query = sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(schema, table))
    return conn.execute(query).fetchall()


def _v1_pk(row: dict[str, Any]) -> Any:
    return next(iter(row.values()))


_RUN_STATUS = {
    "STARTED": RunStatus.RUNNING,
    "COMPLETED": RunStatus.COMPLETED,
    "FAILED": RunStatus.FAILED,
}


def _import_job_runs(
    rows: list[dict[str, Any]], mapping: dict[int, Service], summary: ImportSummary
) -> None:
    """v1 job_runs -> runs, matched on (service, run_id). A run still STARTED in v1 arrives
    running without a deadline: v1 never marked stale runs (its update failed a CHECK), and
    Medic 2 does not call history hung; a later signal with its run id completes it."""
    existing = {(r.service_id, r.run_id): r for r in JobRun.objects.all()}
    stale = 0
    for row in rows:
        service = mapping.get(row["service_id"])
        run_id = (row["run_id"] or "").strip()
        status = _RUN_STATUS.get((row["status"] or "").upper())
        if service is None or not run_id or len(run_id) > 64 or status is None:
            summary.job_runs.skipped += 1
            summary.warn(
                f"v1 job run {_v1_pk(row)} ({run_id or 'no run id'}): skipped (unknown service, "
                "a run id that is empty or over 64 characters, or an unknown status)."
            )
            continue
        wanted = {
            "status": status,
            "started_at": _aware(row["started_at"]),
            "ended_at": _aware(row["completed_at"]),
            "duration_ms": row["duration_ms"],
        }
        run = existing.get((service.pk, run_id))
        if run is None:
            stale += status == RunStatus.RUNNING
            JobRun.objects.create(
                service=service, run_id=run_id, created_at=wanted["started_at"], **wanted
            )
            summary.job_runs.created += 1
            continue
        changed = [f for f, v in wanted.items() if getattr(run, f) != v]
        if changed and run.status == RunStatus.RUNNING:
            for name in changed:
                setattr(run, name, wanted[name])
            run.save(update_fields=changed)
            summary.job_runs.updated += 1
        else:
            # Finished here, or unchanged: a run Medic 2 already closed is left as it is.
            summary.job_runs.unchanged += 1
    if stale:
        summary.warn(
            f"{stale} v1 job run(s) still STARTED (v1 never closes stale runs) arrive running, "
            "without a hung deadline."
        )


def _import_windows(
    rows: list[dict[str, Any]], mapping: dict[int, Service], summary: ImportSummary
) -> None:
    """v1 maintenance_windows -> maintenance windows, matched by name. The times are kept as
    instants, so a window active in v1 is active in Medic 2 at once. ``notify`` is off: v1 never
    announced windows, and a window already running must not announce its start now."""
    existing = {w.name: w for w in MaintenanceWindow.objects.all()}
    for row in rows:
        label = f"v1 maintenance window {_v1_pk(row)} ({row['name']})"
        start, end = _aware(row["start_time"]), _aware(row["end_time"])
        zone = (row.get("timezone") or "UTC").strip()
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            summary.warn(f"{label}: skipped, unknown time zone {zone!r}.")
            summary.maintenance_windows.skipped += 1
            continue
        if start is None or end is None or end <= start or len(row["name"]) > 100:
            summary.warn(
                f"{label}: skipped, it needs a name of up to 100 characters and end > start."
            )
            summary.maintenance_windows.skipped += 1
            continue
        v1_ids = list(row.get("service_ids") or [])
        services = {mapping[i].pk for i in v1_ids if i in mapping}
        if len(services) < len(set(v1_ids)):
            summary.warn(f"{label}: service id(s) not imported from v1 are left out of it.")
        recurrence = (row.get("recurrence") or "").strip()
        wanted = {
            "time_zone": zone,
            "scope": WindowScope.SERVICES if v1_ids else WindowScope.ALL,
            "starts_at": None if recurrence else start,
            "ends_at": None if recurrence else end,
            "cron_expression": recurrence,
            "duration_minutes": math.ceil((end - start).total_seconds() / 60)
            if recurrence
            else None,
            "description": "imported from Medic v1",
        }
        window = existing.get(row["name"])
        created = window is None
        if created:
            window = MaintenanceWindow(name=row["name"], notify=False, created_by=ACTOR)
        changed = [f for f, v in wanted.items() if getattr(window, f) != v]
        same_services = (
            not created and set(window.services.values_list("pk", flat=True)) == services
        )
        if not created and not changed and same_services:
            summary.maintenance_windows.unchanged += 1
            continue
        for name, value in wanted.items():
            setattr(window, name, value)
        try:
            window.full_clean(validate_unique=False)
        except ValidationError as exc:
            summary.warn(f"{label}: skipped, {exc.messages}.")
            summary.maintenance_windows.skipped += 1
            continue
        window.updated_at = timezone.now()
        window.save()
        window.services.set(services)
        summary.maintenance_windows.written(new=created)


def _v1_secrets_key(raw: str | None) -> AESGCM | None:
    if not raw:
        return None
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except ValueError as exc:
        raise V1ImportError("The v1 secrets key is not base64 (v1's MEDIC_SECRETS_KEY).") from exc
    if len(key) != 32:
        raise V1ImportError(
            f"The v1 secrets key decodes to {len(key)} bytes; v1's MEDIC_SECRETS_KEY is 32."
        )
    return AESGCM(key)


def _import_secrets(rows: list[dict[str, Any]], key: AESGCM | None, summary: ImportSummary) -> None:
    """v1 secrets, decrypted with v1's key and sealed again with Medic 2's keys (medic.crypto
    through the secrets service). Without the key, or when a row does not open with it, the
    secret is not imported and is named in a warning: Medic 2 stores no secret it cannot use."""
    if rows and key is None:
        summary.secrets.skipped += len(rows)
        summary.warn(
            f"{len(rows)} v1 secret(s) not imported ({', '.join(r['name'] for r in rows)}): "
            "pass v1's MEDIC_SECRETS_KEY (--v1-secrets-key-file, or the MEDIC_V1_SECRETS_KEY "
            "environment variable) to decrypt them."
        )
        return
    existing = {s.name: s for s in Secret.objects.all()}
    for row in rows:
        try:
            value = key.decrypt(
                bytes(row["nonce"]), bytes(row["encrypted_value"]) + bytes(row["tag"]), None
            ).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError):
            summary.secrets.skipped += 1
            summary.warn(f"v1 secret {row['name']}: not imported, it does not open with the key.")
            continue
        current = existing.get(row["name"])
        if current is not None:
            try:
                if decrypt(current.ciphertext) == value:
                    summary.secrets.unchanged += 1
                    continue
            except DecryptionError:
                pass
        try:
            secret_set(name=row["name"], value=value, actor=ACTOR)
        except InvalidInput as exc:  # a name or value Medic 2 refuses
            summary.secrets.skipped += 1
            summary.warn(f"v1 secret {row['name']}: not imported, {exc}.")
            continue
        summary.secrets.written(new=current is None)


# --- Entry point ------------------------------------------------------------------------------


def v1_import(
    *,
    dsn: str,
    schema: str = "medic",
    dry_run: bool = False,
    heartbeat_days: int | None = None,
    batch_size: int = 5000,
    v1_timezone: str = V1_TIMEZONE,
    secrets_key: str | None = None,
    keep_v1_mode: bool = False,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> ImportSummary:
    """Import v1's services, heartbeats, alerts, teams, schedules, targets, scripts, job runs,
    maintenance windows, secrets, API keys, playbooks and remediation history, and count the
    rows of the v1 tables that are not imported. ``heartbeat_days`` limits the
    heartbeats copied to that many recent days (default: the retention,
    MEDIC_HEARTBEAT_RETENTION_DAYS; 0 copies all); older ones would only be pruned again.
    ``v1_timezone`` is the zone v1's worker wrote alert times in; ``secrets_key`` is v1's
    MEDIC_SECRETS_KEY (base64). Playbooks arrive in shadow mode unless ``keep_v1_mode``.
    ``now`` is the import's clock (tests)."""
    summary = ImportSummary(dry_run=dry_run)
    try:
        zone = ZoneInfo(v1_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise V1ImportError(f"Unknown time zone '{v1_timezone}' for v1's alert times.") from exc
    key = _v1_secrets_key(secrets_key)
    now = now or timezone.now()
    days = settings.MEDIC_HEARTBEAT_RETENTION_DAYS if heartbeat_days is None else heartbeat_days
    since = now - timedelta(days=days) if days and days > 0 else None
    conn = _connect(dsn)
    try:
        try:
            _check_schema(conn, schema)
            tables = _tables(conn, schema)
            # SELECT *: v1 HEAD's extra columns (grace period, max duration) when present.
            services = _rows(conn, schema, "services")
            alerts = conn.execute(
                _query(
                    schema,
                    "SELECT alert_id, alert_name, service_id, active, external_reference_id, "
                    "alert_cycle, created_date, closed_date FROM {alerts} ORDER BY alert_id",
                )
            ).fetchall()
            teams = _rows(conn, schema, "teams") if "teams" in tables else []
            schedules = _rows(conn, schema, "schedules") if "schedules" in tables else []
            v1_targets = (
                _rows(conn, schema, "notification_targets")
                if "notification_targets" in tables
                else []
            )
            webhooks = _rows(conn, schema, "webhooks") if "webhooks" in tables else []
            scripts = (
                _rows(conn, schema, "registered_scripts") if "registered_scripts" in tables else []
            )
            _schedule_names(services, v1_targets, schedules)
            job_runs = _rows(conn, schema, "job_runs") if "job_runs" in tables else []
            windows = (
                _rows(conn, schema, "maintenance_windows")
                if "maintenance_windows" in tables
                else []
            )
            secrets = _rows(conn, schema, "secrets") if "secrets" in tables else []
            table_rows = {
                name: _rows(conn, schema, name) if name in tables else []
                for name in (
                    "api_keys",
                    "playbooks",
                    "playbook_triggers",
                    "playbook_executions",
                    "playbook_step_results",
                    "approval_requests",
                    "remediation_audit_log",
                )
            }
            summary.not_imported = {t: tables[t] for t in NOT_IMPORTED if tables.get(t)}
            for table, count in summary.not_imported.items():
                summary.warn(
                    f"v1 table {table}: {count} row(s) not imported, {NOT_IMPORTED[table]}."
                )
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
                    _import_alerts(alerts, mapping, set(v1_last), now, zone, summary)
                with transaction.atomic():
                    _import_teams(teams, services, mapping, summary)
                    _import_schedules(schedules, services, summary)
                    _import_targets(v1_targets, webhooks, mapping, summary)
                    _import_scripts(scripts, summary)
                    _import_job_runs(job_runs, mapping, summary)
                    _import_windows(windows, mapping, summary)
                    _import_secrets(secrets, key, summary)
                    _import_api_keys(table_rows["api_keys"], now, summary)
                with transaction.atomic():
                    # After scripts and secrets: a playbook's steps name them.
                    playbooks = _import_playbooks(
                        table_rows["playbooks"],
                        table_rows["playbook_triggers"],
                        keep_v1_mode,
                        summary,
                    )
                    executions = _import_executions(
                        table_rows["playbook_executions"],
                        table_rows["playbook_step_results"],
                        playbooks,
                        table_rows["playbooks"],
                        mapping,
                        summary,
                    )
                    _import_approvals(table_rows["approval_requests"], executions, summary)
                    _import_audit_log(table_rows["remediation_audit_log"], executions, now, summary)
                summary.recomputed = _recompute({s.pk for s in mapping.values()}, v1_last, now)
                if summary.changed:
                    AuditEvent.objects.create(
                        actor=ACTOR,
                        event="v1.imported",
                        object_type="import",
                        details={
                            "schema": schema,
                            **{name: vars(c) for name, c in summary.tables().items()},
                            "recomputed": summary.recomputed,
                            "not_imported": summary.not_imported,
                        },
                    )
                if dry_run:
                    transaction.set_rollback(True)
        except psycopg.Error as exc:
            raise V1ImportError(f"Reading the v1 database failed: {exc}".strip()) from exc
    finally:
        conn.close()
    return summary


# --- Playbooks --------------------------------------------------------------------------------

# Author of every playbook version the import writes; its reason carries the v1 row's
# fingerprint, so a re-run knows whether v1 changed since.
PLAYBOOK_AUTHOR = "import"
_FINGERPRINT = re.compile(r"\[v1 row ([0-9a-f]{12})\]")
_V1_SECRET = re.compile(r"\$\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}")
# v1 step keys -> Medic 2 step keys (the rest of a v1 step has no Medic 2 equivalent).
_STEP_KEYS = {
    "webhook": {"url": "url", "method": "method", "headers": "headers", "body": "body"},
    "script": {"script": "script", "script_name": "script", "parameters": "args"},
    "wait": {"duration": "duration"},
    "condition": {"check": "check", "on_failure": "on_failure"},
}
# v1's per-type default timeouts (Medic 2's differ): kept, so a step gets the time it had.
_V1_TIMEOUTS = {"webhook": "30s", "script": "60s", "condition": "5m"}


class _Unmappable(Exception):
    """A v1 playbook Medic 2 cannot express; the message says why."""


def _v2_variables(value: Any) -> Any:
    """v1's ``${secrets.NAME}`` is Medic 2's ``${SECRET.NAME}``; other variables are kept."""
    if isinstance(value, str):
        return _V1_SECRET.sub(r"${SECRET.\1}", value)
    if isinstance(value, dict):
        return {_v2_variables(k): _v2_variables(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_v2_variables(v) for v in value]
    return value


def _v2_step(index: int, step: Any, notes: list[str]) -> dict[str, Any]:
    if not isinstance(step, dict):
        raise _Unmappable(f"steps[{index}] is not a mapping")
    kind = str(step.get("type") or "").strip().lower()
    if kind not in _STEP_KEYS:
        raise _Unmappable(f"steps[{index}] has type {step.get('type')!r}, not one of v1's four")
    out: dict[str, Any] = {"name": str(step.get("name") or ""), "type": kind}
    for v1_key, v2_key in _STEP_KEYS[kind].items():
        if step.get(v1_key) is not None and v2_key not in out:
            out[v2_key] = step[v1_key]
    if kind == "webhook":
        out["method"] = str(out.get("method") or "POST").upper()
        if step.get("success_codes") is not None:
            out["success"] = {"status": step["success_codes"]}
    if kind != "wait":
        out["timeout"] = step.get("timeout") or _V1_TIMEOUTS[kind]
    if kind == "condition":
        # v1 read both in any case.
        out["check"] = str(out.get("check") or "").lower()
        if step.get("on_failure") is not None:
            out["on_failure"] = str(step["on_failure"]).lower()
    dropped = sorted(set(step) - set(_STEP_KEYS[kind]) - {"name", "type", "timeout"})
    dropped = [k for k in dropped if not (k == "success_codes" and kind == "webhook")]
    if kind == "condition" and not step.get("parameters"):
        dropped = [k for k in dropped if k != "parameters"]
    if dropped:
        notes.append(f"steps[{index}]: {', '.join(dropped)} dropped (no Medic 2 equivalent)")
    return _v2_variables(out)


def _v1_playbook_document(
    row: dict[str, Any], triggers: list[dict[str, Any]], keep_mode: bool, notes: list[str]
) -> tuple[dict[str, Any], bool]:
    """The Medic 2 document for a v1 playbook row and its triggers, and whether it is enabled
    (a v1 playbook whose triggers are all disabled arrives disabled)."""
    try:
        data = yaml.safe_load(row["yaml_content"] or "")
    except yaml.YAMLError as exc:
        raise _Unmappable(f"yaml_content is not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise _Unmappable("yaml_content is not a YAML mapping")
    enabled = [t for t in triggers if t.get("enabled", True)]
    specs = sorted(
        {(t["service_pattern"], int(t["consecutive_failures"] or 1)) for t in enabled or triggers}
    )
    if not specs:
        raise _Unmappable(
            "it has no playbook_triggers row, and a Medic 2 playbook starts from a trigger "
            "(create it in Medic 2 with one)"
        )
    if len(specs) > 1:
        raise _Unmappable(
            f"it has {len(specs)} different triggers ({', '.join(p for p, _ in specs)}) and a "
            "Medic 2 playbook has one: create one Medic 2 playbook per trigger"
        )
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _Unmappable("it has no steps")
    extra = sorted(set(data) - {"name", "description", "approval", "version", "steps"})
    if extra:
        notes.append(f"{', '.join(map(str, extra))} dropped (v1 kept them as metadata only)")
    document: dict[str, Any] = {
        "name": row["name"],
        "description": str(row.get("description") or data.get("description") or "")[:1000],
        # Nothing imported runs unreviewed, unless asked for: v1 had no shadow mode.
        "mode": "active" if keep_mode else "shadow",
        "approval": str(data.get("approval") or "none").strip().lower(),
        "trigger": {"service_pattern": specs[0][0], "consecutive_failures": specs[0][1]},
        "steps": [_v2_step(i, step, notes) for i, step in enumerate(steps)],
    }
    if not document["description"]:
        del document["description"]
    return document, bool(enabled)


def _fingerprint(row: dict[str, Any], triggers: list[dict[str, Any]], keep_mode: bool) -> str:
    blob = json.dumps(
        {
            "description": row.get("description"),
            "yaml": row["yaml_content"],
            "triggers": sorted(
                (t["service_pattern"], t["consecutive_failures"], bool(t.get("enabled", True)))
                for t in triggers
            ),
            "keep_mode": keep_mode,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _import_playbooks(
    rows: list[dict[str, Any]],
    triggers: list[dict[str, Any]],
    keep_mode: bool,
    summary: ImportSummary,
) -> dict[int, Playbook]:
    """v1 playbooks (with their playbook_triggers) -> Medic 2 playbooks, through the playbook
    service layer: validated like ``POST /v2/playbooks``, each write a version by ``import``
    whose reason names the v1 row and its fingerprint. In shadow mode unless ``keep_mode``. A
    re-run writes a new version only when the v1 row (or its triggers) changed; a playbook of
    the same name created in Medic 2 is left alone. Returns v1 playbook id -> playbook."""
    by_playbook: dict[int, list[dict[str, Any]]] = {}
    for trigger in triggers:
        by_playbook.setdefault(trigger["playbook_id"], []).append(trigger)
    existing = {p.name: p for p in Playbook.objects.all()}
    mapping: dict[int, Playbook] = {}
    for row in rows:
        v1_id = _v1_pk(row)
        label = f"v1 playbook {v1_id} ({row['name']})"
        mine = by_playbook.get(v1_id, [])
        fingerprint = _fingerprint(row, mine, keep_mode)
        playbook = existing.get(row["name"])
        last_import = None
        if playbook is not None:
            last_import = (
                playbook.versions.filter(author=PLAYBOOK_AUTHOR).order_by("-version").first()
            )
            if last_import is None:
                summary.playbooks.skipped += 1
                summary.warn(f"{label}: skipped, a Medic 2 playbook of that name exists.")
                continue
            found = _FINGERPRINT.search(last_import.reason)
            if found and found.group(1) == fingerprint:
                summary.playbooks.unchanged += 1
                mapping[v1_id] = playbook
                continue
        notes: list[str] = []
        try:
            document, enabled = _v1_playbook_document(row, mine, keep_mode, notes)
            with transaction.atomic():
                saved = playbook_save(
                    document=yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
                    actor=PLAYBOOK_AUTHOR,
                    reason=f"imported from Medic v1 playbook {v1_id} (v1 version "
                    f"{row.get('version')}) [v1 row {fingerprint}]",
                    name=row["name"] if playbook is not None else None,
                    disabled_scripts=True,
                )
                if not saved.changed:
                    # The same document (only v1's version number moved, say): nothing to write.
                    summary.playbooks.unchanged += 1
                    mapping[v1_id] = saved.playbook
                    continue
                if not enabled:
                    playbook_disable(name=saved.playbook.name, actor=PLAYBOOK_AUTHOR)
        except (_Unmappable, InvalidInput) as exc:
            summary.playbooks.skipped += 1
            why = exc.message if isinstance(exc, InvalidInput) else f"{exc}."
            refused = "Medic 2 refuses it: " if isinstance(exc, InvalidInput) else ""
            summary.warn(f"{label}: not imported, {refused}{why}")
            if last_import is not None:
                # Imported by an earlier run: its history still belongs to it.
                mapping[v1_id] = playbook
            continue
        for note in notes:
            summary.warn(f"{label}: {note}.")
        if not enabled:
            summary.warn(f"{label}: all its v1 triggers are disabled; imported disabled.")
        summary.playbooks.written(new=saved.created)
        mapping[v1_id] = saved.playbook
    return mapping


# --- Remediation history ----------------------------------------------------------------------

_EXECUTION_STATE = {
    "completed": ExecutionState.COMPLETED,
    "failed": ExecutionState.FAILED,
    "cancelled": ExecutionState.CANCELLED,
}
_STEP_STATE = {
    "pending": StepState.PENDING,
    "running": StepState.RUNNING,
    "completed": StepState.SUCCEEDED,
    "failed": StepState.FAILED,
    "skipped": StepState.SKIPPED,
}
_APPROVAL_STATE = {
    "approved": ApprovalState.APPROVED,
    "rejected": ApprovalState.DECLINED,
    "expired": ApprovalState.EXPIRED,
    # Undecided in v1: recorded cancelled, so nobody can decide it in Medic 2.
    "pending": ApprovalState.CANCELLED,
}


def _import_executions(
    rows: list[dict[str, Any]],
    step_rows: list[dict[str, Any]],
    playbooks: dict[int, Playbook],
    v1_playbooks: list[dict[str, Any]],
    services: dict[int, Service],
    summary: ImportSummary,
) -> dict[int, Execution]:
    """v1 playbook_executions (with their step results) -> executions recorded as history: final
    (one still open in v1 arrives cancelled, saying so), never resumed, scored or counted."""
    steps_of: dict[int, list[dict[str, Any]]] = {}
    for step in step_rows:
        steps_of.setdefault(step["execution_id"], []).append(step)
    types: dict[int, dict[str, str]] = {}
    for row in v1_playbooks:
        try:
            data = yaml.safe_load(row["yaml_content"] or "") or {}
            steps = data.get("steps") or [] if isinstance(data, dict) else []
            types[_v1_pk(row)] = {
                str(s.get("name")): str(s.get("type") or "") for s in steps if isinstance(s, dict)
            }
        except yaml.YAMLError:
            types[_v1_pk(row)] = {}
    known = set(
        Execution.objects.filter(trigger__kind=HISTORY_KIND).values_list("trigger__key", flat=True)
    )
    mapping: dict[int, Execution] = {}
    unmapped = 0
    for row in rows:
        v1_id = _v1_pk(row)
        playbook = playbooks.get(row["playbook_id"])
        if playbook is None:
            unmapped += 1
            summary.executions.skipped += 1
            continue
        status = (row.get("status") or "").strip().lower()
        state = _EXECUTION_STATE.get(status, ExecutionState.CANCELLED)
        error = (
            ""
            if status in _EXECUTION_STATE
            else f"{status or 'no status'} in Medic v1 when imported; recorded as history, "
            "not resumed"
        )
        service = services.get(row.get("service_id"))
        started = _aware(row.get("started_at")) or _aware(row.get("created_at")) or timezone.now()
        steps = [
            {
                "name": str(s.get("step_name") or f"step-{s['step_index']}"),
                "type": types.get(row["playbook_id"], {}).get(str(s.get("step_name")), ""),
                "state": _STEP_STATE.get((s.get("status") or "").lower(), StepState.PENDING),
                "started_at": _aware(s.get("started_at")),
                "finished_at": _aware(s.get("completed_at")),
                "result": {
                    k: v
                    for k, v in (("output", s.get("output")), ("error", s.get("error_message")))
                    if v
                },
            }
            for s in sorted(steps_of.get(v1_id, []), key=lambda s: s["step_index"])
        ]
        key = f"medic-v1:{v1_id}"
        execution, written = execution_history_record(
            playbook=playbook,
            key=key,
            state=state,
            service=service,
            service_name=service.heartbeat_name if service else "",
            created_at=started,
            finished_at=_aware(row.get("completed_at")),
            error=error,
            steps=steps,
            source={"source": "medic-v1", "v1_id": v1_id, "v1_status": status},
        )
        mapping[v1_id] = execution
        if not written:
            summary.executions.unchanged += 1
        else:
            summary.executions.written(new=key not in known)
    if unmapped:
        summary.warn(
            f"{unmapped} v1 execution(s) of playbooks that were not imported were skipped."
        )
    return mapping


def _import_approvals(
    rows: list[dict[str, Any]],
    executions: dict[int, Execution],
    summary: ImportSummary,
) -> None:
    """v1 approval_requests -> the approval requests of the executions recorded as history. A
    request still pending in v1 arrives cancelled: nobody can decide it in Medic 2."""
    before = set(
        ApprovalRequest.objects.filter(
            execution__in=[e.pk for e in executions.values()]
        ).values_list("execution_id", flat=True)
    )
    for row in rows:
        execution = executions.get(row["execution_id"])
        status = (row.get("status") or "").strip().lower()
        state = _APPROVAL_STATE.get(status)
        if execution is None or state is None:
            summary.approvals.skipped += 1
            summary.warn(
                f"v1 approval request {_v1_pk(row)}: skipped ("
                + ("its execution was not imported" if execution is None else f"status {status!r}")
                + ")."
            )
            continue
        requested = _aware(row.get("requested_at")) or execution.created_at
        decider = (row.get("decided_by") or "").strip()
        approval = execution.version.spec.get("approval", "none")
        _, written = approval_history_record(
            execution=execution,
            state=state,
            mode=ApprovalMode.TIMEOUT if approval.startswith("timeout:") else ApprovalMode.REQUIRED,
            created_at=requested,
            deadline_at=_aware(row.get("expires_at")) or requested,
            decided_at=_aware(row.get("decided_at")),
            decided_by=f"slack:{decider}" if decider else "",
            channel=Channel.SLACK if decider else Channel.SYSTEM,
            why="imported from Medic v1"
            + ("; pending there, not decidable here" if status == "pending" else ""),
        )
        if not written:
            summary.approvals.unchanged += 1
        else:
            summary.approvals.written(new=execution.pk not in before)


def _import_audit_log(
    rows: list[dict[str, Any]],
    executions: dict[int, Execution],
    now: datetime,
    summary: ImportSummary,
) -> None:
    """v1 remediation_audit_log -> the remediation audit log, each row at its v1 time with its
    v1 actor, event ``v1.<action_type>`` and ``details.source = "medic-v1"``. Appended once
    (matched on the v1 id); rows older than MEDIC_AUDIT_RETENTION_DAYS are skipped, since the
    retention purge would remove them and the next run would append them again."""
    done = set(
        AuditEntry.objects.filter(event__startswith="v1.", details__source="medic-v1").values_list(
            "details__v1_id", flat=True
        )
    )
    days = settings.MEDIC_AUDIT_RETENTION_DAYS
    cutoff = now - timedelta(days=days) if days > 0 else None
    old = 0
    for row in rows:
        v1_id = _v1_pk(row)
        if v1_id in done:
            summary.audit_log.unchanged += 1
            continue
        at = _aware(row.get("timestamp")) or _aware(row.get("created_at"))
        if at is None or (cutoff is not None and at < cutoff):
            old += 1
            summary.audit_log.skipped += 1
            continue
        execution = executions.get(row.get("execution_id"))
        details = row.get("details")
        audit_record(
            actor=(row.get("actor") or "").strip() or "system",
            event=f"v1.{row.get('action_type') or 'unknown'}"[:64],
            object_type="execution",
            object_id=str(execution.pk) if execution else f"v1:{row.get('execution_id')}",
            details={
                "source": "medic-v1",
                "v1_id": v1_id,
                "v1_execution_id": row.get("execution_id"),
                "details": details if isinstance(details, dict | list) else str(details or ""),
            },
            playbook=execution.playbook.name if execution else None,
            service=execution.service_name if execution else None,
            execution_id=execution.pk if execution else None,
            at=at,
        )
        summary.audit_log.created += 1
    if old:
        summary.warn(
            f"{old} v1 audit row(s) older than MEDIC_AUDIT_RETENTION_DAYS ({days}) were skipped: "
            "the retention purge would remove them."
        )


# --- API keys ---------------------------------------------------------------------------------


def _import_api_keys(rows: list[dict[str, Any]], now: datetime, summary: ImportSummary) -> None:
    """v1 api_keys -> API keys with v1's Argon2id hash, verbatim, so deployed clients keep their
    keys. v1 stored no look-up prefix: medic.apikeys finds a v1 key among at most
    MEDIC_V1_API_KEY_CANDIDATES not-yet-used imported keys once, then by a prefix bound to it
    (docs/migrating-from-v1.md, "API keys"). So no more than that many wait at once; expired
    keys are not imported."""
    limit = max(settings.MEDIC_V1_API_KEY_CANDIDATES, 0)
    imported = {
        int(k.removeprefix(V1_CREATED_BY))
        for k in ApiKey.objects.filter(created_by__startswith=V1_CREATED_BY).values_list(
            "created_by", flat=True
        )
    }
    waiting = v1_key_candidates()
    over: list[str] = []
    for row in rows:
        v1_id = _v1_pk(row)
        label = f"v1 API key {v1_id} ({row['name']})"
        expires = _aware(row.get("expires_at"))
        if expires is not None and expires <= now and v1_id not in imported:
            summary.api_keys.skipped += 1
            summary.warn(f"{label}: not imported, it expired in v1.")
            continue
        if v1_id not in imported and waiting >= limit:
            summary.api_keys.skipped += 1
            over.append(row["name"])
            continue
        try:
            result = api_key_import_v1(
                v1_id=v1_id,
                name=row["name"],
                key_hash=(row.get("key_hash") or "").strip(),
                scopes=list(row.get("scopes") or ["read"]),
                expires_at=expires,
                created_at=_aware(row.get("created_at")),
                actor=ACTOR,
            )
        except InvalidInput as exc:
            summary.api_keys.skipped += 1
            summary.warn(f"{label}: not imported, {exc.fields or exc.message}.")
            continue
        if result.created:
            waiting += 1
        if not result.changed:
            summary.api_keys.unchanged += 1
        else:
            summary.api_keys.written(new=result.created)
    if over:
        summary.warn(
            f"{len(over)} v1 API key(s) not imported ({', '.join(over)}): at most "
            f"MEDIC_V1_API_KEY_CANDIDATES ({limit}) imported keys may wait for their first use; "
            "create Medic 2 keys for these clients, or re-run once imported keys have been used."
        )
