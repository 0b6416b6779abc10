"""Thin Celery tasks: ids in, one service call, idempotent by the job's state machine."""

from __future__ import annotations

from celery import shared_task

from remediation import jobs
from remediation.services import MAX_TIMEOUT_SECONDS, RUN_LOCAL_JOB_TASK

# A local job may run for the longest script timeout allowed, plus the sandbox's kill grace.
_RUN_LIMIT = MAX_TIMEOUT_SECONDS + 60


@shared_task(
    name=RUN_LOCAL_JOB_TASK,
    acks_late=True,
    ignore_result=True,
    time_limit=_RUN_LIMIT + 30,
    soft_time_limit=_RUN_LIMIT,
)
def run_local_job(job_id: str) -> None:
    """Run one queued local job in the sandbox; a redelivered message finds it claimed."""
    jobs.job_run_local(job_id=job_id)


@shared_task(name="remediation.expire_jobs", ignore_result=True, time_limit=60, soft_time_limit=50)
def expire_jobs() -> None:
    jobs.jobs_expire()
