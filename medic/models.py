from __future__ import annotations

from django.db import models
from django.utils import timezone


class ApiKeyScope(models.TextChoices):
    READ = "read", "read"
    WRITE = "write", "write"
    ADMIN = "admin", "admin"
    # Bound to one remediation agent (remediation.Agent.api_key): accepted by /v2/agent/* only,
    # for that agent. Issued with the agent (POST /v2/agents, manage.py create_agent_key).
    AGENT = "agent", "agent"


class ApiKey(models.Model):
    """An API key: only a lookup prefix and an argon2id hash are stored; shown once."""

    name = models.CharField(max_length=100)
    # The 8 characters after ``mdk_``: found by index, then the full key is verified with argon2.
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=255)
    scopes = models.JSONField(default=list)
    # Per-class requests per minute overriding the global defaults, e.g. {"heartbeat": 1000}.
    rate_limits = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (mdk_{self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class AuditEvent(models.Model):
    """Append-only record of security-relevant changes (keys, secrets, configuration)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150)
    event = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True, default="")
    object_id = models.CharField(max_length=255, blank=True, default="")  # ids and names
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.event}"


def actor_label(principal) -> str:
    """How an actor appears in audit rows: ``key:NAME#ID`` or ``user:USERNAME`` or ``system``."""
    if principal is None:
        return "system"
    if isinstance(principal, ApiKey):
        return f"key:{principal.name}#{principal.pk}"
    if getattr(principal, "username", None):
        return f"user:{principal.username}"
    return str(principal)
