"""Playbooks (immutable versions), their executions, steps and the transition log, circuit
breakers and the one switch that stops all remediation.

Execution state lives here, never in a worker: every transition is a compare-and-set on the
execution row plus an ``ExecutionEvent`` row in the same transaction, and ``due_at`` says when
the engine must next look at an execution (a step to run, a wait to end, a lease to recover).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Mode(models.TextChoices):
    ACTIVE = "active", "active"
    SHADOW = "shadow", "shadow (records what it would do)"


class Playbook(models.Model):
    name = models.CharField(max_length=100, unique=True)
    current_version = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    # Set when the recent success rate fell below MEDIC_PLAYBOOK_DEMOTION_THRESHOLD: automatic
    # runs then wait in pending_approval whatever the document says. Saving a new version
    # clears it (the fix is a new version).
    demoted_at = models.DateTimeField(null=True, blank=True)
    demoted_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} v{self.current_version}"


class PlaybookVersion(models.Model):
    """One immutable version: the source as written, the normalised spec the engine runs."""

    playbook = models.ForeignKey(Playbook, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    source = models.TextField()
    spec = models.JSONField()
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.ACTIVE)
    author = models.CharField(max_length=150)
    reason = models.CharField(max_length=500, blank=True, default="")
    # Unified diff of the source against the previous version ('' for the first).
    diff = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["playbook_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["playbook", "version"], name="playbook_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.playbook.name} v{self.version}"


class ExecutionState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "waiting for approval"
    RUNNING = "running", "running"
    WAITING = "waiting", "waiting (a wait, a condition or a script)"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    TIMED_OUT = "timed_out", "timed out (approval never came)"


ACTIVE_STATES = (ExecutionState.RUNNING, ExecutionState.WAITING)
OPEN_STATES = (*ACTIVE_STATES, ExecutionState.PENDING_APPROVAL)
FINAL_STATES = (
    ExecutionState.COMPLETED,
    ExecutionState.FAILED,
    ExecutionState.CANCELLED,
    ExecutionState.TIMED_OUT,
)


# ``Execution.trigger["kind"]`` of history recorded from another system (the Medic v1 import):
# final, never due, never scored, never counted for demotion.
HISTORY_KIND = "history.import"


class Outcome(models.TextChoices):
    RECOVERED = "recovered", "the service recovered within the verify window"
    NOT_RECOVERED = "not_recovered", "the service did not recover within the verify window"


class Execution(models.Model):
    playbook = models.ForeignKey(Playbook, on_delete=models.PROTECT, related_name="executions")
    # Pinned at start: editing the playbook never changes a run in flight.
    version = models.ForeignKey(PlaybookVersion, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    service = models.ForeignKey(
        "heartbeats.Service", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    service_name = models.CharField(max_length=255)
    alert = models.ForeignKey(
        "alerting.Alert", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=ExecutionState.choices)
    automatic = models.BooleanField(default=True)
    requested_by = models.CharField(max_length=150, default="system")
    # The event that started it: {"kind", "event_id", ...payload}.
    trigger = models.JSONField(default=dict)
    # Where the engine is: the step index (into version.spec["steps"]) and its attempt. The
    # Celery task for a step carries both, and only the holder of that pair may act.
    step_index = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    # When the engine must next look at this execution: the next step, a retry, the end of a
    # wait, or the end of a claimed step's lease (a crashed worker). Null when nothing is due.
    due_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Outcome scoring: did the service recover by verify_until?
    verify_until = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="")
    outcome_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The database is the final word on "one execution per (playbook, service) at a
            # time": two consumers racing on the same event cannot both start one.
            models.UniqueConstraint(
                fields=["playbook", "service"],
                condition=Q(state__in=["pending_approval", "running", "waiting"]),
                name="execution_one_open_per_playbook_service",
            )
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="execution_due_idx",
                condition=Q(state__in=["running", "waiting"]),
            ),
            models.Index(
                fields=["verify_until"],
                name="execution_verify_idx",
                condition=Q(outcome="", state="completed"),
            ),
            models.Index(fields=["service_name", "-created_at"], name="execution_service_idx"),
        ]

    def __str__(self) -> str:
        return f"execution {self.pk} {self.playbook_id}/{self.service_name} ({self.state})"

    @property
    def steps_spec(self) -> list[dict]:
        return self.version.spec["steps"]


class StepState(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    WAITING = "waiting", "waiting"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped"
    SHADOWED = "shadowed", "recorded only (shadow mode)"


class ExecutionStep(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=16)
    state = models.CharField(max_length=10, choices=StepState.choices, default=StepState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # How many times a worker claimed it (each poll of a wait, condition or script is a claim).
    claims = models.PositiveIntegerField(default=0)
    # True from a claim until its result is recorded; a claim finding it still True means the
    # previous holder died (its lease ran out), which ``interruptions`` counts.
    claim_open = models.BooleanField(default=False)
    interruptions = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    # What was (or, in shadow mode, would have been) done, variables resolved, secrets masked.
    request = models.JSONField(default=dict, blank=True)
    # status_code, body, exit_code, output, error, jobs: secrets masked.
    result = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["execution_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "position"], name="step_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}/{self.name} ({self.state})"


class ExecutionEvent(models.Model):
    """One row per transition, written with it."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40)
    from_state = models.CharField(max_length=16, blank=True, default="")
    to_state = models.CharField(max_length=16, blank=True, default="")
    step = models.CharField(max_length=100, blank=True, default="")
    attempt = models.PositiveIntegerField(null=True, blank=True)
    message = models.CharField(max_length=2000, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["execution_id", "id"]

    def __str__(self) -> str:
        return f"{self.execution_id} {self.kind} {self.from_state}->{self.to_state}"


class TriggerRecord(models.Model):
    """An event that matched a playbook but started nothing (already running, breaker open,
    limit reached, remediation stopped): the answer to "why did my playbook not run?"."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="+")
    service_name = models.CharField(max_length=255)
    event_id = models.BigIntegerField(null=True, blank=True)
    event_kind = models.CharField(max_length=40)
    decision = models.CharField(max_length=32)
    execution = models.ForeignKey(
        Execution, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=500, blank=True, default="")
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.playbook_id}/{self.service_name}: {self.decision}"


class BreakerScope(models.TextChoices):
    PLAYBOOK = "playbook", "playbook"
    SERVICE = "service", "service"


class CircuitBreaker(models.Model):
    """Open when automatic runs for a playbook or a service hit the cap in the window."""

    scope = models.CharField(max_length=8, choices=BreakerScope.choices)
    key = models.CharField(max_length=255)
    opened_at = models.DateTimeField(null=True, blank=True)
    opened_reason = models.CharField(max_length=500, blank=True, default="")
    # Runs before this instant do not count towards the cap (set by an admin reset).
    counted_since = models.DateTimeField(null=True, blank=True)
    reset_at = models.DateTimeField(null=True, blank=True)
    reset_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["scope", "key"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="breaker_scope_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} ({'open' if self.opened_at else 'closed'})"


class RemediationSwitch(models.Model):
    """The one switch that stops all remediation (a single row, id=1). MEDIC_REMEDIATION_ENABLED
    in the environment is the other half: either one off means nothing runs."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    stopped = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True, default="")
    changed_by = models.CharField(max_length=150, blank=True, default="")
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "remediation switch"

    def __str__(self) -> str:
        return "remediation stopped" if self.stopped else "remediation enabled"
