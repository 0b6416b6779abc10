"""Remediation in the portal: playbooks (list, detail with history and diffs, the YAML editor
with live validation), executions (list, live detail, cancel) and the approvals inbox.

Views stay thin: reads come from dashboard.remediation_selectors and the playbook selectors,
every change goes through the same service functions the v2 API calls, so a document the API
refuses is refused here with the same problems at the same lines.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View

from dashboard import remediation_selectors as rsel
from dashboard.permissions import RoleRequiredMixin
from dashboard.views.alerts import _day_start
from dashboard.views.base import Page, actor, paginate
from heartbeats.models import Service
from medic.errors import MedicError
from remediation.playbooks import engine, selectors, services
from remediation.playbooks.models import (
    ACTIVE_STATES,
    OPEN_STATES,
    BreakerScope,
    ExecutionState,
    Mode,
)
from remediation.playbooks.spec import PlaybookInvalid

NEW_PLAYBOOK = """\
name: restart-worker
mode: shadow
trigger:
  service_pattern: "worker-*"
  consecutive_failures: 3
approval: none
steps:
  - name: restart-service
    type: webhook
    url: "https://internal-api/restart"
    method: POST
    body:
      service: "${SERVICE_NAME}"
  - name: wait-for-recovery
    type: wait
    duration: 30s
  - name: verify-heartbeat
    type: condition
    check: heartbeat_received
    timeout: 60s
    on_failure: escalate
"""


def problems_of(exc: MedicError) -> list[dict]:
    """The problems of a refused document, as the API reports them (path, message, line)."""
    if isinstance(exc, PlaybookInvalid):
        return [
            {"path": p.path or "$", "message": p.message, "line": p.line, "column": p.column}
            for p in exc.problems
        ]
    out = []
    for path, errors in (getattr(exc, "fields", None) or {}).items():
        for error in errors:
            message = error.get("message") if isinstance(error, dict) else str(error)
            out.append({"path": path, "message": message, "line": None, "column": None})
    return out or [{"path": "$", "message": exc.message, "line": None, "column": None}]


def approval_url(execution_id: int) -> str:
    """The execution's approval page (dashboard.views.approvals)."""
    return reverse("dashboard:approval", args=[execution_id])


# --- Playbooks --------------------------------------------------------------------------------


class PlaybookFilterForm(forms.Form):
    pattern = forms.CharField(required=False, max_length=255, label="Service pattern")
    mode = forms.ChoiceField(
        required=False, choices=[("", "any mode"), *[(m, m) for m in Mode.values]]
    )


class PlaybookList(Page):
    template_name = "dashboard/playbooks/list.html"
    title = "Playbooks"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = PlaybookFilterForm(self.request.GET or None)
        filters = {}
        if form.is_valid():
            filters = {k: v for k, v in form.cleaned_data.items() if v}
        page = paginate(self.request, rsel.playbook_rows(**filters))
        rsel.playbook_facts(list(page.object_list))
        context.update(form=form, page=page, filtered=bool(filters), now=timezone.now())
        return context


class PlaybookDetail(Page):
    template_name = "dashboard/playbooks/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        playbook = selectors.playbook_get(kwargs["name"])
        versions = list(playbook.versions.order_by("-version")[:50])
        scores = selectors.version_scores(playbook)
        for v in versions:
            v.score = scores.get(v.version)
        current = next((v for v in versions if v.version == playbook.current_version), None)
        breaker = rsel.playbook_breaker(playbook.name)
        context.update(
            title=f"Playbook {playbook.name}",
            playbook=playbook,
            current=current or selectors.version_get(playbook),
            versions=versions,
            breaker=breaker,
            executions=rsel.execution_rows(playbook=playbook.name)[:10],
            services=Service.objects.order_by("heartbeat_name").values_list("pk", "heartbeat_name")[
                :500
            ],
            now=timezone.now(),
        )
        return context


class PlaybookAction(RoleRequiredMixin, View):
    """POST-only changes from the detail page: each one a service call, then back to the page."""

    http_method_names = ["post"]
    needs_write_to_read = True
    action = ""

    def post(self, request, name: str):
        action = self.action
        who = actor(request)
        reason = request.POST.get("reason", "")[:500]
        target = reverse("dashboard:playbook", args=[name])
        try:
            if action == "mode":
                saved = services.playbook_mode_set(
                    name=name, mode=request.POST.get("mode", ""), actor=who, reason=reason
                )
                messages.success(
                    request, f"Mode is now {saved.version.mode} (version {saved.version.version})."
                )
            elif action == "restore":
                saved = services.playbook_restore(
                    name=name, version=_int(request.POST.get("version")), actor=who, reason=reason
                )
                if saved.changed:
                    messages.success(request, f"Saved as version {saved.version.version}.")
                else:
                    messages.info(request, "That version is the current document: nothing saved.")
            elif action == "reset":
                services.breaker_reset(scope=BreakerScope.PLAYBOOK, key=name, actor=who)
                messages.success(request, "Circuit breaker reset.")
            elif action == "run":
                execution = _run_now(name, request.POST.get("service"), who)
                if execution is None:
                    messages.error(request, "An execution is already open for that service.")
                else:
                    return redirect("dashboard:execution", execution.pk)
            else:
                return redirect(target)
        except MedicError as exc:
            messages.error(request, exc.message)
        return redirect(target)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MedicError("Choose a version.", code="invalid_input") from None


def _run_now(name: str, service_id, who: str):
    playbook = selectors.playbook_get(name)
    service = Service.objects.filter(pk=_int(service_id)).first()
    if service is None:
        raise MedicError("Choose a service.", code="invalid_input")
    return engine.execution_create(
        playbook=playbook,
        service=service,
        alert_id=None,
        trigger={"kind": "manual", "requested_by": who},
        automatic=False,
        actor=who,
    )


class PlaybookEdit(Page):
    """The YAML editor: line numbers, live validation (PlaybookValidate), save with a reason."""

    template_name = "dashboard/playbooks/edit.html"
    needs_write_to_read = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        name = kwargs.get("name")
        playbook = selectors.playbook_get(name) if name else None
        context.setdefault(
            "source", selectors.version_get(playbook).source if playbook else NEW_PLAYBOOK
        )
        context.update(
            playbook=playbook,
            title=f"Edit {name}" if name else "New playbook",
            problems=context.get("problems", []),
        )
        return context

    def post(self, request, name: str | None = None):
        # Browsers send a textarea's lines with CRLF; the document is stored as written, in LF.
        source = request.POST.get("source", "").replace("\r\n", "\n")
        reason = request.POST.get("reason", "").strip()
        try:
            saved = services.playbook_save(
                document=source, actor=actor(request), reason=reason, name=name
            )
        except MedicError as exc:
            context = self.get_context_data(name=name, source=source, problems=problems_of(exc))
            context["reason"] = reason
            return self.render_to_response(context, status=422)
        if saved.changed:
            messages.success(request, f"Saved version {saved.version.version}.")
        else:
            messages.info(request, "Nothing changed: no new version.")
        return redirect("dashboard:playbook", saved.playbook.name)


class PlaybookValidate(RoleRequiredMixin, View):
    """POST a document, get its problems: the API's validation, for the editor as you type."""

    http_method_names = ["post"]
    needs_write_to_read = True

    def post(self, request):
        try:
            _, spec = services.playbook_validate(document=request.POST.get("source", ""))
        except MedicError as exc:
            return JsonResponse({"valid": False, "problems": problems_of(exc)})
        return JsonResponse({"valid": True, "problems": [], "name": spec["name"]})


# --- Executions -------------------------------------------------------------------------------


class ExecutionFilterForm(forms.Form):
    playbook = forms.CharField(required=False, max_length=100)
    service = forms.CharField(required=False, max_length=255)
    state = forms.ChoiceField(required=False, choices=[("", "any state"), *ExecutionState.choices])
    created_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        required=False, label="to (inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )


class ExecutionList(Page):
    template_name = "dashboard/executions/list.html"
    title = "Executions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = ExecutionFilterForm(self.request.GET or None)
        filters: dict = {}
        if form.is_valid():
            data = form.cleaned_data
            filters = {k: data[k] for k in ("playbook", "service", "state") if data[k]}
            if data["created_from"]:
                filters["created_from"] = _day_start(data["created_from"])
            if data["created_to"]:
                filters["created_to"] = _day_start(data["created_to"] + timedelta(days=1))
        context.update(
            form=form,
            page=paginate(self.request, rsel.execution_rows(**filters)),
            filtered=bool(filters),
            now=timezone.now(),
        )
        return context


def _step_rows(execution) -> list[dict]:
    spec_steps = execution.version.spec.get("steps", [])
    rows = []
    for step in execution.steps.all():
        spec = spec_steps[step.position] if step.position < len(spec_steps) else {}
        rows.append({"step": step, "spec": spec})
    return rows


class ExecutionDetail(Page):
    template_name = "dashboard/executions/detail.html"
    fragment = False

    def get_template_names(self):
        if self.fragment:
            return ["dashboard/executions/_live.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        execution = selectors.execution_get(kwargs["pk"])
        context.update(
            title=f"Execution #{execution.pk}",
            execution=execution,
            steps=_step_rows(execution),
            events=list(execution.events.all()),
            live=execution.state in ACTIVE_STATES
            or execution.state == ExecutionState.PENDING_APPROVAL,
            can_cancel=execution.state in OPEN_STATES,
            approval_url=approval_url(execution.pk),
            now=timezone.now(),
        )
        return context


class ExecutionCancel(RoleRequiredMixin, View):
    http_method_names = ["post"]
    needs_write_to_read = True

    def post(self, request, pk: int):
        try:
            engine.execution_cancel(
                execution_id=pk, actor=actor(request), reason=request.POST.get("reason", "")[:500]
            )
        except MedicError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Cancelled: no further step starts.")
        return redirect("dashboard:execution", pk)


class ApprovalInbox(Page):
    template_name = "dashboard/executions/approvals.html"
    title = "Approvals"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = paginate(self.request, rsel.approvals_waiting())
        for execution in page.object_list:
            execution.approval_url = approval_url(execution.pk)
        context.update(page=page, now=timezone.now())
        return context
