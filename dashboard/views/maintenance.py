"""Maintenance windows: the list (active, upcoming, past, with their next occurrences), and
create, edit and delete with a preview of the next occurrences in the window's zone.

Writes go through heartbeats.maintenance, after the v2 API's serializer, so the browser and the
API accept and refuse the same windows with the same messages. A preview runs the same checks
(``window_check``) without saving.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers as drf

from dashboard import selectors
from dashboard.forms import MaintenanceWindowForm, apply_error
from dashboard.views.base import DeletePage, FormPage, Page, actor
from dashboard.views.routing import time_zone_names
from heartbeats import maintenance
from heartbeats.maintenance_api import WindowSerializer
from heartbeats.models import MaintenanceWindow
from medic.errors import InvalidInput, MedicError, to_medic_error


class MaintenanceList(Page):
    template_name = "dashboard/maintenance/list.html"
    title = "Maintenance windows"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        rows = selectors.maintenance_rows(now)
        context.update(
            now=now,
            active=[r for r in rows if r.state == "active"],
            upcoming=[r for r in rows if r.state == "upcoming"],
            past=[r for r in rows if r.state == "past"],
        )
        return context


def _in_portal_words(exc: MedicError) -> MedicError:
    """The service's messages name API fields ("Must be after starts_at."); here the fields
    have labels."""
    if not exc.fields:
        return exc
    fields = {
        name: [m.replace("starts_at", "the start") for m in messages_]
        for name, messages_ in exc.fields.items()
    }
    return InvalidInput(exc.message, fields=fields)


class MaintenanceEdit(FormPage):
    """New window (no pk) or edit one. *Preview* shows the next occurrences without saving."""

    template_name = "dashboard/maintenance/form.html"

    def get_object(self):
        pk = self.kwargs.get("pk")
        return get_object_or_404(MaintenanceWindow, pk=pk) if pk else None

    def make_form(self, data=None, previewing: bool = False):
        if self.object is not None:
            initial = MaintenanceWindowForm.initial_from(self.object)
        else:
            initial = {"timezone": "UTC", "scope": "all", "kind": "once", "notify": True}
            service = self.request.GET.get("service", "").strip()
            if service:  # "Plan a window" from a service page
                initial.update(scope="services", services=service)
        return MaintenanceWindowForm(data, initial=initial, previewing=previewing)

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        context = {"form": self.make_form()}
        if self.object is not None:
            now = timezone.now()
            context["preview"] = selectors.Preview(
                rows=selectors.window_preview(self.object, now, now),
                zone=self.object.time_zone,
                recurring=self.object.recurring,
                after=None,
                saved=True,
            )
        return self.render_to_response(self.get_context_data(**context))

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        previewing = "preview" in request.POST
        form = self.make_form(request.POST, previewing=previewing)
        context: dict = {"form": form}
        if form.is_valid():
            try:
                if previewing:
                    window = maintenance.window_check(
                        services=form.services_list, **form.window_fields
                    )
                    now = timezone.now()
                    after = form.preview_after(now)
                    context["preview"] = selectors.Preview(
                        rows=selectors.window_preview(window, after, now),
                        zone=window.time_zone,
                        recurring=window.recurring,
                        after=after if after != now else None,
                        notes=form.notes,
                    )
                else:
                    window = self.save(form)
                    return self.success(window)
            except MedicError as exc:
                apply_error(form, _in_portal_words(exc))
        return self.render_to_response(self.get_context_data(**context))

    def save(self, form):
        serializer = WindowSerializer(self.object, data=form.api_payload())
        try:
            serializer.is_valid(raise_exception=True)
        except drf.ValidationError as exc:
            raise to_medic_error(exc) from exc
        data = dict(serializer.validated_data)
        if self.object is not None:
            return maintenance.window_update(ref=self.object.pk, actor=actor(self.request), **data)
        return maintenance.window_create(actor=actor(self.request), **data)

    def success(self, window):
        verb = "Saved" if self.object is not None else "Created"
        messages.success(self.request, f"{verb} maintenance window {window.name}.")
        return redirect("dashboard:maintenance")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        editing = self.object is not None
        context.update(
            title=f"Maintenance window {self.object.name}" if editing else "New maintenance window",
            submit_label="Save window" if editing else "Create window",
            cancel_url=reverse("dashboard:maintenance"),
            zones=time_zone_names(),
            teams=selectors.team_names(),
            intro=(
                "Planned work: during the window, covered services are still checked and "
                "their alerts still open, but nobody is notified until it ends."
            ),
        )
        return context


class MaintenanceDelete(DeletePage):
    what = "maintenance window"

    def get_object(self):
        return get_object_or_404(MaintenanceWindow, pk=self.kwargs["pk"])

    def consequences(self, window):
        now = timezone.now()
        if maintenance.occurrence_at(window, now):
            return [
                "It is open now: alerts it holds back are sent at the next sweep, and no end "
                "notice is sent.",
            ]
        return []

    def delete(self, window):
        maintenance.window_delete(ref=window.pk, actor=actor(self.request))

    def list_url(self):
        return reverse("dashboard:maintenance")

    def cancel_url(self, window):
        return reverse("dashboard:maintenance_edit", args=[window.pk])
