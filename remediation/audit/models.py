"""The remediation audit log: one append-only row per remediation action.

Rows are written by ``remediation.audit.services.audit_record`` only, and never changed: the
queryset refuses ``update()`` and ``delete()``, the model refuses a second ``save()`` and
``delete()``, the admin is read-only, and on PostgreSQL a trigger refuses ``UPDATE`` outright
and ``DELETE`` outside the retention purge (migration 0002). Only ``audit_purge`` removes rows,
those older than ``MEDIC_AUDIT_RETENTION_DAYS``.
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete audit rows through the ORM."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit entries are append-only: they cannot be updated.")

    def delete(self):
        raise AppendOnlyError(
            "Audit entries are append-only: only the retention purge removes them."
        )

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit entries are append-only: they cannot be updated.")

    def update_or_create(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are append-only: they cannot be updated.")


class AuditEntry(models.Model):
    """Who did what to which object, when, with what details (secrets masked)."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    # "key:<name>#<id>", "user:<username>", "system", "slack:<user>", "agent:<name>", ...
    actor = models.CharField(max_length=150)
    event = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=200)
    # Denormalised so that the filters of GET /v2/audit are index probes; no foreign keys, so a
    # row outlives whatever it describes (and retention is the only thing that removes it).
    playbook = models.CharField(max_length=200, blank=True, default="")
    service = models.CharField(max_length=200, blank=True, default="")
    execution_id = models.BigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [
            # Retention deletes by age; the time-range filter uses it too.
            models.Index(fields=["created_at"], name="audit_created_idx"),
            models.Index(fields=["event", "id"], name="audit_event_idx"),
            models.Index(fields=["actor", "id"], name="audit_actor_idx"),
            models.Index(
                fields=["playbook", "id"],
                name="audit_playbook_idx",
                condition=~models.Q(playbook=""),
            ),
            models.Index(
                fields=["service", "id"],
                name="audit_service_idx",
                condition=~models.Q(service=""),
            ),
            models.Index(
                fields=["execution_id", "id"],
                name="audit_execution_idx",
                condition=models.Q(execution_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.event}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit entries are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(
            "Audit entries are append-only: only the retention purge removes them."
        )
