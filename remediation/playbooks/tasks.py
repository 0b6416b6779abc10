"""Thin Celery tasks: ids in, one engine call. Repeats and stale copies are no-ops (the claim
is a compare-and-set on execution, step and attempt)."""

from __future__ import annotations

from celery import shared_task

from remediation.playbooks import engine, hooks, scoring, triggers
from remediation.playbooks.spec import MAX_TIMEOUT_SECONDS


@shared_task(
    name="playbooks.advance",
    acks_late=True,
    ignore_result=True,
    # A step runs at most its own timeout (6 h at most) plus the HTTP connect time.
    time_limit=MAX_TIMEOUT_SECONDS + 120,
    soft_time_limit=MAX_TIMEOUT_SECONDS + 60,
)
def advance(execution_id: int, step_index: int, attempt: int) -> None:
    engine.execution_advance(execution_id=execution_id, step_index=step_index, attempt=attempt)


@shared_task(name="playbooks.sweep", ignore_result=True, time_limit=120, soft_time_limit=100)
def sweep() -> None:
    """The safety net (every few seconds in beat): re-enqueue overdue steps, act on approval
    deadlines, score outcomes, forget old trigger decisions (and whatever else registered:
    approvals' deadlines, the agents' memory history)."""
    engine.executions_due()
    for extra in hooks.sweep:
        extra()
    scoring.outcomes_score()
    triggers.trigger_records_prune()
