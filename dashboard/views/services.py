"""Services: the list (home page), detail, create/edit/delete, mute and unmute."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone

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
from heartbeats import services as svc
from heartbeats.models import Service
from medic.errors import MedicError


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
    }


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


_FIELDS = (
    "service_name",
    "team",
    "priority",
    "alert_interval",
    "threshold",
    "grace_period_seconds",
    "runbook",
    "active",
)


class ServiceCreate(FormPage):
    title = "New service"
    submit_label = "Create service"
    intro = (
        "A service is something that sends heartbeats. It is up while enough heartbeats arrive "
        "within its interval, and down (with an alert) when they stop."
    )

    def make_form(self, data=None):
        return ServiceForm(data)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = reverse("dashboard:services")
        context["datalists"] = {"team": selectors.team_names()}
        return context

    def save(self, form):
        data = form.cleaned_data
        return svc.service_create(
            actor=actor(self.request),
            heartbeat_name=data["heartbeat_name"].strip(),
            **{f: data[f] for f in _FIELDS},
        )

    def success(self, service):
        messages.success(self.request, f"Created {service.heartbeat_name}.")
        return redirect("dashboard:service", pk=service.pk)


class ServiceEdit(FormPage):
    submit_label = "Save changes"

    def get_object(self):
        return get_object_or_404(Service, pk=self.kwargs["pk"])

    def make_form(self, data=None):
        initial = {f: getattr(self.object, f) for f in _FIELDS}
        return ServiceForm(data, initial=initial, editing=True)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = f"Edit {self.object.heartbeat_name}"
        context["cancel_url"] = reverse("dashboard:service", args=[self.object.pk])
        context["datalists"] = {"team": selectors.team_names()}
        return context

    def save(self, form):
        data = form.cleaned_data
        return svc.service_update(
            service_ref=self.object.pk,
            actor=actor(self.request),
            **{f: data[f] for f in _FIELDS},
        )

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
