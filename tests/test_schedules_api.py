"""Schedule kinds over the API and their deadlines (SRE-17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from heartbeats.models import Service
from heartbeats.services import heartbeat_record
from tests.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)
NEW_YORK = ZoneInfo("America/New_York")


def test_cron_service_deadline_is_next_fire_plus_grace(admin):
    response = admin.post(
        "/v2/services",
        {
            "heartbeat_name": "nightly-backup",
            "schedule_kind": "cron",
            "cron_expression": "30 2 * * *",
            "schedule_timezone": "America/New_York",
            "grace_period_seconds": 600,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["alert_interval"] == 1440  # re-notify once per cron period by default
    service = Service.objects.get()
    beat = datetime(2026, 3, 7, 7, 31, tzinfo=UTC)  # 02:31 EST on the 7th
    heartbeat_record(service_ref=service.pk, at=beat)
    service.refresh_from_db()
    # the next run is on spring-forward day: 02:30 does not exist, expected 03:00 EDT + 10 min
    assert service.next_deadline_at == datetime(2026, 3, 8, 7, 10, tzinfo=UTC)


def test_an_early_cron_beat_counts_for_the_coming_fire_time(admin):
    admin.post(
        "/v2/services",
        {
            "heartbeat_name": "hourly",
            "schedule_kind": "cron",
            "cron_expression": "0 * * * *",
            "grace_period_seconds": 120,
        },
    )
    service = Service.objects.get()
    heartbeat_record(service_ref=service.pk, at=datetime(2026, 5, 1, 9, 59, 30, tzinfo=UTC))
    service.refresh_from_db()
    # 30 s early for 10:00: next expected 11:00 (+ grace), not 10:00
    assert service.next_deadline_at == datetime(2026, 5, 1, 11, 2, tzinfo=UTC)


def test_at_least_n_per_window(admin):
    response = admin.post(
        "/v2/services",
        {
            "heartbeat_name": "ingest",
            "schedule_kind": "at_least",
            "threshold": 3,
            "alert_interval": 60,
        },
    )
    assert response.status_code == 201
    service = Service.objects.get()
    t0 = service.date_added + timedelta(minutes=1)
    for minutes in (0, 10, 20):
        heartbeat_record(service_ref=service.pk, at=t0 + timedelta(minutes=minutes))
    service.refresh_from_db()
    assert service.next_deadline_at == t0 + timedelta(minutes=60)
    assert sweep(now=t0 + timedelta(minutes=59)).marked_down == []
    assert sweep(now=t0 + timedelta(minutes=60, seconds=1)).marked_down == [service.pk]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"schedule_kind": "cron"}, "cron_expression"),
        ({"schedule_kind": "cron", "cron_expression": "61 * * * *"}, "cron_expression"),
        (
            {"schedule_kind": "cron", "cron_expression": "0 3 * * *", "schedule_timezone": "EST"},
            "schedule_timezone",
        ),
        ({"schedule_kind": "interval"}, "alert_interval"),
        ({"schedule_kind": "weekly", "alert_interval": 5}, "schedule_kind"),
        ({"alert_interval": 5, "cron_expression": "0 3 * * *"}, "cron_expression"),
        ({"alert_interval": 5, "slow_run_factor": 0.5}, "slow_run_factor"),
    ],
)
def test_schedule_validation(admin, payload, field):
    response = admin.post("/v2/services", {"heartbeat_name": "job", **payload})
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]
    assert Service.objects.count() == 0


def test_timezone_error_suggests_iana_name(admin):
    response = admin.post(
        "/v2/services",
        {
            "heartbeat_name": "job",
            "schedule_kind": "cron",
            "cron_expression": "0 3 * * *",
            "schedule_timezone": "CST",
        },
    )
    assert "America/Chicago" in " ".join(response.json()["error"]["fields"]["schedule_timezone"])


def test_fall_back_day_expects_the_job_once(admin):
    admin.post(
        "/v2/services",
        {
            "heartbeat_name": "night",
            "schedule_kind": "cron",
            "cron_expression": "30 1 * * *",
            "schedule_timezone": "America/New_York",
            "grace_period_seconds": 300,
        },
    )
    service = Service.objects.get()
    first = datetime(2026, 11, 1, 1, 31, tzinfo=NEW_YORK)  # fold 0: EDT
    heartbeat_record(service_ref=service.pk, at=first)
    service.refresh_from_db()
    # not expected again at the second 01:30 (EST); next is Nov 2 01:30 EST
    assert service.next_deadline_at == datetime(2026, 11, 2, 6, 35, tzinfo=UTC)
    assert sweep(now=datetime(2026, 11, 1, 6, 40, tzinfo=UTC)).marked_down == []
