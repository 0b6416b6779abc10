"""Registered scripts (immutable versions), agents, and the jobs that run scripts.

Nothing runs that is not a row here: a job pins the script version it was queued with, and an
agent additionally refuses anything its host has not registered locally (docs/agent.md).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Script(models.Model):
    """A registered script by name; its behaviour lives in its versions."""

    name = models.CharField(max_length=128, unique=True)
    current_version = models.PositiveIntegerField(default=1)
    # Disabled scripts keep their versions (jobs point at them) but cannot be run.
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} v{self.current_version}"


class ScriptVersion(models.Model):
    """One immutable version of a script. Every change writes a new row (and an audit row)."""

    script = models.ForeignKey(Script, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    description = models.CharField(max_length=500, blank=True, default="")
    # How the worker runs it: an argv (no shell) or a body with a ``#!`` line. Empty both for a
    # script that only exists on agent hosts (known here by its sha256).
    command = models.JSONField(default=list, blank=True)
    body = models.TextField(blank=True, default="")
    # sha256 of the body, or of the file agents hold; agents compare it with their registry.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    args_schema = models.JSONField(default=dict)
    timeout_seconds = models.PositiveIntegerField(default=60)
    cpu_seconds = models.PositiveIntegerField(default=30)
    memory_mb = models.PositiveIntegerField(default=256)
    open_files = models.PositiveIntegerField(default=64)
    processes = models.PositiveIntegerField(default=32)
    output_bytes = models.PositiveIntegerField(default=65536)
    run_local = models.BooleanField(default=False)
    run_on_agents = models.BooleanField(default=False)
    # An agent may run it only if it carries every one of these labels (empty: any agent).
    agent_labels = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["script_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["script", "version"], name="script_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.script.name} v{self.version}"

    @property
    def limits(self) -> dict[str, int]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_mb": self.memory_mb,
            "open_files": self.open_files,
            "processes": self.processes,
            "output_bytes": self.output_bytes,
        }


class Agent(models.Model):
    """A host running medic-agent. Created with its API key (the key → agent binding); the
    agent fills in the rest when it registers."""

    name = models.CharField(max_length=100, unique=True)
    api_key = models.OneToOneField(
        "medic.ApiKey", on_delete=models.PROTECT, related_name="remediation_agent"
    )
    enabled = models.BooleanField(default=True)
    # Labels set by an admin, and those the agent reports from its configuration; targeting by
    # label and a script's agent_labels match their union.
    labels = models.JSONField(default=list, blank=True)
    reported_labels = models.JSONField(default=list, blank=True)
    hostname = models.CharField(max_length=255, blank=True, default="")
    os = models.CharField(max_length=32, blank=True, default="")
    arch = models.CharField(max_length=32, blank=True, default="")
    agent_version = models.CharField(max_length=32, blank=True, default="")
    # [{"name", "sha256"}] from the host's registry, as last reported.
    scripts = models.JSONField(default=list, blank=True)
    # The heartbeats.Service that monitors this agent (``agent-<name>``), made at registration.
    service = models.OneToOneField(
        "heartbeats.Service",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="remediation_agent",
    )
    registered_at = models.DateTimeField(null=True, blank=True)
    # Moved by polls at most once per MEDIC_AGENT_HEARTBEAT_SECONDS (with a heartbeat).
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Resident memory the agent reported with its polls (VmRSS; agents on systems without
    # /proc and older agents send none), stored at most once per MEDIC_AGENT_HEARTBEAT_SECONDS.
    memory_rss_bytes = models.BigIntegerField(null=True, blank=True)
    memory_reported_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def all_labels(self) -> list[str]:
        return sorted(set(self.labels) | set(self.reported_labels))


class AgentMemoryDay(models.Model):
    """The highest resident memory an agent reported on one UTC day: the history behind "agents
    over the memory threshold" over time. One row per agent and day."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="memory_days")
    day = models.DateField()
    max_rss_bytes = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "day"], name="agent_memory_day_unique")
        ]
        indexes = [models.Index(fields=["day"], name="agent_memory_day_idx")]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.day}: {self.max_rss_bytes}"


class JobTarget(models.TextChoices):
    LOCAL = "local", "the Medic worker"
    AGENT = "agent", "an agent"


class JobState(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    TIMED_OUT = "timed_out", "timed out"
    SKIPPED = "skipped", "skipped (refused by the agent)"


FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.SKIPPED)


class SkipReason(models.TextChoices):
    """The agent protocol's refusal reasons (agent-rs/src/registry.rs)."""

    NOT_REGISTERED = "not_registered", "not in the host's registry"
    HASH_MISMATCH_DISK = "hash_mismatch_disk", "file on disk changed"
    HASH_MISMATCH_SERVER = "hash_mismatch_server", "server and host disagree on the sha256"
    INVALID_ARGS = "invalid_args", "arguments refused"
    SHUTTING_DOWN = "shutting_down", "agent shutting down"


class Job(models.Model):
    """One run of one script version on one target."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Jobs queued by one run request share it (a label target makes one job per agent).
    batch = models.UUIDField(default=uuid.uuid4, db_index=True)
    script_version = models.ForeignKey(ScriptVersion, on_delete=models.PROTECT, related_name="jobs")
    target = models.CharField(max_length=8, choices=JobTarget.choices)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    args = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    exit_code = models.IntegerField(null=True, blank=True)
    signal = models.IntegerField(null=True, blank=True)
    timed_out = models.BooleanField(default=False)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    stdout_tail = models.TextField(blank=True, default="")
    stderr_tail = models.TextField(blank=True, default="")
    skip_reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True)
    # Why a job was skipped or failed without a result (lost, expired, refused by the sandbox).
    detail = models.CharField(max_length=1000, blank=True, default="")
    alert = models.ForeignKey(
        "alerting.Alert", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The poll's question, "the oldest queued job for this agent?", is an index probe.
            models.Index(
                fields=["agent", "created_at"],
                name="job_agent_queued_idx",
                condition=Q(state="queued"),
            ),
            # Job history (the portal's list, GET /v2/jobs) is newest first: its first page is
            # an index walk, not a sort of every job.
            models.Index(fields=["-created_at", "-id"], name="job_created_idx"),
            # The expiry task only looks at unfinished jobs.
            models.Index(
                fields=["created_at"],
                name="job_unfinished_idx",
                condition=Q(state__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES
