"""Approval requests for parked executions, and the idempotency keys of API-started runs.

One ``ApprovalRequest`` per execution that waits in ``pending_approval``. It is decided exactly
once: every decision locks the row (``select_for_update``) and moves it out of ``pending`` in
the same transaction as the execution's transition; a second decider finds it decided and is
told by whom. ``deadline_at`` is when the sweep acts on it without a human: a ``timeout`` request
then runs, a ``required`` request expires (the execution times out, its alert escalates).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def approval_page_url(execution_id: int) -> str:
    """The portal's approval page of an execution (linked from Slack and PagerDuty), under the
    portal's public address (MEDIC_BASE_URL)."""
    return f"{settings.MEDIC_BASE_URL}/ui/approvals/{execution_id}"


class ApprovalMode(models.TextChoices):
    REQUIRED = "required", "runs only when approved"
    TIMEOUT = "timeout", "runs at the deadline unless declined"


class ApprovalState(models.TextChoices):
    PENDING = "pending", "waiting for a decision"
    APPROVED = "approved", "approved"
    DECLINED = "declined", "declined"
    EXPIRED = "expired", "expired (nobody decided in time)"
    CANCELLED = "cancelled", "cancelled (recovered on its own, or the execution was cancelled)"


class Channel(models.TextChoices):
    SLACK = "slack", "Slack"
    PORTAL = "portal", "portal"
    API = "api", "API"
    MCP = "mcp", "MCP"
    WEBHOOK = "webhook", "inbound webhook"
    SYSTEM = "system", "Medic itself (deadline, recovery)"


class ApprovalRequest(models.Model):
    execution = models.OneToOneField(
        "playbooks.Execution", on_delete=models.CASCADE, related_name="approval"
    )
    mode = models.CharField(max_length=8, choices=ApprovalMode.choices)
    state = models.CharField(
        max_length=10, choices=ApprovalState.choices, default=ApprovalState.PENDING
    )
    # Who (or which key, or which trigger) asked for the run: with four_eyes, never an approver.
    requested_by = models.CharField(max_length=150)
    four_eyes = models.BooleanField(default=False)
    approvers_needed = models.PositiveSmallIntegerField(default=1)
    # Approvals so far: [{"actor", "channel", "reason", "at"}] (two distinct ones when needed).
    approvals = models.JSONField(default=list, blank=True)
    # Why it waits: "approval required by the playbook", "timeout:10m", "demoted (...)".
    why = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    deadline_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True, default="")
    channel = models.CharField(max_length=8, choices=Channel.choices, blank=True, default="")
    reason = models.CharField(max_length=1000, blank=True, default="")
    # The Slack message that asks for a decision (updated in place once decided).
    slack_channel = models.CharField(max_length=100, blank=True, default="")
    slack_ts = models.CharField(max_length=40, blank=True, default="")
    # Why the message could not be posted: a permanent Slack error, or retries used up.
    slack_error = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["deadline_at"],
                name="approval_deadline_idx",
                condition=Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"approval {self.pk} for execution {self.execution_id} ({self.state})"


class ExecuteRequest(models.Model):
    """``Idempotency-Key`` of ``POST /v2/playbooks/{id}/execute``: the same key from the same
    caller returns the first execution."""

    actor = models.CharField(max_length=150)
    key = models.CharField(max_length=255)
    execution = models.ForeignKey("playbooks.Execution", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["actor", "key"], name="execute_request_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.key} -> {self.execution_id}"


class HookFormat(models.TextChoices):
    GENERIC = "generic", "any JSON: one execution, fields picked by path"
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager: one execution per firing service"


class InboundHook(models.Model):
    """An inbound webhook bound to one playbook. The URL carries a token (only its SHA-256 is
    kept); each request is signed with HMAC-SHA256 over ``timestamp.body`` with the signing
    secret (kept encrypted: it must be read to verify). Both are shown once, at creation."""

    name = models.CharField(max_length=100, unique=True)
    playbook = models.ForeignKey("playbooks.Playbook", on_delete=models.CASCADE, related_name="+")
    format = models.CharField(max_length=12, choices=HookFormat.choices)
    # {"service": "labels.service", "variables": {"NAME": "annotations.summary"}}: dotted paths
    # into the payload (generic) or into each alert (alertmanager).
    mapping = models.JSONField(default=dict)
    token_hash = models.CharField(max_length=64, unique=True)
    signing_secret = models.TextField()  # medic.crypto ciphertext
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"hook {self.name} -> {self.playbook_id}"
