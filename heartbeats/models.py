from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


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
    team = models.CharField(max_length=100, default="site-reliability", db_index=True)
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
    last_status = models.CharField(max_length=32, blank=True, default="")
    # The instant this service becomes overdue (grace included), recomputed on every heartbeat
    # and configuration change. The sweep only ever asks "whose deadline has passed?".
    next_deadline_at = models.DateTimeField(null=True, blank=True)
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
            models.Index(
                fields=["mute_until"], name="service_mute_until_idx", condition=Q(muted=True)
            ),
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
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="heartbeats")
    time = models.DateTimeField(default=timezone.now)
    # Free text in v1 (UP, DOWN, DEGRADED, ...); shown everywhere, never acted upon for v1.
    status = models.CharField(max_length=32)
    message = models.CharField(max_length=1000, blank=True, default="")
    source = models.CharField(max_length=8, choices=HeartbeatSource.choices)
    # Id in the v1 database for imported rows: makes the import idempotent.
    v1_id = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [
            models.Index(fields=["service", "-time"], name="heartbeat_service_time_idx"),
            models.Index(fields=["time"], name="heartbeat_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.status} @ {self.time:%Y-%m-%d %H:%M:%S}"


class ServiceStateChange(models.Model):
    """Outbox: written in the same transaction as the status change it records, consumed by the
    sweep (and eagerly by a task) to resolve alerts and send recovery notifications."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="state_changes")
    from_status = models.CharField(max_length=8, choices=ServiceStatus.choices)
    to_status = models.CharField(max_length=8, choices=ServiceStatus.choices)
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="statechange_pending_idx",
                condition=Q(processed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.service_id}: {self.from_status} -> {self.to_status}"
