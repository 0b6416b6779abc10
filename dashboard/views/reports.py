"""The PRD's success metrics (remediation.reports) over a chosen period, for every viewer."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dashboard import selectors
from dashboard.forms import ReportFilterForm
from dashboard.views.base import Page
from remediation.reports import selectors as reports
from remediation.reports.text import ENDING_LABELS

DEFAULT_DAYS = 30


class SuccessReport(Page):
    template_name = "dashboard/reports/success.html"
    title = "Success metrics"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = ReportFilterForm(self.request.GET or None, teams=selectors.team_names())
        days, team = DEFAULT_DAYS, None
        if form.is_valid():
            days = int(form.cleaned_data["days"] or DEFAULT_DAYS)
            team = form.cleaned_data["team"] or None
        now = timezone.now()
        report = reports.success_metrics(
            reports.Period(since=now - timedelta(days=days), until=now, team=team)
        )
        endings = [
            (label, report["mttr"]["by_ending"].get(key)) for key, label in ENDING_LABELS.items()
        ]
        context.update(form=form, report=report, endings=endings, days=days)
        return context
