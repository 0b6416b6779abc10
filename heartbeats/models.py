from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from medic.limits import MESSAGE_MAX_LENGTH, STATUS_MAX_LENGTH


class Priority(models.TextChoices):
    P1 = "p1", "P1 (critical)"
    P2 = "p2", "P2 (high)"
    P3 = "p3", "P3 (moderate)"
    P4 = "p4", "P4 (low)"
    P5 = "p5", "P5 (informational)"


class ServiceStatus(models.TextChoices):
    NEW = "new", "new (no heartbeat yet)"
    UP = "up", "up"
    DOWN = "down", "down"
    PAUSED = "paused", "paused (inactive)"


class ScheduleKind(models.TextChoices):
    INTERVAL = "interval", "every alert_interval minutes (at least threshold beats per interval)"
    CRON = "cron", "cron expression in a time zone"
    AT_LEAST = "at_least", "at least threshold beats per window of alert_interval minutes"


class Service(models.Model):
    """Something that sends heartbeats. ``heartbeat_name`` is unique regardless of case (v1)."""

    heartbeat_name = models.CharField(max_length=255)
    service_name = models.CharField(max_length=255)
    active = models.BooleanField(default=True)
    # v1 semantics: healthy while at least ``threshold`` heartbeats arrived within the last
    # ``alert_interval`` minutes (fractions allowed, as v1's update endpoint accepted floats).
    alert_interval = models.FloatField(help_text="minutes")
    threshold = models.PositiveIntegerField(default=1)
    grace_period_seconds = models.PositiveIntegerField(default=0)
    # What "on time" means; see docs/schedules.md. ``interval`` and ``at_least`` share the
    # sliding-window rule (threshold beats within alert_interval); ``cron`` expects a beat at each
    # fire time of ``cron_expression`` in ``schedule_timezone``.
    schedule_kind = models.CharField(
        max_length=10, choices=ScheduleKind.choices, default=ScheduleKind.INTERVAL
    )
    cron_expression = models.CharField(max_length=120, blank=True, default="")
    schedule_timezone = models.CharField(max_length=64, default="UTC")
    # Job runs (start/complete/fail signals).
    max_duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    failure_threshold = models.PositiveIntegerField(default=1)
    # Failures in a row: failed runs, and deadlines missed while down (1 when it goes down for a
    # missed deadline, then 2, 3, ...). Back to 0 when a run succeeds or the service comes up.
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Alert when a run takes longer than this multiple of the service's own p95 (None: off).
    slow_run_factor = models.FloatField(null=True, blank=True)
    team = models.CharField(max_length=100, default="site-reliability")
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    runbook = models.CharField(max_length=1000, blank=True, default="")
    status = models.CharField(
        max_length=8, choices=ServiceStatus.choices, default=ServiceStatus.NEW
    )
    muted = models.BooleanField(default=False)
    mute_until = models.DateTimeField(null=True, blank=True)
    mute_reason = models.CharField(max_length=500, blank=True, default="")
    muted_by = models.CharField(max_length=150, blank=True, default="")
    date_muted = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=STATUS_MAX_LENGTH, blank=True, default="")
    # The instant this service becomes overdue (grace included), recomputed on every heartbeat
    # and configuration change. The sweep only ever asks "whose deadline has passed?".
    next_deadline_at = models.DateTimeField(null=True, blank=True)
    # While down: the next deadline that, missed too, makes a ``service.still_down`` event.
    still_down_at = models.DateTimeField(null=True, blank=True)
    date_added = models.DateTimeField(default=timezone.now)
    date_modified = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["heartbeat_name"]
        constraints = [
            models.UniqueConstraint(Lower("heartbeat_name"), name="service_heartbeat_name_ci"),
            models.CheckConstraint(condition=Q(alert_interval__gt=0), name="service_interval_gt0"),
            models.CheckConstraint(condition=Q(threshold__gte=1), name="service_threshold_gte1"),
        ]
        indexes = [
            # Partial index: only services that can still go down are probed by the sweep, so
            # its cost follows the number of due services, not the size of the fleet.
            models.Index(
                fields=["next_deadline_at"],
                name="service_due_idx",
                condition=Q(active=True, status__in=["new", "up"]),
            ),
            # Down services only (a few): their next missed deadline. Heartbeats never touch
            # an entry of it, since the hot path only updates services that are up.
            models.Index(
                fields=["still_down_at"],
                name="service_still_down_idx",
                condition=Q(active=True, status="down"),
            ),
            models.Index(
                fields=["mute_until"], name="service_mute_until_idx", condition=Q(muted=True)
            ),
            # Equality only (filters by team): no varchar_pattern_ops twin. Every heartbeat
            # updates the row, and each index costs an entry per update.
            models.Index(fields=["team"], name="service_team_idx"),
        ]

    def __str__(self) -> str:
        return self.heartbeat_name

    @property
    def down(self) -> bool:
        return self.status == ServiceStatus.DOWN


class HeartbeatSource(models.TextChoices):
    V1 = "v1", "v1 API"
    V2 = "v2", "v2 API"
    IMPORT = "import", "imported from v1"


class Heartbeat(models.Model):
    # Not indexed alone: heartbeat_service_time_idx starts with service_id.
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="heartbeats", db_index=False
    )
    time = models.DateTimeField(default=timezone.now)
    # Free text in v1 (UP, DOWN, DEGRADED, ...); shown everywhere, never acted upon for v1.
    status = models.CharField(max_length=STATUS_MAX_LENGTH)
    message = models.CharField(max_length=MESSAGE_MAX_LENGTH, blank=True, default="")
    source = models.CharField(max_length=8, choices=HeartbeatSource.choices)
    # Id in the v1 database for imported rows: makes the import idempotent.
    v1_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        constraints = [
            # Partial: only imported rows have a v1 id, the others get no index entry.
            models.UniqueConstraint(
                fields=["v1_id"], condition=Q(v1_id__isnull=False), name="heartbeat_v1_id_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["service", "-time"], name="heartbeat_service_time_idx"),
            models.Index(fields=["time"], name="heartbeat_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.status} @ {self.time:%Y-%m-%d %H:%M:%S}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"


class JobRun(models.Model):
    """One execution of a job, correlated from its start/complete/fail signals by ``run_id``."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="runs")
    run_id = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    message = models.CharField(max_length=MESSAGE_MAX_LENGTH, blank=True, default="")
    output_tail = models.TextField(blank=True, default="")
    # Running runs only: when the sweep calls it hung (started_at + max_duration, else the
    # service's next deadline when the run started).
    deadline_at = models.DateTimeField(null=True, blank=True)
    hung_alerted = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "run_id"], name="jobrun_service_run_id"),
        ]
        indexes = [
            models.Index(fields=["service", "-created_at"], name="jobrun_service_created_idx"),
            models.Index(
                fields=["deadline_at"],
                name="jobrun_running_deadline_idx",
                condition=Q(status="running", hung_alerted=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_id}/{self.run_id} {self.status}"


class WindowScope(models.TextChoices):
    ALL = "all", "all services"
    SERVICES = "services", "listed services"
    TEAM = "team", "a team"
    PATTERN = "pattern", "services whose heartbeat name matches a pattern"


class MaintenanceWindow(models.Model):
    """Planned work: detection goes on, notifications are held back (recorded as suppressed)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True, default="")
    time_zone = models.CharField(max_length=64, default="UTC")
    # One-time: starts_at/ends_at. Recurring: cron_expression (local time in ``time_zone``) and
    # duration_minutes.
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    cron_expression = models.CharField(max_length=120, blank=True, default="")
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    scope = models.CharField(max_length=10, choices=WindowScope.choices, default=WindowScope.ALL)
    services = models.ManyToManyField(Service, blank=True, related_name="maintenance_windows")
    team = models.CharField(max_length=100, blank=True, default="")
    pattern = models.CharField(max_length=200, blank=True, default="")
    notify = models.BooleanField(default=True)
    # The occurrence whose start was announced (and not yet its end): drives the start/end
    # notifications, each sent once.
    announced_start = models.DateTimeField(null=True, blank=True)
    announced_end = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def recurring(self) -> bool:
        return bool(self.cron_expression)
