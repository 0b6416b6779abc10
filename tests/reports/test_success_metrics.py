"""The success metrics over a history built through the services on an explicit clock: alerts
resolved in each of the four ways, with and without a playbook, one during maintenance, one still
open, and a baseline period before the first playbook. Every figure is asserted exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from alerting.services import alert_open, alert_resolve_for_service
from heartbeats.maintenance import window_create
from heartbeats.models import Service
from remediation.playbooks import engine, services
from remediation.playbooks.models import Execution, ExecutionState, PlaybookVersion
from remediation.playbooks.triggers import trigger_service
from remediation.reports import selectors
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
ENABLED = datetime(2027, 3, 1, tzinfo=UTC)
WAIT_PLAYBOOK = """\
name: {name}
trigger:
  service_pattern: "{pattern}"
  consecutive_failures: 1
steps:
  - name: settle
    type: wait
    duration: 1s
"""


def _incident(service, opened, resolved=None, how="recovered"):
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        alert = alert_open(service=locked, now=opened)
    if resolved is not None:
        alert_resolve_for_service(service_id=service.pk, now=resolved, how=how)
    return alert


def _finish(execution: Execution, now):
    while execution.state in (ExecutionState.RUNNING, ExecutionState.WAITING):
        now = max(now, execution.due_at)
        engine.execution_advance(
            execution_id=execution.pk,
            step_index=execution.step_index,
            attempt=execution.attempt,
            now=now,
        )
        execution.refresh_from_db()
    assert execution.state == ExecutionState.COMPLETED


@pytest.fixture
def history():
    for name in ("restart-worker", "fix-mail"):
        pattern = "worker-*" if name == "restart-worker" else "mail-*"
        services.playbook_save(document=WAIT_PLAYBOOK.format(name=name, pattern=pattern), actor="t")
    # A controlled clock: the first playbook was saved at 00:00 UTC on a Monday.
    for i, version in enumerate(PlaybookVersion.objects.order_by("created_at")):
        PlaybookVersion.objects.filter(pk=version.pk).update(created_at=ENABLED + i * SECOND)
    enabled = ENABLED
    day = timedelta(days=1)
    a = ServiceFactory(heartbeat_name="worker-a", team="ops", priority="p2", alert_interval=5)
    b = ServiceFactory(heartbeat_name="worker-b", team="ops", priority="p1", alert_interval=5)
    db = ServiceFactory(heartbeat_name="db-1", team="data", priority="p3", alert_interval=5)
    cron = ServiceFactory(heartbeat_name="cron-x", team="data", priority="p3", alert_interval=5)
    # Before playbooks: the covered services took 40 and 60 minutes.
    _incident(a, enabled - 20 * HOUR, enabled - 20 * HOUR + 40 * MINUTE)
    _incident(b, enabled - 10 * HOUR, enabled - 9 * HOUR, how="manual")
    E = enabled
    # 1. a playbook run on its own: 10 minutes.
    alert = _incident(a, E + HOUR)
    Service.objects.filter(pk=a.pk).update(consecutive_failures=1)
    a.refresh_from_db()
    (run,) = trigger_service(
        service=a, kind="alert.opened", event_id=None, payload={}, now=E + HOUR + MINUTE
    )
    _finish(run, E + HOUR + MINUTE)
    alert_resolve_for_service(service_id=a.pk, now=E + HOUR + 10 * MINUTE)
    # 2. a run a person started: 20 minutes.
    alert = _incident(b, E + 2 * HOUR)
    manual = engine.execution_create(
        playbook=run.playbook,
        service=b,
        alert_id=alert.pk,
        trigger={"kind": "manual"},
        automatic=False,
        actor="key:ops#1",
        now=E + 2 * HOUR + 5 * MINUTE,
    )
    _finish(manual, E + 2 * HOUR + 5 * MINUTE)
    alert_resolve_for_service(service_id=b.pk, now=E + 2 * HOUR + 20 * MINUTE)
    # 3. recovered on its own within one interval: 3 minutes.
    _incident(a, E + 3 * HOUR, E + 3 * HOUR + 3 * MINUTE)
    # 4. resolved by a person, no playbook: 1 hour.
    _incident(db, E + 4 * HOUR, E + 5 * HOUR, how="manual")
    # 5. on its own within one interval: 2 minutes.
    _incident(db, E + 6 * HOUR, E + 6 * HOUR + 2 * MINUTE)
    # 6. during maintenance, on its own: 30 minutes.
    window_create(
        actor="t",
        name="upgrade",
        scope="services",
        services=[cron],
        starts_at=E + 6 * HOUR + 30 * MINUTE,
        ends_at=E + 8 * HOUR,
    )
    _incident(cron, E + 7 * HOUR, E + 7 * HOUR + 30 * MINUTE)
    # 7. still open.
    _incident(db, E + 20 * HOUR)
    return selectors.Period(since=E, until=E + day), E


def test_mttr_by_ending_team_priority_and_against_the_baseline(history):
    period, enabled = history
    mttr = selectors.mttr(period)
    assert mttr["overall"] == {
        "count": 6,
        "mean": 1250.0,
        "p50": 900.0,
        "p90": 2700.0,
        "p99": 3510.0,
    }
    assert mttr["by_ending"] == {
        "approved": {"count": 1, "mean": 1200.0, "p50": 1200.0, "p90": 1200.0, "p99": 1200.0},
        "human": {"count": 1, "mean": 3600.0, "p50": 3600.0, "p90": 3600.0, "p99": 3600.0},
        "own": {"count": 3, "mean": 700.0, "p50": 180.0, "p90": 1476.0, "p99": 1767.6},
        "playbook": {"count": 1, "mean": 600.0, "p50": 600.0, "p90": 600.0, "p99": 600.0},
    }
    assert mttr["by_team"]["ops"]["count"] == 3 and mttr["by_team"]["ops"]["mean"] == 660.0
    assert mttr["by_team"]["data"]["count"] == 3 and mttr["by_team"]["data"]["mean"] == 1840.0
    assert {k: v["count"] for k, v in mttr["by_priority"].items()} == {"p1": 1, "p2": 2, "p3": 3}
    assert mttr["by_service"]["worker-a"]["mean"] == 390.0
    assert mttr["covered_services"]["mean"] == 660.0
    assert mttr["playbooks_enabled_at"] == enabled
    assert mttr["baseline"]["since"] == enabled - timedelta(days=1)
    assert mttr["baseline"]["covered_services"]["mean"] == 3000.0
    assert mttr["target"] == {"reduction": 0.3, "met": True, "reduction_observed": 0.78}


def test_coverage_accuracy_and_a_team_filter(history):
    period, _ = history
    coverage = selectors.coverage(period)
    assert (coverage["alerts"], coverage["alerts_covered"], coverage["alert_share"]) == (
        7,
        3,
        0.4286,
    )
    assert (coverage["services"], coverage["services_covered"]) == (4, 2)
    assert coverage["by_team"]["ops"] == {
        "services": 2,
        "services_covered": 2,
        "alerts": 3,
        "alerts_covered": 3,
        "alert_share": 1.0,
        "service_share": 1.0,
    }
    assert coverage["by_team"]["data"]["alert_share"] == 0.0
    assert coverage["never_fired"] == ["fix-mail"]
    assert coverage["top_uncovered"] == [
        {"service": "db-1", "alerts": 3},
        {"service": "cron-x", "alerts": 1},
    ]
    assert coverage["target"] == {"share": 0.5, "met": False}
    accuracy = selectors.accuracy(period)
    assert accuracy == {
        "alerts": 7,
        "resolved_within_interval_unaided": 2,
        "suppressed_by_maintenance": 1,
        "suppressed_by_maintenance_share": 0.1429,
        "repeat_alerts": 0,
        "repeat_share": 0.0,
        "flapping_services": [],
        "false_positive_rate": 0.2857,
        "target": {"rate": 0.05, "met": False},
    }
    data = selectors.Period(period.since, period.until, team="data")
    assert selectors.mttr(data)["by_ending"].keys() == {"human", "own"}
    assert selectors.accuracy(data)["alerts"] == 4


def test_api_envelope_scope_and_bad_input(history, reader, outsider):
    period, _ = history
    query = {"since": period.since.isoformat(), "until": period.until.isoformat()}
    assert outsider.get("/v2/reports/success-metrics", query).status_code == 401
    response = reader.get("/v2/reports/success-metrics", query)
    assert response.status_code == 200
    body = response.json()
    assert body["mttr"]["overall"]["p50"] == 900.0
    assert body["coverage"]["never_fired"] == ["fix-mail"]
    assert body["security"]["refused_by_reason"]["missing"] >= 1
    bad = reader.get("/v2/reports/success-metrics", {"since": "yesterday", "colour": "red"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"since", "colour"}
    backwards = reader.get(
        "/v2/reports/success-metrics", {"since": query["until"], "until": query["since"]}
    )
    assert backwards.json()["error"]["fields"] == {"until": ["Must be later than since."]}


def test_command_prints_text_and_json(history):
    period, _ = history
    args = ["--since", period.since.isoformat(), "--until", period.until.isoformat()]
    out = StringIO()
    call_command("success_report", *args, "--format", "json", stdout=out)
    assert json.loads(out.getvalue())["accuracy"]["false_positive_rate"] == 0.2857
    out = StringIO()
    call_command("success_report", *args, stdout=out)
    text = out.getvalue()
    assert "by a playbook                n=1     mean=10.0m" in text
    assert "alerts with a playbook: 3/7 (42.9 %)" in text
    assert (
        "2 of 7 alerts resolved on their own within one interval: 28.6 % (target < 5 %: NOT met)"
        in text
    )
    assert "no playbook: db-1 (3 alerts)" in text


def test_gauges_over_the_rolling_window(reader):
    now = timezone.now()
    quick = ServiceFactory(heartbeat_name="api-1", alert_interval=5)
    slow = ServiceFactory(heartbeat_name="api-2", alert_interval=5)
    _incident(quick, now - 3 * HOUR, now - 3 * HOUR + 2 * MINUTE)
    _incident(slow, now - 2 * HOUR, now - 2 * HOUR + 20 * MINUTE, how="manual")
    _incident(slow, now - 30 * HOUR * 24)  # outside the 7-day window
    text = reader.get("/metrics").content.decode()
    assert 'medic_success_mttr_seconds{ending="own",stat="mean"} 120.0' in text
    assert 'medic_success_mttr_seconds{ending="human",stat="p90"} 1200.0' in text
    assert "medic_success_false_positive_ratio 0.5" in text
    assert "medic_success_alert_coverage_ratio 0.0" in text
    # No playbook yet: no before/after figure rather than a made-up one.
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith("medic_success_mttr_reduction_ratio ")]


def test_the_sqlite_fallback_interpolates_like_percentile_cont():
    """Embedded mode computes percentiles in Python: the same figures PostgreSQL gave above."""
    durations = [600.0, 1200.0, 180.0, 3600.0, 120.0, 1800.0]
    assert [selectors._interpolate(durations, f) for f in (0.5, 0.9, 0.99)] == [
        900.0,
        2700.0,
        3510.0,
    ]
    assert selectors._interpolate([42.0], 0.99) == 42.0
