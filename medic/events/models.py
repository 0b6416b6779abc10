from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventKind(models.TextChoices):
    SERVICE_DOWN = "service.down", "service went down"
    # Each further missed deadline while the service stays down.
    SERVICE_STILL_DOWN = "service.still_down", "service still down"
    SERVICE_RECOVERED = "service.recovered", "service recovered"
    JOB_FAILED = "job.failed", "job failed"
    JOB_HUNG = "job.hung", "job run hung"
    JOB_NOT_COMPLETED = "job.not_completed", "job run never completed"
    JOB_SLOW = "job.slow", "job run slow"
    # A run of a service with slow-run detection completed within bounds (ends a slow alert).
    JOB_COMPLETED = "job.completed", "job run completed within bounds"
    SERVICE_MUTED = "service.muted", "service muted"
    SERVICE_UNMUTED = "service.unmuted", "service unmuted"
    SERVICE_DEACTIVATED = "service.deactivated", "service deactivated"
    SERVICE_DELETED = "service.deleted", "service deleted"
    MAINTENANCE_STARTED = "maintenance.started", "maintenance window started"
    MAINTENANCE_ENDED = "maintenance.ended", "maintenance window ended"
    AGENT_SCRIPT_REFUSED = "agent.script_refused", "agent refused a script"
    ALERT_OPENED = "alert.opened", "alert opened"
    ALERT_RESOLVED = "alert.resolved", "alert resolved"


class DomainEvent(models.Model):
    """One fact, written in the same transaction as the state change it records.

    ``id`` is the order. ``service_id`` is a plain integer, not a foreign key: the core knows no
    domain model, and an event outlives the service it is about (service.deleted).
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    service_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    service_name = models.CharField(max_length=255, blank=True, default="")
    occurred_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["created_at"], name="domainevent_created_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.service_name or self.service_id or ''}".rstrip()


class EventProgress(models.Model):
    """One consumer's progress on one event: a row per (consumer, event), unique.

    Written when the event is recorded, for every registered consumer interested in its kind,
    and marked processed in the same transaction as the consumer's handler. ``service_id`` is
    copied from the event so that the claim query can keep each service's events in order
    without a join.
    """

    consumer = models.CharField(max_length=64)
    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="progress")
    service_id = models.BigIntegerField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A handler that raised is retried from this moment on (backoff), not in a tight loop.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["event_id"]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event"], name="eventprogress_once"),
        ]
        indexes = [
            # Partial: the claim query only ever looks at what is still to do.
            models.Index(
                fields=["consumer", "event"],
                name="eventprogress_pending_idx",
                condition=Q(processed_at__isnull=True),
            ),
            models.Index(
                fields=["consumer", "service_id", "event"],
                name="eventprogress_service_idx",
                condition=Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        state = "processed" if self.processed_at else "pending"
        return f"{self.consumer} #{self.event_id} {state}"
