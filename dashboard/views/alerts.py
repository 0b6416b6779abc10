"""Alert history with filters, and one alert's timeline with every delivery attempt."""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.utils import timezone

from alerting.models import Alert
from dashboard import selectors
from dashboard.forms import AlertFilterForm
from dashboard.views.base import Page, day_start, paginate


class AlertList(Page):
    template_name = "dashboard/alerts/list.html"
    title = "Alerts"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = AlertFilterForm(self.request.GET or None, teams=selectors.team_names())
        filters: dict = {}
        if form.is_valid():
            data = form.cleaned_data
            filters = {k: data[k] for k in ("service", "team", "priority", "state") if data[k]}
            if data["opened_from"]:
                filters["opened_from"] = day_start(data["opened_from"])
            if data["opened_to"]:
                # "to" is inclusive: everything opened on that day.
                filters["opened_to"] = day_start(data["opened_to"] + timedelta(days=1))
        context.update(
            form=form,
            page=paginate(self.request, selectors.alert_list(**filters)),
            filtered=bool(filters),
            now=timezone.now(),
        )
        return context


class AlertDetail(Page):
    template_name = "dashboard/alerts/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        alert = get_object_or_404(Alert.objects.select_related("service"), pk=kwargs["pk"])
        deliveries = selectors.alert_deliveries(alert)
        context.update(
            alert=alert,
            title=f"Alert #{alert.pk}",
            deliveries=deliveries,
            timeline=selectors.alert_timeline(alert, deliveries),
            now=timezone.now(),
        )
        return context
