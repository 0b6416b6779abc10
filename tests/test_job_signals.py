"""Start/complete/fail signals over HTTP, correlation, alerts, stats (SRE-15, SRE-16)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerting.models import Alert
from heartbeats.jobs import job_end, job_start
from heartbeats.models import Heartbeat, JobRun, Service
from tests.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def job(admin):
    response = admin.post(
        "/v2/services",
        {"heartbeat_name": "etl", "alert_interval": 60, "max_duration_seconds": 600},
    )
    assert response.status_code == 201
    return Service.objects.get()


def test_start_then_complete_correlates_by_run_id(writer, job):
    started = writer.post("/v2/heartbeat/etl/start", {"run_id": "2026-11-27"})
    assert started.status_code == 201
    assert started.json()["status"] == "running" and started.json()["run_id"] == "2026-11-27"
    done = writer.post(
        "/v2/heartbeat/etl/complete",
        {"run_id": "2026-11-27", "exit_code": 0, "message": "ok", "output_tail": "rows: 42"},
    )
    assert done.status_code == 201
    body = done.json()
    assert body["status"] == "completed" and body["exit_code"] == 0
    assert body["duration_ms"] is not None and body["service_status"] == "up"
    run = JobRun.objects.get()
    assert run.output_tail == "rows: 42"
    assert list(Heartbeat.objects.order_by("id").values_list("status", flat=True)) == [
        "STARTED",
        "COMPLETED",
    ]


def test_run_id_is_generated_and_latest_open_run_is_closed(writer, job):
    started = writer.post("/v2/heartbeat/etl/start").json()
    assert len(started["run_id"]) == 16
    done = writer.post("/v2/heartbeat/etl/complete").json()
    assert done["run_id"] == started["run_id"] and done["status"] == "completed"


def test_duplicate_and_out_of_order_signals(writer, job):
    ended = writer.post("/v2/heartbeat/etl/complete", {"run_id": "r1", "duration_ms": 1500})
    assert ended.status_code == 201
    again = writer.post("/v2/heartbeat/etl/complete", {"run_id": "r1"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    late_start = writer.post("/v2/heartbeat/etl/start", {"run_id": "r1"})
    assert late_start.status_code == 200 and late_start.json()["duplicate"] is True
    run = JobRun.objects.get(run_id="r1")
    assert run.status == "completed" and run.started_at is not None and run.duration_ms == 1500
    assert JobRun.objects.count() == 1


def test_signal_errors(writer, job, admin):
    assert writer.post("/v2/heartbeat/nope/start").status_code == 404
    assert writer.post("/v2/heartbeat/etl/fail", {"exit_code": 999}).status_code == 422
    assert writer.post("/v2/heartbeat/etl/start", {"run_id": "has space"}).status_code == 422
    admin.patch("/v2/services/etl", {"active": False})
    assert writer.post("/v2/heartbeat/etl/start").status_code == 409


def test_failure_alerts_with_exit_code_and_output_tail_to_every_target(
    writer, job, slack, pagerduty
):
    output = "x" * 20_000 + "\nTraceback: disk full"
    response = writer.post(
        "/v2/heartbeat/etl/fail", {"exit_code": 3, "output_tail": output, "message": "boom"}
    )
    assert response.status_code == 201
    run = JobRun.objects.get()
    assert len(run.output_tail.encode()) == 10 * 1024 and run.output_tail.endswith("disk full")
    alert = Alert.objects.get()
    assert alert.reason == "job_failed" and alert.details["exit_code"] == 3
    assert "exit code 3" in alert.summary
    text = slack.wait_for(1)[0].json()["text"]
    assert "*Exit code:* 3" in text and "Traceback: disk full" in text
    details = pagerduty.wait_for(1)[0].json()["payload"]["custom_details"]
    assert details["exit_code"] == 3 and details["output_tail"].endswith("disk full")
    # the next successful run resolves it
    writer.post("/v2/heartbeat/etl/complete")
    sweep()
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_consecutive_failure_threshold(writer, admin, job):
    admin.patch("/v2/services/etl", {"failure_threshold": 3})
    for _ in range(2):
        writer.post("/v2/heartbeat/etl/fail", {"exit_code": 1})
    assert Alert.objects.count() == 0 and Service.objects.get().status == "up"
    writer.post("/v2/heartbeat/etl/fail", {"exit_code": 1})
    assert Alert.objects.get().details["consecutive_failures"] == 3
    assert Service.objects.get().status == "down"


def test_hung_job_is_detected_by_the_sweep(writer, job):
    writer.post("/v2/heartbeat/etl/start", {"run_id": "long"})
    run = JobRun.objects.get()
    assert run.deadline_at == run.started_at + timedelta(seconds=600)
    assert sweep(now=run.started_at + timedelta(seconds=599)).hung_runs == []
    result = sweep(now=run.started_at + timedelta(seconds=601))
    assert result.hung_runs == [run.pk]
    alert = Alert.objects.get()
    assert alert.reason == "job_hung" and alert.details["run_id"] == "long"
    assert sweep(now=run.started_at + timedelta(seconds=700)).hung_runs == []  # once
    writer.post("/v2/heartbeat/etl/complete", {"run_id": "long"})
    sweep()
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_started_never_completed_without_max_duration(writer, admin):
    admin.post("/v2/services", {"heartbeat_name": "batch", "alert_interval": 30})
    writer.post("/v2/heartbeat/batch/complete")  # a first completion sets the schedule
    writer.post("/v2/heartbeat/batch/start")
    run = JobRun.objects.get(status="running")
    service = Service.objects.get()
    assert run.deadline_at == service.next_deadline_at
    sweep(now=run.deadline_at + timedelta(seconds=1))
    assert Alert.objects.get().reason in {"job_not_completed", "missed_heartbeat"}
    assert JobRun.objects.get(pk=run.pk).hung_alerted is True


def test_completed_never_arriving_on_schedule_alerts(writer, job):
    writer.post("/v2/heartbeat/etl/complete")
    service = Service.objects.get()
    writer.post("/v2/heartbeat/etl/start")  # a start alone does not satisfy the schedule
    service.refresh_from_db()
    result = sweep(now=service.next_deadline_at + timedelta(seconds=1))
    assert result.marked_down == [service.pk]


def test_stats_from_known_durations(reader, job):
    assert reader.get("/v2/services/etl/stats").json()["reason"].startswith("no completed runs")
    now = timezone.now()
    durations = [1000, 2000, 3000, 4000, 10000]
    for i, ms in enumerate(durations[:4]):
        job_end(service_ref=job.pk, succeeded=True, run_id=f"r{i}", duration_ms=ms, at=now)
    partial = reader.get("/v2/services/etl/stats").json()
    assert partial["count"] == 4 and partial["p50_ms"] is None
    assert "at least 5" in partial["reason"]
    job_end(service_ref=job.pk, succeeded=True, run_id="r4", duration_ms=10000, at=now)
    stats = reader.get("/v2/services/etl/stats").json()
    assert stats == {
        "service": "etl",
        "count": 5,
        "avg_ms": 4000.0,
        "min_ms": 1000,
        "max_ms": 10000,
        "p50_ms": 3000.0,
        "p95_ms": 8800.0,
        "p99_ms": 9760.0,
        "reason": None,
    }


def test_only_the_last_100_runs_are_kept_and_history_paginates(reader, job):
    now = timezone.now()
    for i in range(105):
        job_end(
            service_ref=job.pk,
            succeeded=True,
            run_id=f"r{i}",
            duration_ms=i,
            at=now + timedelta(seconds=i),
        )
    assert JobRun.objects.count() == 100
    page = reader.get("/v2/services/etl/runs", {"limit": 30}).json()
    assert len(page["results"]) == 30 and page["next"]
    assert page["results"][0]["run_id"] == "r104"


def test_slow_run_alert_against_own_p95(admin, writer, job):
    admin.patch("/v2/services/etl", {"slow_run_factor": 2})
    now = timezone.now()
    for i in range(6):
        job_end(service_ref=job.pk, succeeded=True, run_id=f"r{i}", duration_ms=1000, at=now)
    writer.post("/v2/heartbeat/etl/complete", {"run_id": "slow", "duration_ms": 5000})
    alert = Alert.objects.get()
    assert alert.reason == "job_slow" and alert.details["limit_ms"] == 2000
    assert Service.objects.get().status == "up"
    sweep()  # informational alerts are not resolved by reconciliation
    assert Alert.objects.get().state == "open"
    writer.post("/v2/heartbeat/etl/complete", {"run_id": "normal", "duration_ms": 1100})
    assert Alert.objects.get().state == "resolved"


def test_job_duration_metric(writer, job, reader):
    job_start(service_ref=job.pk, run_id="m")
    writer.post("/v2/heartbeat/etl/complete", {"run_id": "m", "duration_ms": 2500})
    text = reader.get("/metrics").content.decode()
    assert 'medic_job_duration_seconds_count{team="site-reliability"}' in text
    assert 'medic_job_runs_total{outcome="completed"}' in text
