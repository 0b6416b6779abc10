"""One approval request in the portal: everything needed to decide on one page (the alert's
timeline, the service's recent heartbeats and runs, the pinned playbook version and its diff,
what each step will do, earlier executions of the playbook) and the decision itself.

The decision goes through ``approval_decide``, the function Slack, the API and MCP call: it is
taken exactly once, and a second decider is told who decided. Viewers see the page; deciding
needs an operator or an admin (``RoleRequiredMixin`` refuses anyone else's POST with a 403).
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone

from alerting.models import Alert
from dashboard import remediation_selectors as rsel
from dashboard import selectors
from dashboard.views.base import Page, actor
from medic.errors import MedicError
from remediation.approvals.models import ApprovalRequest, ApprovalState, Channel
from remediation.approvals.services import RECOVERED, approval_decide
from remediation.playbooks import engine
from remediation.playbooks import selectors as playbook_selectors


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("decline", "Decline")])
    reason = forms.CharField(
        required=False,
        max_length=1000,
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded in the audit log and shown in Slack and PagerDuty.",
    )


def _outcome(request: ApprovalRequest) -> tuple[str, str]:
    """(headline, badge class) of a request that no longer waits."""
    who = request.decided_by or "Medic"
    if request.state == ApprovalState.APPROVED:
        if request.channel == Channel.SYSTEM:
            return "Ran at the deadline: nobody declined in time", "good"
        return f"Approved by {who} ({request.get_channel_display()})", "good"
    if request.state == ApprovalState.DECLINED:
        return f"Declined by {who} ({request.get_channel_display()})", "bad"
    if request.state == ApprovalState.EXPIRED:
        return "Expired: nobody approved in time; the alert escalated", "warn"
    if request.reason == RECOVERED:
        return "Cancelled: the service recovered on its own", "good"
    return f"Cancelled: {request.reason or 'the execution was cancelled'}", "neutral"


class ApprovalDetail(Page):
    template_name = "dashboard/approvals/detail.html"

    def _request(self, pk: int) -> ApprovalRequest:
        request = (
            ApprovalRequest.objects.select_related(
                "execution",
                "execution__playbook",
                "execution__version",
                "execution__service",
            )
            .filter(execution_id=pk)
            .first()
        )
        if request is None:
            raise Http404(f"Execution {pk} never waited for approval.")
        return request

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        approval = self._request(kwargs["pk"])
        execution = approval.execution
        now = timezone.now()
        alert = (
            Alert.objects.select_related("service").filter(pk=execution.alert_id).first()
            if execution.alert_id
            else None
        )
        service = execution.service
        scores = playbook_selectors.version_scores(execution.playbook)
        earlier = rsel.approval_executions(execution)
        pending = approval.state == ApprovalState.PENDING
        me = actor(self.request)
        context.update(
            title=f"Approval for execution #{execution.pk}",
            approval=approval,
            execution=execution,
            pending=pending,
            outcome=None if pending else _outcome(approval),
            alert=alert,
            timeline=selectors.alert_timeline(alert, selectors.alert_deliveries(alert))
            if alert
            else [],
            service=service,
            heartbeats=selectors.service_recent_heartbeats(service, 10) if service else [],
            job_runs=selectors.service_job_runs(service, 10) if service else None,
            service_runs=rsel.service_executions(execution),
            version=execution.version,
            previous=rsel.previous_version(execution),
            preview=[
                {**step, "json": json.dumps(step["would"], indent=2, ensure_ascii=False)}
                for step in engine.execution_preview(execution)
            ],
            earlier=earlier,
            score=scores.get(execution.version.version),
            approved_by=[a["actor"] for a in approval.approvals],
            own_request=approval.four_eyes and approval.requested_by == me,
            form=context.get("form") or DecisionForm(),
            now=now,
        )
        return context

    def post(self, request, pk: int):
        form = DecisionForm(request.POST)
        if not form.is_valid():
            context = self.get_context_data(pk=pk, form=form)
            return self.render_to_response(context, status=422)
        approve = form.cleaned_data["decision"] == "approve"
        self._request(pk)
        try:
            decided = approval_decide(
                execution_id=pk,
                actor=actor(request),
                approve=approve,
                channel=Channel.PORTAL,
                reason=form.cleaned_data["reason"],
            )
        except MedicError as exc:
            messages.error(request, exc.message)
        else:
            if decided.state == ApprovalState.PENDING:
                messages.success(
                    request,
                    f"Approval recorded ({len(decided.approvals)} of "
                    f"{decided.approvers_needed}): a second, different approver is needed.",
                )
            elif approve:
                messages.success(request, "Approved: the execution runs now.")
            else:
                messages.success(request, "Declined: the execution was cancelled.")
        return redirect("dashboard:approval", pk)
