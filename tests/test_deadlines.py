"""One deadline rule: the SQL of the heartbeat hot path agrees with ``deadline_compute`` for
every schedule kind, and every path (heartbeats, force-up, dashboard) uses the same rule."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from heartbeats.deadlines import (
    INTERVAL_DEADLINE_SQL,
    deadline_compute,
    deadline_following,
    next_beat_expected,
)
from heartbeats.models import Service
from heartbeats.selectors import nth_recent_heartbeat_at
from heartbeats.services import heartbeat_record, service_create, service_update

pytestmark = pytest.mark.django_db

INTERVALS = [0.05, 0.5, 1, 2.5, 7, 60, 1440, 10080]
GRACES = [0, 1, 7, 59, 3600, 86400]


def test_hot_path_sql_is_the_interval_rule_for_every_interval_and_grace():
    service = service_create(heartbeat_name="sql-rule", alert_interval=1)
    beat = datetime(2026, 3, 8, 6, 59, 59, 123456, tzinfo=UTC)
    for interval, grace in itertools.product(INTERVALS, GRACES):
        Service.objects.filter(pk=service.pk).update(
            alert_interval=interval, grace_period_seconds=grace
        )
        service.refresh_from_db()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {INTERVAL_DEADLINE_SQL} FROM {Service._meta.db_table} WHERE id = %(id)s",
                {"now": beat, "id": service.pk},
            )
            from_sql = cursor.fetchone()[0]
        assert from_sql == deadline_compute(service=service, nth_recent_at=beat), (interval, grace)


@pytest.mark.parametrize(
    "fields",
    [
        {"alert_interval": 1},
        {"alert_interval": 2.5, "grace_period_seconds": 30},
        {"alert_interval": 5, "threshold": 3},
        {"schedule_kind": "at_least", "alert_interval": 60, "threshold": 2},
        {"schedule_kind": "cron", "cron_expression": "*/15 * * * *"},
        {
            "schedule_kind": "cron",
            "cron_expression": "30 2 * * *",
            "schedule_timezone": "America/New_York",
            "grace_period_seconds": 600,
        },
    ],
    ids=["interval", "interval-grace", "threshold", "at-least", "cron", "cron-dst-grace"],
)
def test_every_heartbeat_path_moves_the_deadline_by_the_rule(fields):
    service = service_create(heartbeat_name="rule", **fields)
    for _ in range(4):  # first beat (general path), then the steady state (hot path if eligible)
        heartbeat_record(service_ref=service.pk)
        service.refresh_from_db()
        expected = deadline_compute(service=service, nth_recent_at=nth_recent_heartbeat_at(service))
        assert service.next_deadline_at == expected


def test_a_forced_up_service_gets_its_schedules_deadline_not_an_interval():
    service = service_create(
        heartbeat_name="forced", schedule_kind="cron", cron_expression="0 3 * * *"
    )
    Service.objects.filter(pk=service.pk).update(status="down")
    service = service_update(service_ref=service.pk, down=False)
    assert service.status == "up"
    fire = deadline_compute(service=service, nth_recent_at=service.next_deadline_at)
    # A cron deadline is a fire time (plus grace), whatever the cron service's alert_interval.
    assert service.next_deadline_at.astimezone(UTC).strftime("%H:%M") == "03:00"
    assert fire > service.next_deadline_at


def test_next_missed_deadline_follows_the_schedule():
    interval = service_create(heartbeat_name="every-10", alert_interval=10, grace_period_seconds=5)
    missed = datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)
    assert deadline_following(service=interval, missed=missed) == missed + timedelta(minutes=10)
    cron = service_create(
        heartbeat_name="hourly",
        schedule_kind="cron",
        cron_expression="0 * * * *",
        grace_period_seconds=60,
    )
    missed = datetime(2026, 1, 1, 12, 1, tzinfo=UTC)
    assert deadline_following(service=cron, missed=missed) == datetime(
        2026, 1, 1, 13, 1, tzinfo=UTC
    )


def test_dashboard_next_beat_is_the_deadline_without_grace():
    service = service_create(heartbeat_name="shown", alert_interval=10, grace_period_seconds=90)
    heartbeat_record(service_ref=service.pk)
    service.refresh_from_db()
    assert next_beat_expected(service) == service.last_heartbeat_at + timedelta(minutes=10)
