"""Maintenance windows, read-only here: active, upcoming and past, with their next occurrences.
(Windows are created through the API; their model and services belong to heartbeats.)"""

from __future__ import annotations

from django.utils import timezone

from dashboard import selectors
from dashboard.views.base import Page


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
