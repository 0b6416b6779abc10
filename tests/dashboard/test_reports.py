"""The Outcomes page: the same figures as the API, for every viewer, with the filters."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ServiceFactory
from tests.reports.test_success_metrics import HOUR, MINUTE, _incident

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_page_shows_mttr_coverage_accuracy_and_filters_by_team(viewer, norole):
    now = timezone.now()
    api = ServiceFactory(heartbeat_name="api-1", team="web", alert_interval=5)
    db = ServiceFactory(heartbeat_name="db-1", team="data", alert_interval=5)
    _incident(api, now - 3 * HOUR, now - 3 * HOUR + 2 * MINUTE)
    _incident(db, now - 2 * HOUR, now - 2 * HOUR + 20 * MINUTE, how="manual")
    _incident(db, now - timedelta(days=20), now - timedelta(days=20) + HOUR)
    assert norole.get("/ui/reports/").status_code == 403
    response = viewer.get("/ui/reports/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html and "style=" not in html
    text = _text(response)
    assert "All alerts 3 " in text
    assert "recovered on its own 2 31 min" in text  # (2 + 60) / 2 minutes
    assert "by a person, no playbook 1 20 min" in text
    assert "0 of 3 alerts, 0 of 2 services" in text
    assert "1 of 3 alerts resolved unaided within one interval (33 %)" in text
    assert "db-1: 2 alerts" in text
    week = _text(viewer.get("/ui/reports/", {"days": "7", "team": "web"}))
    assert "All alerts 1 " in week and "team web" in week
    assert "1 of 1 alerts resolved unaided within one interval (100 %)" in week
    assert viewer.get("/ui/reports/", {"days": "5"}).status_code == 200


def test_outcomes_page_draws_a_chart_per_metric_and_lists_agents_over_memory(viewer, settings):
    from remediation.agents import agent_create, agent_seen

    now = timezone.now()
    api = ServiceFactory(heartbeat_name="api-1", team="web", alert_interval=5)
    _incident(api, now - timedelta(days=3), now - timedelta(days=3) + 2 * MINUTE)
    _incident(api, now - timedelta(days=1), now - timedelta(days=1) + 20 * MINUTE, how="manual")
    big = agent_create(name="edge-1", actor="t").agent
    agent_seen(agent_id=big.pk, memory_rss_bytes=7_300_000, agent_version="0.2.0", now=now)
    small = agent_create(name="edge-2", actor="t").agent
    agent_seen(agent_id=small.pk, memory_rss_bytes=3_000_000, now=now)
    response = viewer.get("/ui/reports/", {"days": "7"})
    html = response.content.decode()
    assert "<script>" not in html and "style=" not in html
    for chart in ("mttr-p50", "mttr-p90", "coverage", "accuracy", "alerts", "agents", "refused"):
        assert f'data-testid="chart-{chart}"' in html
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in html
    assert '<title id="mttr-p50-title">Median time to resolve per day' in html
    # Seven or eight daily buckets (the period need not start at midnight); a dot per value.
    # One alert resolved by hand: one dot in each of the p50 and p90 charts.
    for chart in ("mttr-p50", "mttr-p90"):
        figure = html.split(f'data-testid="chart-{chart}"')[1].split("</figure>")[0]
        assert figure.count('<circle class="chart-dot series-4"') == 1
    assert "<title>" in html and "by a person, no playbook: 20 min</title>" in html
    text = _text(response)
    assert "2 of 2 agents report their memory" in text
    assert "edge-1 0.2.0 7.3 MB" in text and "edge-2" not in text
    assert "not met" in text
    week = viewer.get("/ui/reports/", {"days": "90"}).content.decode()
    assert "per week" in week
