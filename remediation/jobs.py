"""Job lifecycle: claim by a poll, results and skips from agents, local runs, expiry.

States: queued → running → succeeded | failed | timed_out | skipped. Every transition is a
compare-and-set on the state, so a job runs at most once: a poll claims it with
``SELECT ... FOR UPDATE SKIP LOCKED``, a local run with a conditional UPDATE, and a job whose
runner vanished is failed by ``jobs_expire`` rather than run again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerting.models import Alert, AlertReason
from alerting.services import alert_notice
from medic.errors import NotFound
from medic.events.models import EventKind
from medic.events.services import event_record
from remediation import sandbox
from remediation.audit.services import audit_record
from remediation.metrics import (
    AGENT_JOB_DELIVERY,
    AGENT_JOBS,
    AGENT_SKIPS,
    LOCAL_RUN_DURATION,
    LOCAL_RUNS,
)
from remediation.models import Agent, Job, JobState, JobTarget, SkipReason
from remediation.secrets.services import secrets_mask

logger = logging.getLogger(__name__)
# The end of a job's output kept in its audit row (the job row keeps up to output_bytes).
AUDIT_OUTPUT_CHARS = 2000
SKIP_ALERT_REASON = AlertReason.SCRIPT_SKIPPED
# Refusals that say something is wrong on the host or in the registry; a skip because the
# agent was stopping is recorded on the job but alerts nobody.
ALERTING_SKIPS = frozenset(
    {
        SkipReason.NOT_REGISTERED,
        SkipReason.HASH_MISMATCH_DISK,
        SkipReason.HASH_MISMATCH_SERVER,
        SkipReason.INVALID_ARGS,
    }
)


def job_payload(job: Job) -> dict:
    """The job as an agent receives it (agent-rs/src/client.rs ``Job``)."""
    version = job.script_version
    return {
        "id": str(job.pk),
        "script": {
            "name": version.script.name,
            "version": version.version,
            "sha256": version.sha256,
        },
        "args": job.args,
        "timeout_seconds": version.timeout_seconds,
        "limits": version.limits,
    }


def job_claim_next(*, agent_id: int) -> dict | None:
    """Hand the oldest queued job of an agent to the poll asking (None: nothing queued)."""
    now = timezone.now()
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("script_version__script")
            .filter(agent_id=agent_id, state=JobState.QUEUED)
            .order_by("created_at", "id")
            .first()
        )
        if job is None:
            return None
        job.state = JobState.RUNNING
        job.started_at = now
        job.save(update_fields=["state", "started_at"])
    AGENT_JOB_DELIVERY.observe(max(0.0, (now - job.created_at).total_seconds()))
    return job_payload(job)


def job_release(*, job_id: str) -> None:
    """Put back a job whose poll went away while claiming it (it never left the server)."""
    Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(
        state=JobState.QUEUED, started_at=None
    )


def _agent_job_for_update(agent_id: int, job_id: str) -> Job:
    from remediation.selectors import job_get

    job = job_get(job_id)  # validates the id format, 404 otherwise
    job = (
        Job.objects.select_for_update(of=("self",))
        .select_related("script_version__script", "agent__service")
        .filter(pk=job.pk, agent_id=agent_id)
        .first()
    )
    if job is None:
        # Another agent's job is "not found" too: an agent learns nothing about others.
        raise NotFound(f"No job with id '{job_id}' for this agent.", code="job_not_found")
    return job


def _tail(text: str, cap: int) -> str:
    text = (text or "").replace("\x00", "\ufffd")
    data = text.encode()
    if len(data) <= cap:
        return text
    return data[-cap:].decode("utf-8", errors="replace")


@dataclass
class Result:
    exit_code: int | None
    duration_ms: int
    stdout_tail: str
    stderr_tail: str
    timed_out: bool
    signal: int | None


def _state_for(result: Result) -> str:
    if result.timed_out:
        return JobState.TIMED_OUT
    if result.exit_code == 0 and result.signal is None:
        return JobState.SUCCEEDED
    return JobState.FAILED


def _apply_result(job: Job, result: Result, now: datetime) -> None:
    cap = job.script_version.output_bytes
    job.state = _state_for(result)
    job.exit_code = result.exit_code
    job.signal = result.signal
    job.timed_out = result.timed_out
    job.duration_ms = max(0, result.duration_ms)
    # A script may print a secret it was given; no output is stored or shown with it.
    job.stdout_tail = secrets_mask(_tail(result.stdout_tail, cap))
    job.stderr_tail = secrets_mask(_tail(result.stderr_tail, cap))
    job.finished_at = now
    job.save(
        update_fields=[
            "state",
            "exit_code",
            "signal",
            "timed_out",
            "duration_ms",
            "stdout_tail",
            "stderr_tail",
            "finished_at",
        ]
    )
    job_audit_finished(job, actor=f"agent:{job.agent.name}" if job.agent_id else "system")


def job_audit_finished(job: Job, *, actor: str) -> None:
    """The audit row of a job's result, in the transaction that records it."""
    version = job.script_version
    audit_record(
        actor=actor,
        event="job.finished",
        object_type="job",
        object_id=str(job.pk),
        details={
            "script": version.script.name,
            "version": version.version,
            "batch": str(job.batch),
            "target": job.target,
            "agent": job.agent.name if job.agent_id else None,
            "state": job.state,
            "exit_code": job.exit_code,
            "signal": job.signal,
            "timed_out": job.timed_out,
            "duration_ms": job.duration_ms,
            "skip_reason": job.skip_reason,
            "detail": job.detail,
            "stdout_tail": job.stdout_tail[-AUDIT_OUTPUT_CHARS:],
            "stderr_tail": job.stderr_tail[-AUDIT_OUTPUT_CHARS:],
            "requested_by": job.requested_by,
        },
    )


def job_report_result(*, agent_id: int, job_id: str, result: Result) -> Job:
    """An agent's result. Reports are idempotent: a repeat of a finished job changes nothing
    (the agent retries when a response is lost)."""
    with transaction.atomic():
        job = _agent_job_for_update(agent_id, job_id)
        if job.finished:
            return job
        _apply_result(job, result, timezone.now())
    AGENT_JOBS.labels(outcome=job.state).inc()
    return job


def job_report_skipped(*, agent_id: int, job_id: str, reason: str, detail: str) -> Job:
    """An agent refused a job. Refusals that point at a problem open a skip alert."""
    now = timezone.now()
    with transaction.atomic():
        job = _agent_job_for_update(agent_id, job_id)
        if job.finished:
            return job
        job.state = JobState.SKIPPED
        job.skip_reason = reason
        job.detail = (detail or "")[:1000].replace("\x00", "\ufffd")
        job.finished_at = now
        if reason in ALERTING_SKIPS:
            job.alert = skip_alert_open(job=job, now=now)
        job.save(update_fields=["state", "skip_reason", "detail", "finished_at", "alert"])
        job_audit_finished(job, actor=f"agent:{job.agent.name}")
    AGENT_JOBS.labels(outcome=JobState.SKIPPED).inc()
    AGENT_SKIPS.labels(reason=reason).inc()
    logger.warning(
        "agent skipped a job",
        extra={
            "agent": job.agent.name,
            "job_id": str(job.pk),
            "script": job.script_version.script.name,
            "reason": reason,
            "detail": job.detail,
        },
    )
    return job


def skip_alert_dedup_key(agent: Agent, script: str, reason: str) -> str:
    return f"medic-agent-{agent.name}-skip-{script}-{reason}"[:300]


def skip_alert_open(*, job: Job, now: datetime) -> Alert | None:
    """Record ``agent.script_refused`` and notify the refusal through the normal routing of the
    agent's service (alerting's notice: an event, not an incident). Repeats of the same refusal
    within MEDIC_AGENT_SKIP_ALERT_DEDUP_MINUTES join the first notice instead of paging again.
    """
    agent = job.agent
    service = agent.service
    script = job.script_version.script.name
    event_record(
        kind=EventKind.AGENT_SCRIPT_REFUSED,
        service_id=service.pk if service else None,
        service_name=service.heartbeat_name if service else "",
        occurred_at=now,
        payload={
            "agent": agent.name,
            "job_id": str(job.pk),
            "script": script,
            "reason": job.skip_reason,
            "detail": job.detail,
        },
    )
    if service is None:
        return None
    return alert_notice(
        service=service,
        dedup_key=skip_alert_dedup_key(agent, script, job.skip_reason),
        reason=SKIP_ALERT_REASON,
        summary=(
            f"medic-agent {agent.name} refused script '{script}' ({job.skip_reason}): {job.detail}"
        ),
        dedup_window=timedelta(minutes=settings.MEDIC_AGENT_SKIP_ALERT_DEDUP_MINUTES),
        now=now,
    )


# --- Local runs -------------------------------------------------------------------------------


def job_run_local(*, job_id: str) -> Job | None:
    """Run a queued local job in the sandbox (the Celery task's body). Runs at most once: a
    redelivered task finds the job no longer queued and does nothing."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, state=JobState.QUEUED, target=JobTarget.LOCAL).update(
        state=JobState.RUNNING, started_at=now
    )
    if not claimed:
        return None
    job = Job.objects.select_related("script_version__script").get(pk=job_id)
    version = job.script_version
    limits = sandbox.Limits(
        timeout_seconds=version.timeout_seconds,
        cpu_seconds=version.cpu_seconds,
        memory_mb=version.memory_mb,
        open_files=version.open_files,
        processes=version.processes,
        output_bytes=version.output_bytes,
    )
    try:
        outcome = sandbox.run(
            command=version.command or None,
            body=version.body or None,
            sha256=version.sha256,
            args=job.args,
            limits=limits,
            job_id=str(job.pk),
        )
    except Exception as exc:
        logger.exception("sandbox could not run a job", extra={"job_id": str(job.pk)})
        with transaction.atomic():
            failed = Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(
                state=JobState.FAILED,
                detail=f"sandbox error: {exc}"[:1000],
                finished_at=timezone.now(),
            )
            job.refresh_from_db()
            if failed:
                job_audit_finished(job, actor="system")
        LOCAL_RUNS.labels(outcome="error").inc()
        return job
    result = Result(
        exit_code=outcome.exit_code,
        duration_ms=outcome.duration_ms,
        stdout_tail=outcome.stdout_tail,
        stderr_tail=outcome.stderr_tail,
        timed_out=outcome.timed_out,
        signal=outcome.signal,
    )
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(of=("self",))
            .select_related("script_version__script", "agent")
            .get(pk=job.pk)
        )
        if job.state == JobState.RUNNING:
            _apply_result(job, result, timezone.now())
    LOCAL_RUNS.labels(outcome=job.state).inc()
    LOCAL_RUN_DURATION.observe(outcome.duration_ms / 1000)
    return job


# --- Expiry -----------------------------------------------------------------------------------


EXPIRE_BATCH = 5000
# The detail of a job that started but never reported: its runner died mid-script, so whether
# its side effect happened is unknown (a playbook step does not run it again).
LOST_DETAIL = "Lost: no result within the script's timeout plus MEDIC_AGENT_RESULT_GRACE_SECONDS."


def jobs_expire(*, now: datetime | None = None) -> int:
    """Fail jobs nobody will finish: queued past MEDIC_AGENT_JOB_QUEUE_TTL_SECONDS (the agent
    never polled; no worker took the task), or running past their timeout plus
    MEDIC_AGENT_RESULT_GRACE_SECONDS (the agent or worker died, or the poll response was lost).
    Failing, never re-queueing: a remediation must not run twice. Each failed job gets its
    audit row in the same transaction; rows locked by a result being recorded right now are
    skipped (that result wins)."""
    now = now or timezone.now()
    queued_cutoff = now - timedelta(seconds=settings.MEDIC_AGENT_JOB_QUEUE_TTL_SECONDS)
    grace = timedelta(seconds=settings.MEDIC_AGENT_RESULT_GRACE_SECONDS)
    locked = Job.objects.select_for_update(skip_locked=True, of=("self",)).select_related(
        "script_version__script", "agent"
    )
    with transaction.atomic():
        stale = list(
            locked.filter(state=JobState.QUEUED, created_at__lt=queued_cutoff).order_by(
                "created_at", "id"
            )[:EXPIRE_BATCH]
        )
        for job in stale:
            _fail(job, now, "Expired: not picked up within MEDIC_AGENT_JOB_QUEUE_TTL_SECONDS.")
        running = locked.filter(state=JobState.RUNNING, started_at__lt=now - grace).order_by(
            "started_at", "id"
        )[:EXPIRE_BATCH]
        lost = [
            job
            for job in running
            if job.started_at + timedelta(seconds=job.script_version.timeout_seconds) + grace < now
        ]
        for job in lost:
            _fail(job, now, LOST_DETAIL)
    if stale:
        AGENT_JOBS.labels(outcome="expired").inc(len(stale))
    if lost:
        AGENT_JOBS.labels(outcome="lost").inc(len(lost))
    return len(stale) + len(lost)


def _fail(job: Job, now: datetime, detail: str) -> None:
    job.state = JobState.FAILED
    job.finished_at = now
    job.detail = detail
    job.save(update_fields=["state", "finished_at", "detail"])
    job_audit_finished(job, actor="system")
