"""The Outcomes page: the PRD's success metrics (remediation.reports) over a chosen period, with
a chart per metric over time, for every viewer."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dashboard import selectors
from dashboard.charts import DURATION_TOPS, Line, line_chart
from dashboard.forms import ReportFilterForm
from dashboard.views.base import Page
from remediation.reports import selectors as reports
from remediation.reports import series
from remediation.reports.text import ENDING_LABELS

DEFAULT_DAYS = 30


def _percent(value: float) -> str:
    return f"{value * 100:.0f} %"


def _count(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


# The refusal reasons (medic_auth_failures_total, and rate_limited) as the PRD names them.
REFUSAL_GROUPS = (
    ("no key", ("missing", "malformed")),
    ("bad key or password", ("unknown", "invalid", "expired", "login_failed")),
    ("revoked key", ("revoked",)),
    ("scope", ("insufficient_scope",)),
    ("rate limit", ("rate_limited",)),
    ("lock-out", ("login_locked",)),
)


def _charts(report: dict) -> list:
    buckets = report["series"]["buckets"]
    weekly = report["series"]["bucket"] == "week"
    labels = [("wk " if weekly else "") + f"{b['start']:%d %b}" for b in buckets]
    per = "week" if weekly else "day"
    endings = list(ENDING_LABELS.items())

    def mttr_lines(stat: str) -> list[Line]:
        return [
            Line(label, f"series-{i + 1}", [(b["mttr"][key] or {}).get(stat) for b in buckets])
            for i, (key, label) in enumerate(endings)
        ]

    def duration(value: float) -> str:
        """Short enough for an axis: 45 s, 12 min, 1.5 h."""
        if value < 120:
            return f"{value:.0f} s"
        if value < 7200:
            return f"{value / 60:.0f} min"
        return f"{value / 3600:.1f} h".replace(".0 h", " h")

    mttr = [
        line_chart(
            chart_id=f"mttr-{stat}",
            title=f"{name} time to resolve per {per}, by how alerts ended",
            desc=f"{name} of the open-to-resolve times of the alerts opened in each {per}; no "
            "point where no alert of that kind resolved.",
            labels=labels,
            lines=mttr_lines(stat),
            fmt=duration,
            tops=DURATION_TOPS,
        )
        for stat, name in (("p50", "Median"), ("p90", "p90"))
    ]
    return [
        *mttr,
        line_chart(
            chart_id="coverage",
            title=f"Alerts with a playbook per {per}",
            desc="Share of the alerts opened in each "
            f"{per} whose service matches an active playbook; target 50 %.",
            labels=labels,
            lines=[Line("alert share", "series-2", [b["alert_share"] for b in buckets])],
            fmt=_percent,
            y_max=1.0,
        ),
        line_chart(
            chart_id="accuracy",
            title=f"Likely false positives per {per}",
            desc="Share of the alerts opened in each "
            f"{per} that resolved on their own within one interval; target under 5 %.",
            labels=labels,
            lines=[
                Line("false-positive rate", "series-5", [b["false_positive_rate"] for b in buckets])
            ],
            fmt=_percent,
            y_max=1.0,
        ),
        line_chart(
            chart_id="alerts",
            title=f"Alerts opened per {per}",
            desc=f"How many alerts opened in each {per} (the whole of each share above).",
            labels=labels,
            lines=[Line("alerts", "series-1", [b["alerts"] for b in buckets])],
            fmt=_count,
        ),
        line_chart(
            chart_id="agents",
            title=f"Agents over the memory threshold per {per}",
            desc=f"Agents whose highest reported resident memory on a day of the {per} was over "
            f"{report['agents']['threshold_bytes'] / 1e6:g} MB.",
            labels=labels,
            lines=[
                Line(
                    "agents over threshold",
                    "series-3",
                    [b["agents_over_memory_threshold"] for b in buckets],
                )
            ],
            fmt=_count,
        ),
        *_refusal_chart(buckets, labels, per),
    ]


def _refusal_chart(buckets: list[dict], labels: list[str], per: str) -> list:
    if any(b["refused_by_reason"] is None for b in buckets):
        return []  # no tally without Redis: the page says so
    lines = [
        Line(
            name,
            f"series-{i + 1}",
            [sum(b["refused_by_reason"].get(r, 0) for r in reasons) for b in buckets],
        )
        for i, (name, reasons) in enumerate(REFUSAL_GROUPS)
    ]
    return [
        line_chart(
            chart_id="refused",
            title=f"Refused requests per {per}, by reason",
            desc="Requests refused for their credentials, scope or rate, tallied by every "
            f"process per UTC day; a {per} counts its whole days.",
            labels=labels,
            lines=lines,
            fmt=_count,
        )
    ]


class SuccessReport(Page):
    template_name = "dashboard/reports/success.html"
    title = "Outcomes"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = ReportFilterForm(self.request.GET or None, teams=selectors.team_names())
        days, team = DEFAULT_DAYS, None
        if form.is_valid():
            days = int(form.cleaned_data["days"] or DEFAULT_DAYS)
            team = form.cleaned_data["team"] or None
        now = timezone.now()
        report = series.outcomes(
            reports.Period(since=now - timedelta(days=days), until=now, team=team)
        )
        endings = [
            (label, report["mttr"]["by_ending"].get(key)) for key, label in ENDING_LABELS.items()
        ]
        context.update(form=form, report=report, endings=endings, days=days, charts=_charts(report))
        return context
