"""Services: the list (home page), detail, create/edit/delete, mute and unmute."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers as drf

from alerting.models import NotificationEvent
from alerting.routing import route_for
from dashboard import selectors
from dashboard.forms import (
    MuteForm,
    ServiceFilterForm,
    ServiceForm,
    apply_error,
    duration_label,
)
from dashboard.views.base import DeletePage, FormPage, Page, actor, paginate
from dashboard.views.routing import time_zone_names
from heartbeats import services as svc
from heartbeats.api import ServiceSerializer, ServiceUpdateSerializer
from heartbeats.models import ScheduleKind, Service
from medic.errors import MedicError, to_medic_error


class ServiceList(Page):
    template_name = "dashboard/services/list.html"
    title = "Services"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        teams = selectors.team_names()
        form = ServiceFilterForm(self.request.GET or None, teams=teams)
        filters = {k: form.value(k) for k in ("status", "team", "priority")}
        sort = form.value("sort") or "status"
        page = paginate(
            self.request,
            selectors.service_list(search=form.value("q").strip(), sort=sort, **filters),
        )
        context.update(
            form=form,
            page=page,
            sort=sort,
            filtered=any(filters.values()) or bool(form.value("q")),
            now=timezone.now(),
        )
        return context


def detail_context(request, service: Service, mute_form: MuteForm | None = None) -> dict:
    now = timezone.now()
    open_alert, past_alerts = selectors.service_alerts(service)
    route = route_for(service=service, event=NotificationEvent.TRIGGER, at=now)
    return {
        "service": service,
        "title": service.heartbeat_name,
        "now": now,
        "heartbeats": selectors.service_recent_heartbeats(service),
        "open_alert": open_alert,
        "past_alerts": past_alerts,
        "route": route,
        "route_targets": [t for g in route.groups for t in g.targets],
        "route_text": "\n".join(route.reasons),
        "mute_form": mute_form or MuteForm(),
        "job_runs": selectors.service_job_runs(service),
        "maintenance": selectors.service_maintenance_windows(service, now),
        "playbooks": playbooks_for(service),
    }


def playbooks_for(service: Service) -> list:
    """Enabled playbooks whose service pattern matches this service (the Run playbook form)."""
    from remediation.playbooks.models import Playbook
    from remediation.playbooks.triggers import service_matches

    found = []
    for playbook in Playbook.objects.filter(enabled=True).order_by("name"):
        version = playbook.versions.get(version=playbook.current_version)
        if service_matches(version.spec["trigger"]["service_pattern"], service):
            found.append(
                {
                    "name": playbook.name,
                    "version": version.version,
                    "approval": "required" if playbook.demoted_at else version.spec["approval"],
                }
            )
    return found


class ServiceDetail(Page):
    template_name = "dashboard/services/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        service = get_object_or_404(Service, pk=kwargs["pk"])
        context.update(detail_context(self.request, service))
        return context


class ServiceMute(Page):
    """POST only. An invalid form re-renders the detail page with the errors beside the fields."""

    template_name = "dashboard/services/detail.html"
    http_method_names = ["post"]
    needs_write_to_read = True

    def post(self, request, pk: int):
        service = get_object_or_404(Service, pk=pk)
        form = MuteForm(request.POST)
        if form.is_valid():
            try:
                svc.service_mute(
                    service_ref=service.pk,
                    reason=form.cleaned_data["reason"],
                    duration=form.cleaned_data["length"],
                    actor=actor(request),
                )
            except MedicError as exc:
                apply_error(form, exc, {"duration": "custom"})
            else:
                length = duration_label(form.cleaned_data["length"])
                messages.success(request, f"Muted {service.heartbeat_name} for {length}.")
                return redirect("dashboard:service", pk=service.pk)
        context = self.get_context_data()
        context.update(detail_context(request, service, mute_form=form))
        context["mute_open"] = True
        return self.render_to_response(context)


class ServiceUnmute(Page):
    http_method_names = ["post"]
    needs_write_to_read = True

    def post(self, request, pk: int):
        service = get_object_or_404(Service, pk=pk)
        svc.service_unmute(service_ref=service.pk, actor=actor(request))
        messages.success(request, f"Unmuted {service.heartbeat_name}: alerts notify again.")
        return redirect("dashboard:service", pk=service.pk)


def _validated(serializer) -> dict:
    """The API serializer's validated data, or its errors as the service layer's MedicError."""
    try:
        serializer.is_valid(raise_exception=True)
    except drf.ValidationError as exc:
        raise to_medic_error(exc) from exc
    return dict(serializer.validated_data)


class ServiceFormPage(FormPage):
    """Create and edit: the form's fields go through the v2 API's serializer and then the same
    service functions the API calls; their messages land next to the field to fix."""

    template_name = "dashboard/services/form.html"

    def error_field_map(self) -> dict[str, str]:
        return self._field_map

    def save(self, form):
        kind = form.cleaned_data["schedule_kind"]
        self._field_map = {
            **ServiceForm.FIELD_MAP.get(kind, {}),
            "max_duration_seconds": "max_duration",
        }
        return self.write(form.payload())

    def write(self, payload: dict):
        raise NotImplementedError

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["datalists"] = {"team": selectors.team_names()}
        context["zones"] = time_zone_names()
        return context

    _field_map: dict[str, str] = {}


class ServiceCreate(ServiceFormPage):
    title = "New service"
    submit_label = "Create service"
    intro = (
        "A service is something that sends heartbeats. It is up while its heartbeats arrive on "
        "schedule, and down (with an alert) when they stop."
    )

    def make_form(self, data=None):
        return ServiceForm(data)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = reverse("dashboard:services")
        return context

    def write(self, payload):
        data = _validated(ServiceSerializer(data=payload))
        return svc.service_create(actor=actor(self.request), **data)

    def success(self, service):
        messages.success(self.request, f"Created {service.heartbeat_name}.")
        return redirect("dashboard:service", pk=service.pk)


class ServiceEdit(ServiceFormPage):
    submit_label = "Save changes"

    def get_object(self):
        return get_object_or_404(Service, pk=self.kwargs["pk"])

    def make_form(self, data=None):
        return ServiceForm(data, initial=ServiceForm.initial_from(self.object), editing=True)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = f"Edit {self.object.heartbeat_name}"
        context["cancel_url"] = reverse("dashboard:service", args=[self.object.pk])
        return context

    def write(self, payload):
        if payload["schedule_kind"] == ScheduleKind.CRON and "alert_interval" not in payload:
            # Blank "repeat every": the cron period, as when a cron service is created. (The
            # form shows it blank when the stored value is the period: then nothing changes.)
            try:
                period = svc.cron_period_minutes(
                    payload["cron_expression"], payload["schedule_timezone"]
                )
            except Exception:  # a bad expression or zone: the serializer or service says so
                period = None
            was_cron = self.object.schedule_kind == ScheduleKind.CRON
            if period is not None and not (
                was_cron and abs(period - self.object.alert_interval) <= 0.01
            ):
                payload["alert_interval"] = period
        data = _validated(ServiceUpdateSerializer(self.object, data=payload, partial=True))
        return svc.service_update(service_ref=self.object.pk, actor=actor(self.request), **data)

    def success(self, service):
        messages.success(self.request, f"Saved {service.heartbeat_name}.")
        return redirect("dashboard:service", pk=service.pk)


class ServiceDelete(DeletePage):
    what = "service"

    def get_object(self):
        return get_object_or_404(Service, pk=self.kwargs["pk"])

    def consequences(self, service):
        return [
            "Its heartbeats, alerts and delivery history are deleted with it.",
            "Clients still sending heartbeats under this name get 404 until it is re-created.",
        ]

    def delete(self, service):
        svc.service_delete(service_ref=service.pk, actor=actor(self.request))

    def list_url(self):
        return reverse("dashboard:services")

    def cancel_url(self, service):
        return reverse("dashboard:service", args=[service.pk])


class ServiceRunPlaybook(Page):
    """POST only: start a playbook for this service, as ``POST /v2/playbooks/{id}/execute``
    does (same checks, same approval setting), recorded as the signed-in user."""

    http_method_names = ["post"]
    needs_write_to_read = True

    def post(self, request, pk: int):
        from remediation.approvals.triggers import playbook_execute

        service = get_object_or_404(Service, pk=pk)
        name = request.POST.get("playbook", "")
        try:
            started = playbook_execute(
                playbook=name,
                service=service.heartbeat_name,
                dry_run=request.POST.get("dry_run") == "on",
                actor=actor(request),
                channel="portal",
            )
        except MedicError as exc:
            messages.error(request, f"Playbook {name} not started: {exc.message}")
        else:
            execution = started.execution
            state = execution.get_state_display()
            messages.success(
                request,
                f"Playbook {name} started for {service.heartbeat_name}: execution "
                f"{execution.pk}, {state}.",
            )
        return redirect("dashboard:service", pk=service.pk)
