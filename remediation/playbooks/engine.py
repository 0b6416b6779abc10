"""The execution engine: start, claim, record, finish, cancel, and the recovery sweep.

One step at a time. ``playbooks.advance(execution_id, step_index, attempt)`` is the only task;
it acts only if the execution is still at that step and attempt and its ``due_at`` has passed:

1. *Claim* (one short transaction, row locked with SKIP LOCKED): push ``due_at`` forward by the
   step's lease (its timeout plus a margin) and count the claim. A second copy of the task, or
   a sweep re-enqueue, finds ``due_at`` in the future and does nothing. A script step's jobs
   are queued in this same transaction, so they exist exactly when the claim does.
2. *Execute* outside any transaction (the HTTP call, a heartbeat probe).
3. *Record* (one transaction): only if the execution is still at that step and attempt; the
   step's result, the transition and its ``ExecutionEvent`` row, the next ``due_at``, and the
   next task enqueued on commit.

A worker killed between 1 and 3 leaves ``due_at`` at the end of the lease; the sweep then
re-enqueues the same step and attempt, which resends the webhook with the same
``Idempotency-Key`` (or keeps watching the same script jobs). Waits hold no thread: the step
records ``due_at`` = the end of the wait and the task is scheduled for then.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from medic.errors import Conflict, MedicError
from remediation.playbooks import compliance, hooks, metrics, steps
from remediation.playbooks.models import (
    ACTIVE_STATES,
    OPEN_STATES,
    Execution,
    ExecutionEvent,
    ExecutionState,
    ExecutionStep,
    Mode,
    Playbook,
    StepState,
)
from remediation.playbooks.switch import remediation_stopped
from remediation.playbooks.variables import Scope

logger = logging.getLogger(__name__)
SYSTEM = "system:playbooks"
MAX_BACKOFF_SECONDS = 600
ADVANCE_TASK = "playbooks.advance"


# --- Transitions ------------------------------------------------------------------------------


def _event(execution: Execution, kind: str, now: datetime, **fields) -> None:
    ExecutionEvent.objects.create(execution=execution, at=now, kind=kind, **fields)


def _move(execution: Execution, to_state: str, kind: str, now: datetime, **fields) -> None:
    """Change the state and write its event row (caller holds the row lock, in a transaction)."""
    _event(execution, kind, now, from_state=execution.state, to_state=to_state, **fields)
    execution.state = to_state


def _send(args: tuple, countdown: float = 0.0) -> None:
    """Enqueue ``playbooks.advance`` by name: tasks call the engine, never the reverse, and a
    web process need not have imported the task module."""
    from celery import current_app

    current_app.send_task(ADVANCE_TASK, args=args, countdown=countdown)


def _enqueue(execution: Execution) -> None:
    """Schedule the task for the execution's current step after commit (the sweep is the net)."""
    if execution.due_at is None or execution.state not in ACTIVE_STATES:
        return
    args = (execution.pk, execution.step_index, execution.attempt)
    eta = execution.due_at

    def send() -> None:
        try:
            delay = (eta - timezone.now()).total_seconds()
            _send(args, countdown=max(0.0, delay))
        except Exception:
            logger.warning("could not enqueue a playbook step; the sweep will", exc_info=True)

    transaction.on_commit(send)


def _scope(execution: Execution) -> Scope:
    done = {
        s.name: {
            "status": s.result.get("status", s.state),
            "status_code": s.result.get("status_code"),
            "body": s.result.get("body"),
            "exit_code": s.result.get("exit_code"),
            "output": s.result.get("output"),
        }
        for s in execution.steps.all()
        if s.state not in (StepState.PENDING,)
    }
    return scope_for(
        service=execution.service,
        service_name=execution.service_name,
        playbook=execution.playbook.name,
        execution_id=str(execution.pk),
        alert_id=execution.alert_id,
        trigger=execution.trigger or {},
        steps=done,
    )


def scope_for(
    *,
    service,
    service_name: str,
    playbook: str,
    execution_id: str,
    alert_id: int | None,
    trigger: dict,
    steps: dict | None = None,
) -> Scope:
    """The variables a step sees; the portal's preview resolves a draft with this too."""
    builtins = {
        "SERVICE_NAME": service.service_name if service else service_name,
        "HEARTBEAT_NAME": service.heartbeat_name if service else service_name,
        "TEAM": service.team if service else "",
        "PRIORITY": service.priority if service else "",
        "ALERT_ID": str(alert_id or ""),
        "EXECUTION_ID": execution_id,
        "PLAYBOOK": playbook,
    }
    return Scope(builtins=builtins, trigger=trigger, steps=steps or {})


def story(execution: Execution) -> str:
    lines = [
        f"Playbook {execution.playbook.name} v{execution.version.version} "
        f"(execution {execution.pk}) for {execution.service_name}:"
    ]
    for step in execution.steps.order_by("position"):
        line = f"- {step.name} ({step.type}): {step.state}"
        if step.result.get("status_code") is not None:
            line += f", HTTP {step.result['status_code']}"
        if step.result.get("exit_code") is not None:
            line += f", exit code {step.result['exit_code']}"
        if step.result.get("error"):
            line += f" - {step.result['error']}"
        lines.append(line[:300])
    return "\n".join(lines)


# --- Start ------------------------------------------------------------------------------------


def execution_create(
    *,
    playbook: Playbook,
    service,
    alert_id: int | None,
    trigger: dict,
    automatic: bool,
    actor: str,
    now: datetime | None = None,
    mode: str | None = None,
) -> Execution | None:
    """Start an execution pinned to the playbook's current version (``mode`` overrides the
    version's: a dry run is a shadow run). None when one is already open for this playbook and
    service (the partial unique index decides). A parked execution gets its approval request."""
    now = now or timezone.now()
    version = playbook.versions.get(version=playbook.current_version)
    spec = version.spec
    demoted = automatic and playbook.demoted_at is not None
    needs_approval = spec["approval"] != "none" or demoted
    state = ExecutionState.PENDING_APPROVAL if needs_approval else ExecutionState.RUNNING
    try:
        with transaction.atomic():
            execution = Execution.objects.create(
                playbook=playbook,
                version=version,
                mode=mode or version.mode,
                service=service,
                service_name=service.heartbeat_name,
                alert_id=alert_id,
                state=state,
                automatic=automatic,
                requested_by=actor[:150],
                trigger=compliance.mask_value(trigger),
                created_at=now,
                started_at=None if needs_approval else now,
                due_at=None if needs_approval else now,
            )
            ExecutionStep.objects.bulk_create(
                ExecutionStep(execution=execution, position=i, name=s["name"], type=s["type"])
                for i, s in enumerate(spec["steps"])
            )
            why = (
                "approval required by the playbook"
                if spec["approval"] != "none"
                else f"approval required: demoted ({playbook.demoted_reason})"
            )
            _event(
                execution,
                "created",
                now,
                to_state=state,
                message=why if needs_approval else f"started by {actor}",
                details={"trigger": execution.trigger, "version": version.version},
            )
            if needs_approval:
                for parked in hooks.parked:
                    parked(execution=execution, spec=spec, demoted=demoted, now=now)
            compliance.audit(
                actor=actor,
                event="execution.started",
                object_type="execution",
                object_id=str(execution.pk),
                details={"state": state, "version": version.version, "mode": version.mode},
                playbook=playbook.name,
                service=service.heartbeat_name,
                execution_id=execution.pk,
            )
            _enqueue(execution)
    except IntegrityError:
        return None
    metrics.EXECUTIONS_STARTED.labels(playbook=playbook.name, mode=execution.mode).inc()
    return execution


def execution_preview(execution: Execution) -> list[dict]:
    """What each step will do, variables resolved against the execution, secrets masked (what
    an approver sees)."""
    scope = _scope(execution)
    now = timezone.now()
    preview = []
    for step in execution.steps.order_by("position"):
        spec = execution.steps_spec[step.position]
        try:
            would = steps.describe(steps.StepContext(execution, step, spec, scope, now))
        except Exception as exc:  # an unresolved variable: say so, the run would fail there
            would = {"error": str(exc) or exc.__class__.__name__}
        preview.append(
            {"name": step.name, "type": step.type, "would": compliance.mask_value(would)}
        )
    return preview


def execution_release(*, execution: Execution, actor: str, now: datetime) -> None:
    """The approval came: a parked execution starts its first step (the caller holds the row
    lock, in a transaction)."""
    _move(execution, ExecutionState.RUNNING, "approved", now, message=f"approved by {actor}")
    execution.started_at = now
    execution.due_at = now
    execution.save(update_fields=["state", "started_at", "due_at"])
    _enqueue(execution)


def execution_expire(*, execution: Execution, now: datetime, message: str) -> None:
    """Nobody decided in time: the parked execution times out and its alert escalates (the
    caller holds the row lock, in a transaction)."""
    _escalate(execution, now, message)
    _finish(execution, ExecutionState.TIMED_OUT, now, message)


# --- Advance ----------------------------------------------------------------------------------


def _lock(execution_id: int, step_index: int, attempt: int, *, skip_locked: bool):
    return (
        Execution.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("playbook", "version", "service")
        .filter(pk=execution_id, state__in=ACTIVE_STATES, step_index=step_index, attempt=attempt)
        .first()
    )


def _claim(execution_id: int, step_index: int, attempt: int, now: datetime):
    """Phase 1. Returns a StepContext, or a ready outcome for steps decided here, or None."""
    with transaction.atomic():
        execution = _lock(execution_id, step_index, attempt, skip_locked=True)
        if execution is None or execution.due_at is None or execution.due_at > now:
            return None, None
        stopped = remediation_stopped()
        if stopped:
            # Held, not failed: it resumes when the switch is turned back on.
            execution.due_at = now + timedelta(seconds=settings.MEDIC_PLAYBOOK_SWEEP_SECONDS * 6)
            execution.save(update_fields=["due_at"])
            return None, None
        spec = execution.steps_spec[step_index]
        step = ExecutionStep.objects.select_for_update().get(
            execution=execution, position=step_index
        )
        step.claims += 1
        if step.claim_open:
            step.interruptions += 1
            _event(
                execution,
                "step_resumed",
                now,
                step=step.name,
                attempt=attempt,
                message="the previous claim's lease ran out (its worker stopped)",
            )
        step.claim_open = True
        fields = ["claims", "claim_open", "interruptions"]
        if step.started_at is None or step.state == StepState.PENDING:
            step.started_at = now
            step.state = StepState.RUNNING
            fields += ["started_at", "state"]
            _event(execution, "step_started", now, step=step.name, attempt=attempt)
        if step.attempts < attempt:
            step.attempts = attempt
            fields.append("attempts")
            if spec["type"] == "script":
                step.result = {}
                fields.append("result")
        lease = spec["timeout_seconds"] + settings.MEDIC_PLAYBOOK_LEASE_MARGIN_SECONDS
        if spec["type"] in ("wait", "condition", "script"):
            # These only look at the database; a lease as long as the wait is not needed.
            lease = settings.MEDIC_PLAYBOOK_LEASE_MARGIN_SECONDS
        execution.due_at = now + timedelta(seconds=lease)
        execution.save(update_fields=["due_at"])
        ctx = steps.StepContext(execution, step, spec, _scope(execution), now)
        ready = None
        if step.interruptions > settings.MEDIC_PLAYBOOK_MAX_RESUMES:
            ready = steps.StepOutcome(
                steps.FAILED,
                {"status": "failed", "error": f"interrupted {step.interruptions} times"},
                message="the step was interrupted too many times (a worker keeps dying on it)",
                final=True,
            )
        elif execution.mode == Mode.SHADOW:
            ready = steps.StepOutcome("shadowed", {"status": "shadowed"}, steps.describe(ctx))
        elif spec["type"] == "script" and not step.result.get("jobs"):
            try:
                with transaction.atomic():
                    step.result = {"jobs": steps.script_dispatch(ctx)}
            except MedicError as exc:
                ready = steps.StepOutcome(
                    steps.FAILED,
                    {"status": "failed", "error": exc.message, "fields": exc.fields},
                    {"script": spec["script"], "args": steps.script_args(ctx)},
                    message=exc.message,
                    final=True,
                )
            else:
                fields.append("result")
                _event(
                    execution,
                    "script_queued",
                    now,
                    step=step.name,
                    attempt=attempt,
                    details={"jobs": step.result["jobs"]},
                )
        step.save(update_fields=sorted(set(fields)))
        return ctx, ready


def execution_advance(
    *, execution_id: int, step_index: int, attempt: int, now: datetime | None = None
) -> None:
    """The task body: claim the step, run it, record what happened."""
    controlled = now is not None
    now = now or timezone.now()
    ctx, outcome = _claim(execution_id, step_index, attempt, now)
    if ctx is None:
        return
    if outcome is None:
        started = timezone.now()
        try:
            outcome = steps.EXECUTORS[ctx.spec["type"]](ctx)
        except MedicError as exc:
            outcome = steps.StepOutcome(
                steps.FAILED,
                {"status": "failed", "error": exc.message},
                message=exc.message,
                final=True,
            )
        metrics.STEP_DURATION.labels(type=ctx.spec["type"]).observe(
            (timezone.now() - started).total_seconds()
        )
    _record(execution_id, step_index, attempt, outcome, now if controlled else timezone.now())


def _record(execution_id: int, step_index: int, attempt: int, outcome, now: datetime) -> None:
    with transaction.atomic():
        execution = _lock(execution_id, step_index, attempt, skip_locked=False)
        if execution is None:
            return  # cancelled meanwhile, or already recorded
        spec = execution.steps_spec[step_index]
        step = ExecutionStep.objects.select_for_update().get(
            execution=execution, position=step_index
        )
        mask = compliance.masker()
        if outcome.request is not None:
            step.request = mask(outcome.request)
        step.result = mask({**step.result, **outcome.result})
        step.claim_open = False
        fields = [
            "request",
            "result",
            "state",
            "finished_at",
            "duration_ms",
            "deadline_at",
            "claim_open",
        ]
        if outcome.status == steps.WAIT:
            step.state = StepState.WAITING
            step.deadline_at = outcome.resume_at
            step.save(update_fields=fields)
            if execution.state != ExecutionState.WAITING:
                _move(
                    execution,
                    ExecutionState.WAITING,
                    "waiting",
                    now,
                    step=step.name,
                    message=f"until {outcome.resume_at:%H:%M:%S} UTC",
                )
            execution.due_at = outcome.resume_at
            execution.save(update_fields=["state", "due_at"])
            _enqueue(execution)
            return
        step.finished_at = now
        step.duration_ms = int((now - step.started_at).total_seconds() * 1000)
        if outcome.status in (steps.SUCCEEDED, "shadowed", steps.ESCALATE):
            step.state = StepState.SHADOWED if outcome.status == "shadowed" else StepState.SUCCEEDED
            step.save(update_fields=fields)
            _event(
                execution,
                f"step_{step.state}",
                now,
                step=step.name,
                attempt=attempt,
                details={"request": step.request, "result": step.result},
            )
            _audit_step(execution, step)
            metrics.STEPS.labels(type=step.type, outcome=step.state).inc()
            if outcome.status == steps.ESCALATE:
                _escalate(execution, now, outcome.message)
                _finish(execution, ExecutionState.FAILED, now, "escalated")
            else:
                _goto(execution, step_index + 1, now)
        elif not outcome.final and attempt < spec["retries"] + 1:
            backoff = min(MAX_BACKOFF_SECONDS, spec.get("backoff_seconds", 5) * 2 ** (attempt - 1))
            backoff *= 1 + random.random() / 10  # jitter: a fleet does not retry in lockstep
            step.state = StepState.RUNNING
            step.save(update_fields=fields)
            execution.attempt = attempt + 1
            execution.due_at = now + timedelta(seconds=backoff)
            if execution.state != ExecutionState.RUNNING:
                _move(execution, ExecutionState.RUNNING, "running", now, step=step.name)
            _event(
                execution,
                "step_retry",
                now,
                step=step.name,
                attempt=attempt,
                message=outcome.message[:2000],
                details={"result": step.result},
            )
            execution.save(update_fields=["attempt", "due_at", "state"])
            _enqueue(execution)
        else:
            step.state = StepState.FAILED
            step.save(update_fields=fields)
            _event(
                execution,
                "step_failed",
                now,
                step=step.name,
                attempt=attempt,
                message=outcome.message[:2000],
                details={"request": step.request, "result": step.result},
            )
            _audit_step(execution, step)
            metrics.STEPS.labels(type=step.type, outcome="failed").inc()
            _on_failure(execution, spec, step, now, outcome.message)


def _audit_step(execution: Execution, step: ExecutionStep) -> None:
    event = {"webhook": "webhook.called", "script": "script.run"}.get(step.type, "execution.step")
    compliance.audit(
        actor=SYSTEM,
        event=event,
        object_type="execution_step",
        object_id=f"{execution.pk}:{step.name}",
        details={
            "step": step.name,
            "type": step.type,
            "state": step.state,
            "request": step.request,
            "result": step.result,
        },
        playbook=execution.playbook.name,
        service=execution.service_name,
        execution_id=execution.pk,
    )


def _on_failure(execution: Execution, spec: dict, step: ExecutionStep, now, message: str) -> None:
    action = spec["on_failure"]["action"]
    if action == "continue":
        _goto(execution, step.position + 1, now)
    elif action == "goto":
        target = next(
            i for i, s in enumerate(execution.steps_spec) if s["name"] == spec["on_failure"]["step"]
        )
        ExecutionStep.objects.filter(
            execution=execution,
            position__gt=step.position,
            position__lt=target,
            state=StepState.PENDING,
        ).update(state=StepState.SKIPPED)
        _goto(execution, target, now)
    elif action == "escalate":
        _escalate(execution, now, f"step {step.name} failed: {message}")
        _finish(execution, ExecutionState.FAILED, now, f"step {step.name} failed; escalated")
    else:
        _finish(execution, ExecutionState.FAILED, now, f"step {step.name} failed: {message}")


def _goto(execution: Execution, index: int, now: datetime) -> None:
    if index >= len(execution.steps_spec):
        _finish(execution, ExecutionState.COMPLETED, now, "all steps done")
        return
    execution.step_index = index
    execution.attempt = 1
    execution.due_at = now
    if execution.state != ExecutionState.RUNNING:
        _move(
            execution,
            ExecutionState.RUNNING,
            "running",
            now,
            step=execution.steps_spec[index]["name"],
        )
    execution.save(update_fields=["step_index", "attempt", "due_at", "state"])
    _enqueue(execution)


def _finish(execution: Execution, state: str, now: datetime, message: str) -> None:
    _move(execution, state, state, now, message=message[:2000])
    execution.finished_at = now
    execution.due_at = None
    execution.error = "" if state == ExecutionState.COMPLETED else message[:1000]
    fields = ["state", "finished_at", "due_at", "error"]
    if state == ExecutionState.COMPLETED:
        execution.verify_until = now + timedelta(
            seconds=execution.version.spec["verify_window_seconds"]
        )
        fields.append("verify_until")
    ExecutionStep.objects.filter(execution=execution, state=StepState.PENDING).update(
        state=StepState.SKIPPED
    )
    execution.save(update_fields=fields)
    compliance.audit(
        actor=SYSTEM,
        event=f"execution.{state}",
        object_type="execution",
        object_id=str(execution.pk),
        details={"message": message, "mode": execution.mode},
        playbook=execution.playbook.name,
        service=execution.service_name,
        execution_id=execution.pk,
    )
    outcome = "shadow" if execution.mode == Mode.SHADOW else state
    transaction.on_commit(
        lambda: metrics.EXECUTIONS_FINISHED.labels(
            playbook=execution.playbook.name, outcome=outcome
        ).inc()
    )


def _escalate(execution: Execution, now: datetime, message: str) -> None:
    from alerting.models import Alert, AlertState
    from alerting.services import alert_escalate

    alert_id = execution.alert_id
    if alert_id is None and execution.service_id:
        alert_id = (
            Alert.objects.filter(service_id=execution.service_id, state=AlertState.OPEN)
            .values_list("pk", flat=True)
            .first()
        )
    text = story(execution) + (f"\n{message}" if message else "")
    alert = None
    if alert_id is not None:
        alert = alert_escalate(
            alert_id=alert_id,
            remediation={
                "execution_id": execution.pk,
                "playbook": execution.playbook.name,
                "version": execution.version.version,
                "outcome": "escalated",
                "story": compliance.mask(text),
            },
            now=now,
        )
    _event(
        execution,
        "escalated",
        now,
        message=(f"alert {alert.pk} escalated" if alert else "no open alert to escalate")
        + (f": {message}" if message else ""),
        details={"alert_id": alert.pk if alert else None, "story": compliance.mask(text)},
    )


# --- Cancel, approval parking, nudges, the sweep ----------------------------------------------


def execution_cancel(*, execution_id: int, actor: str, reason: str = "") -> Execution:
    now = timezone.now()
    with transaction.atomic():
        execution = (
            Execution.objects.select_for_update(of=("self",))
            .select_related("playbook", "version")
            .filter(pk=execution_id)
            .first()
        )
        if execution is None:
            from medic.errors import NotFound

            raise NotFound(f"No execution {execution_id}.", code="execution_not_found")
        if execution.state not in OPEN_STATES:
            raise Conflict(
                f"Execution {execution_id} is already {execution.state}.", code="execution_finished"
            )
        _move(
            execution,
            ExecutionState.CANCELLED,
            "cancelled",
            now,
            message=f"cancelled by {actor}" + (f": {reason}" if reason else ""),
        )
        execution.finished_at = now
        execution.due_at = None
        execution.error = f"cancelled by {actor}"[:1000]
        execution.save(update_fields=["state", "finished_at", "due_at", "error"])
        ExecutionStep.objects.filter(
            execution=execution, state__in=[StepState.PENDING, StepState.RUNNING, StepState.WAITING]
        ).update(state=StepState.SKIPPED)
        compliance.audit(
            actor=actor,
            event="execution.cancelled",
            object_type="execution",
            object_id=str(execution.pk),
            details={"reason": reason},
            playbook=execution.playbook.name,
            service=execution.service_name,
            execution_id=execution.pk,
        )
    metrics.EXECUTIONS_FINISHED.labels(playbook=execution.playbook.name, outcome="cancelled").inc()
    return execution


def executions_nudge(*, service_id: int, now: datetime | None = None) -> int:
    """A service recovered: waiting condition steps need not wait for their next poll."""
    now = now or timezone.now()
    ids = list(
        Execution.objects.filter(
            service_id=service_id, state=ExecutionState.WAITING, due_at__gt=now
        ).values_list("pk", "step_index", "attempt", "version__spec")
    )
    nudged = 0
    for pk, index, attempt, spec in ids:
        if spec["steps"][index]["type"] != "condition":
            continue
        with transaction.atomic():
            updated = Execution.objects.filter(
                pk=pk, step_index=index, attempt=attempt, state=ExecutionState.WAITING
            ).update(due_at=now)
            if updated:
                execution = Execution(
                    pk=pk,
                    step_index=index,
                    attempt=attempt,
                    due_at=now,
                    state=ExecutionState.WAITING,
                )
                _enqueue(execution)
                nudged += 1
    return nudged


def executions_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """The safety net: enqueue every step whose due time has passed (a lost message, a killed
    worker's lease, a wait that ended while nothing was scheduled)."""
    now = now or timezone.now()
    # A grace period: steps just scheduled are already on their way.
    cutoff = now - timedelta(seconds=settings.MEDIC_PLAYBOOK_SWEEP_GRACE_SECONDS)
    due = list(
        Execution.objects.filter(state__in=ACTIVE_STATES, due_at__lte=cutoff)
        .order_by("due_at")
        .values_list("pk", "step_index", "attempt")[:limit]
    )
    for args in due:
        try:
            _send(args)
        except Exception:
            logger.warning("could not enqueue a due playbook step", exc_info=True)
            break
    return len(due)
