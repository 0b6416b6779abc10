from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Team(models.Model):
    """A team; services reference it by name (the v1 ``team`` string)."""

    name = models.CharField(max_length=100, unique=True)
    slack_channel_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertState(models.TextChoices):
    OPEN = "open", "open"
    RESOLVED = "resolved", "resolved"


class AlertReason(models.TextChoices):
    MISSED_HEARTBEAT = "missed_heartbeat", "heartbeats stopped"
    NEVER_REPORTED = "never_reported", "never sent a heartbeat"
    JOB_FAILED = "job_failed", "the job reported failure"
    JOB_HUNG = "job_hung", "a run exceeded its maximum duration"
    JOB_NOT_COMPLETED = "job_not_completed", "a run started and never completed"
    JOB_SLOW = "job_slow", "a run took much longer than usual"
    # An event, not a state: written already resolved (alerting.services.alert_notice).
    SCRIPT_SKIPPED = "script_skipped", "an agent refused a remediation script"
    # Remediation notices, written already resolved like SCRIPT_SKIPPED (alert_notice).
    REMEDIATION_CIRCUIT_OPEN = "remediation_circuit_open", "automatic remediation stopped"
    PLAYBOOK_DEMOTED = "playbook_demoted", "a playbook now needs approval"


class Alert(models.Model):
    service = models.ForeignKey(
        "heartbeats.Service", on_delete=models.CASCADE, related_name="alerts"
    )
    # Stable per service: one incident at a time, and the PagerDuty dedup key (v1: medic-{name}).
    dedup_key = models.CharField(max_length=300)
    state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.OPEN)
    reason = models.CharField(max_length=32, choices=AlertReason.choices)
    priority = models.CharField(max_length=2)
    summary = models.CharField(max_length=500)
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # How many notification rounds went out (v1 ``alert_cycle``).
    notify_count = models.PositiveIntegerField(default=0)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    next_notify_at = models.DateTimeField(null=True, blank=True)
    # True while notifications were held back (mute, maintenance): sent once the hold lifts.
    suppressed = models.BooleanField(default=False)
    # Context carried to every target: exit code, output tail, run id, durations, ...
    details = models.JSONField(default=dict, blank=True)
    external_reference_id = models.CharField(max_length=300, blank=True, default="")
    # Id in the v1 database for imported rows: makes the import idempotent.
    v1_id = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # The database, not the sweep, guarantees "exactly one open alert per service": two
            # concurrent sweepers cannot both insert one.
            models.UniqueConstraint(
                fields=["service"], condition=Q(state="open"), name="alert_one_open_per_service"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_notify_at"], name="alert_renotify_idx", condition=Q(state="open")
            ),
        ]

    def __str__(self) -> str:
        return f"alert {self.pk} {self.dedup_key} ({self.state})"


class Channel(models.TextChoices):
    SLACK = "slack", "Slack"
    PAGERDUTY = "pagerduty", "PagerDuty"
    WEBHOOK = "webhook", "Webhook"


class NotificationEvent(models.TextChoices):
    TRIGGER = "trigger", "alert opened"
    RENOTIFY = "renotify", "still down"
    RESOLVE = "resolve", "recovered"
    # A remediation gave up: the alert is raised again, PagerDuty included, with its story.
    ESCALATE = "escalate", "remediation escalated"
    MAINTENANCE_STARTED = "maint_start", "maintenance started"
    MAINTENANCE_ENDED = "maint_end", "maintenance ended"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RETRYING = "retrying", "retrying"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    SUPPRESSED = "suppressed", "suppressed"
    # notify-until-success: queued behind an earlier target of the same rule...
    WAITING = "waiting", "waiting for an earlier target"
    # ...and not needed because an earlier target succeeded.
    SKIPPED = "skipped", "skipped (an earlier target succeeded)"


class WorkingHours(models.Model):
    """A working-hours schedule (spec format in docs/working-hours.md), used by routing rules."""

    name = models.CharField(max_length=100, unique=True)
    spec = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "working-hours schedule"

    def __str__(self) -> str:
        return self.name


class NotificationTarget(models.Model):
    """Somewhere an alert can go. ``config`` holds plain settings; ``secrets`` holds AES-GCM
    tokens (medic.crypto) that the API never returns."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    config = models.JSONField(default=dict, blank=True)
    secrets = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class RoutingMode(models.TextChoices):
    ALL = "all", "notify all"
    UNTIL_SUCCESS = "until_success", "notify until success"


class RoutingWhen(models.TextChoices):
    ALWAYS = "always", "always"
    WORKING_HOURS = "working_hours", "during working hours"
    AFTER_HOURS = "after_hours", "after hours"


class RoutingRule(models.Model):
    """Which targets hear about which alerts. Rules are evaluated in ``position`` order; every
    matching rule contributes its targets until one with ``stop`` matches. When no rule matches,
    the default route applies (team Slack channel + PagerDuty from settings)."""

    name = models.CharField(max_length=100, unique=True)
    position = models.IntegerField(default=100)
    enabled = models.BooleanField(default=True)
    service = models.ForeignKey(
        "heartbeats.Service",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="routing_rules",
    )
    team = models.CharField(max_length=100, blank=True, default="")
    priorities = models.JSONField(default=list, blank=True)
    when = models.CharField(max_length=16, choices=RoutingWhen.choices, default=RoutingWhen.ALWAYS)
    schedule = models.ForeignKey(
        WorkingHours, null=True, blank=True, on_delete=models.PROTECT, related_name="rules"
    )
    mode = models.CharField(max_length=16, choices=RoutingMode.choices, default=RoutingMode.ALL)
    stop = models.BooleanField(default=False)
    targets = models.ManyToManyField(
        NotificationTarget, through="RoutingRuleTarget", related_name="rules"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class RoutingRuleTarget(models.Model):
    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="rule_targets")
    target = models.ForeignKey(NotificationTarget, on_delete=models.PROTECT)
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["rule_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "position"], name="rule_target_position"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}#{self.position} -> {self.target_id}"


class Delivery(models.Model):
    """One notification of one alert event to one target. Written before anything is sent."""

    # A delivery announces an alert event, or the start/end of a maintenance window.
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    window = models.ForeignKey(
        "heartbeats.MaintenanceWindow",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    window_occurrence = models.JSONField(default=dict, blank=True)
    event = models.CharField(max_length=11, choices=NotificationEvent.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # Human-readable destination (channel id, "PagerDuty routing key …abcd", URL host).
    target = models.CharField(max_length=300)
    # The configured target and rule that produced it (null: the default route).
    notification_target = models.ForeignKey(
        NotificationTarget, null=True, blank=True, on_delete=models.SET_NULL
    )
    rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL)
    # notify-until-success: deliveries of one rule share a group and are tried in position order.
    group = models.CharField(max_length=40, blank=True, default="")
    position = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # Transient failures that used a step of the retry schedule (rate-limit answers do not).
    failures = models.PositiveIntegerField(default=0)
    # A sending slot reserved from the destination's pace (alerting.pacing): the attempt that
    # runs at or after it sends without asking the pace again.
    slot_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True, default="")
    suppressed_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_pending_idx",
                condition=Q(status__in=["pending", "retrying"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} for alert {self.alert_id}: {self.status}"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=2000, blank=True, default="")
    error = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_unique")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"


class DeliveryPace(models.Model):
    """The pace of one destination (a Slack channel, a PagerDuty routing key) when no Redis is
    configured: the generic cell rate algorithm's theoretical arrival time, shared by every
    worker process through the database (alerting.pacing)."""

    key = models.CharField(max_length=200, primary_key=True)
    tat = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} next free at {self.tat:%H:%M:%S.%f}"
