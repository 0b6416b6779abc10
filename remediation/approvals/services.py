"""Approvals: open a request for a parked execution, decide it exactly once, let the deadline
decide when nobody does, and cancel it when the service recovers on its own.

Lock order: the approval row, then the execution row (``engine.execution_cancel`` and the
engine's transitions lock the execution). Every decision is audited with who, when, the channel
(slack, portal, api, mcp, system) and the reason.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from medic.enqueue import enqueue_on_commit
from medic.errors import Conflict, Forbidden, NotFound
from remediation.approvals import metrics, tasks
from remediation.approvals.models import (
    ApprovalMode,
    ApprovalRequest,
    ApprovalState,
    Channel,
    approval_page_url,
)
from remediation.playbooks import compliance, engine
from remediation.playbooks.models import Execution, ExecutionState
from remediation.playbooks.spec import seconds

logger = logging.getLogger(__name__)
SYSTEM = "system:approvals"
RECOVERED = "recovered on its own"


def expiry_seconds() -> int:
    return seconds(settings.MEDIC_APPROVAL_EXPIRY)


def approval_request_open(
    *, execution: Execution, spec: dict, demoted: bool, now: datetime
) -> ApprovalRequest:
    """Called by the engine in the transaction that parks the execution."""
    approval = spec["approval"]
    if approval.startswith("timeout:") and not demoted:
        mode = ApprovalMode.TIMEOUT
        deadline = now + timedelta(seconds=seconds(approval.split(":", 1)[1]))
        why = f"runs at {deadline:%H:%M} UTC unless declined ({approval})"
    else:
        mode = ApprovalMode.REQUIRED
        deadline = now + timedelta(seconds=expiry_seconds())
        why = (
            f"approval required: demoted ({execution.playbook.demoted_reason})"
            if demoted and approval == "none"
            else "approval required by the playbook"
        )
    request = ApprovalRequest.objects.create(
        execution=execution,
        mode=mode,
        requested_by=execution.requested_by,
        four_eyes=bool(spec.get("four_eyes")),
        approvers_needed=int(spec.get("approvers") or 1),
        why=why[:500],
        created_at=now,
        deadline_at=deadline,
    )
    compliance.audit(
        actor=execution.requested_by,
        event="approval.requested",
        object_type="execution",
        object_id=str(execution.pk),
        details={
            "mode": mode,
            "deadline_at": deadline.isoformat(),
            "four_eyes": request.four_eyes,
            "approvers_needed": request.approvers_needed,
        },
        playbook=execution.playbook.name,
        service=execution.service_name,
        execution_id=execution.pk,
    )
    transaction.on_commit(lambda: metrics.REQUESTS.labels(mode=mode).inc())
    enqueue_on_commit(tasks.slack_post, request.pk)
    _tell_alert(request, notify=True)
    return request


def _tell_alert(request: ApprovalRequest, *, notify: bool) -> None:
    """Put the approval summary on the alert (PagerDuty shows it in custom_details)."""
    from alerting.services import alert_approval_set

    execution = request.execution
    if not execution.alert_id:
        return
    summary = {
        "state": request.state,
        "execution_id": execution.pk,
        "playbook": f"{execution.playbook.name} v{execution.version.version}",
        "mode": request.mode,
        "why": request.why,
        "deadline_at": request.deadline_at.isoformat(),
        "requested_by": request.requested_by,
        "four_eyes": request.four_eyes,
        "approvers_needed": request.approvers_needed,
        "url": approval_page_url(execution.pk),
        "decide": f"the portal page above, Slack buttons, POST /v2/executions/{execution.pk}"
        "/approve or /decline, or the MCP tools approve_execution / decline_execution",
    }
    if request.state != ApprovalState.PENDING:
        summary.update(
            decided_by=request.decided_by, channel=request.channel, reason=request.reason
        )
    alert_approval_set(alert_id=execution.alert_id, approval=summary, notify=notify)


def _locked(execution_id: int) -> ApprovalRequest:
    request = (
        ApprovalRequest.objects.select_for_update(of=("self",))
        .select_related("execution", "execution__playbook")
        .filter(execution_id=execution_id)
        .first()
    )
    if request is None:
        if Execution.objects.filter(pk=execution_id).exists():
            raise Conflict(
                f"Execution {execution_id} is not waiting for approval.",
                code="approval_not_pending",
            )
        raise NotFound(f"No execution {execution_id}.", code="execution_not_found")
    return request


def _already(request: ApprovalRequest) -> Conflict:
    metrics.REFUSED.labels(why="already_decided").inc()
    by = request.decided_by or SYSTEM
    when = f"{request.decided_at:%Y-%m-%d %H:%M:%S} UTC" if request.decided_at else ""
    return Conflict(
        f"Already {request.state} by {by} at {when}"
        + (f": {request.reason}" if request.reason else "")
        + ".",
        code="approval_already_decided",
        fields={"state": [request.state], "decided_by": [by]},
    )


def _close(
    request: ApprovalRequest, state: str, actor: str, channel: str, reason: str, now: datetime
) -> None:
    request.state = state
    request.decided_at = now
    request.decided_by = actor[:150]
    request.channel = channel
    request.reason = reason[:1000]
    request.save(
        update_fields=["state", "decided_at", "decided_by", "channel", "reason", "approvals"]
    )
    execution = request.execution
    compliance.audit(
        actor=actor,
        event=f"approval.{state}",
        object_type="execution",
        object_id=str(execution.pk),
        details={"channel": channel, "reason": reason, "approvals": request.approvals},
        playbook=execution.playbook.name,
        service=execution.service_name,
        execution_id=execution.pk,
    )
    waited = (now - request.created_at).total_seconds()

    def count() -> None:
        metrics.DECISIONS.labels(channel=channel, decision=state).inc()
        metrics.TIME_TO_DECISION.labels(decision=state).observe(max(0.0, waited))

    transaction.on_commit(count)
    enqueue_on_commit(tasks.slack_update, request.pk)
    _tell_alert(request, notify=False)


def approval_decide(
    *,
    execution_id: int,
    actor: str,
    approve: bool,
    channel: str,
    reason: str = "",
    now: datetime | None = None,
) -> ApprovalRequest:
    """Approve or decline. Exactly once: a request already decided answers 409 naming who
    decided. With four-eyes the requester may not approve; with two approvers the first approval
    is recorded and the second (a different actor) starts the run."""
    now = now or timezone.now()
    if channel not in Channel.values:
        raise ValueError(channel)
    with transaction.atomic():
        request = _locked(execution_id)
        if request.state != ApprovalState.PENDING:
            raise _already(request)
        execution = _lock_execution(request, now)
        if execution is None:
            stale = request
        else:
            return _decide(request, execution, actor, approve, channel, reason, now)
    raise _already(stale)


def _decide(
    request: ApprovalRequest,
    execution: Execution,
    actor: str,
    approve: bool,
    channel: str,
    reason: str,
    now: datetime,
) -> ApprovalRequest:
    if not approve:
        _close(request, ApprovalState.DECLINED, actor, channel, reason, now)
        engine.execution_cancel(
            execution_id=execution.pk,
            actor=actor,
            reason=f"declined ({channel})" + (f": {reason}" if reason else ""),
        )
        return request
    if request.four_eyes and actor == request.requested_by:
        metrics.REFUSED.labels(why="four_eyes").inc()
        raise Forbidden("Four-eyes: whoever requested a run cannot approve it.", code="four_eyes")
    if any(a["actor"] == actor for a in request.approvals):
        metrics.REFUSED.labels(why="same_approver").inc()
        raise Conflict(
            f"{actor} already approved; a second, different approver is needed.",
            code="approval_needs_another_approver",
        )
    request.approvals = [
        *request.approvals,
        {"actor": actor, "channel": channel, "reason": reason, "at": now.isoformat()},
    ]
    if len(request.approvals) < request.approvers_needed:
        request.save(update_fields=["approvals"])
        enqueue_on_commit(tasks.slack_update, request.pk)
        compliance.audit(
            actor=actor,
            event="approval.approved_partly",
            object_type="execution",
            object_id=str(execution.pk),
            details={"channel": channel, "reason": reason, "needed": request.approvers_needed},
            playbook=execution.playbook.name,
            service=execution.service_name,
            execution_id=execution.pk,
        )
        return request
    _close(request, ApprovalState.APPROVED, actor, channel, reason, now)
    engine.execution_release(execution=execution, actor=actor, now=now)
    return request


def _lock_execution(request: ApprovalRequest, now: datetime) -> Execution | None:
    """Lock the request's execution; None (and the request closed) when it no longer waits
    (an admin cancelled it meanwhile)."""
    execution = (
        Execution.objects.select_for_update(of=("self",))
        .select_related("playbook", "version", "service")
        .get(pk=request.execution_id)
    )
    request.execution = execution
    if execution.state == ExecutionState.PENDING_APPROVAL:
        return execution
    _close(request, ApprovalState.CANCELLED, SYSTEM, Channel.SYSTEM, execution.error, now)
    return None


def approvals_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """The sweep: requests whose deadline passed. ``timeout`` runs; ``required`` expires (the
    execution times out and its alert escalates)."""
    now = now or timezone.now()
    ids = list(
        ApprovalRequest.objects.filter(state=ApprovalState.PENDING, deadline_at__lte=now)
        .order_by("deadline_at")
        .values_list("execution_id", flat=True)[:limit]
    )
    done = 0
    for execution_id in ids:
        with transaction.atomic():
            request = (
                ApprovalRequest.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(execution_id=execution_id, state=ApprovalState.PENDING)
                .first()
            )
            if request is None or request.deadline_at > now:
                continue
            execution = _lock_execution(request, now)
            if execution is None:
                pass
            elif request.mode == ApprovalMode.TIMEOUT:
                reason = "nobody declined before the deadline"
                _close(request, ApprovalState.APPROVED, SYSTEM, Channel.SYSTEM, reason, now)
                engine.execution_release(execution=execution, actor=SYSTEM, now=now)
            else:
                reason = (
                    f"nobody approved within {settings.MEDIC_APPROVAL_EXPIRY} "
                    "(MEDIC_APPROVAL_EXPIRY)"
                )
                _close(request, ApprovalState.EXPIRED, SYSTEM, Channel.SYSTEM, reason, now)
                engine.execution_expire(
                    execution=execution, now=now, message=f"approval expired: {reason}"
                )
            done += 1
    return done


def approvals_recovered(*, service_id: int, now: datetime | None = None) -> int:
    """The service recovered while requests wait: nobody approves a restart of a healthy
    service. Runs inside the event consumer's transaction."""
    now = now or timezone.now()
    ids = list(
        ApprovalRequest.objects.filter(
            state=ApprovalState.PENDING, execution__service_id=service_id
        ).values_list("execution_id", flat=True)
    )
    for execution_id in ids:
        with transaction.atomic():
            request = _locked(execution_id)
            if request.state != ApprovalState.PENDING:
                continue
            _close(request, ApprovalState.CANCELLED, SYSTEM, Channel.SYSTEM, RECOVERED, now)
            execution = request.execution
            if execution.state == ExecutionState.PENDING_APPROVAL:
                engine.execution_cancel(execution_id=execution_id, actor=SYSTEM, reason=RECOVERED)
    return len(ids)
