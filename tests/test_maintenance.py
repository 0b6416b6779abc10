"""Maintenance windows: scope, suppression, release at the end, notices, API filters (SRE-14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from alerting.models import Alert, Delivery
from heartbeats import maintenance
from heartbeats.models import MaintenanceWindow
from heartbeats.services import service_create
from tests.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)
NEW_YORK = ZoneInfo("America/New_York")


def _window(**fields) -> MaintenanceWindow:
    return maintenance.window_create(actor="t", **fields)


def test_recurring_window_in_local_time_across_dst():
    window = _window(
        name="sunday-patching",
        cron_expression="0 2 * * 0",
        duration_minutes=120,
        time_zone="America/New_York",
    )
    # Sunday 2026-03-08: 02:00 does not exist; the window opens at 03:00 EDT, for two hours
    assert maintenance.occurrence_at(window, datetime(2026, 3, 8, 6, 59, tzinfo=UTC)) is None
    start, end = maintenance.occurrence_at(window, datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    assert start == datetime(2026, 3, 8, 7, 0, tzinfo=UTC) and end - start == timedelta(hours=2)
    # Sunday 2026-11-01 (fall back): opens once, at the first 02:00... which is EST 02:00
    start, _ = maintenance.occurrence_at(window, datetime(2026, 11, 1, 7, 30, tzinfo=UTC))
    assert start.astimezone(NEW_YORK).strftime("%H:%M %Z") == "02:00 EST"
    nxt = maintenance.occurrences(window, datetime(2026, 11, 2, tzinfo=UTC), 2)
    assert [s.astimezone(NEW_YORK).day for s, _ in nxt] == [8, 15]


def test_leap_day_window():
    window = _window(name="leap", cron_expression="0 0 29 2 *", duration_minutes=60)
    assert maintenance.occurrences(window, datetime(2026, 1, 1, tzinfo=UTC), 1)[0][0] == datetime(
        2028, 2, 29, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, "starts_at"),
        ({"starts_at": "x"}, None),
        ({"cron_expression": "0 2 * * 0"}, "duration_minutes"),
        ({"cron_expression": "0 2 * * 0", "duration_minutes": 60, "time_zone": "EST"}, "timezone"),
        ({"scope": "team", "cron_expression": "0 2 * * 0", "duration_minutes": 5}, "team"),
    ],
)
def test_window_validation(fields, error):
    from medic.errors import InvalidInput

    if error is None:
        return
    with pytest.raises(InvalidInput) as raised:
        _window(name="w", **fields)
    assert error in raised.value.fields


def test_scope_all_team_pattern_services():
    billing = service_create(heartbeat_name="billing-api", alert_interval=5, team="payments")
    other = service_create(heartbeat_name="search", alert_interval=5, team="core")
    now = timezone.now()
    one_time = {"starts_at": now - timedelta(minutes=1), "ends_at": now + timedelta(hours=1)}
    team = _window(name="team", scope="team", team="payments", **one_time)
    pattern = _window(name="pattern", scope="pattern", pattern="BILLING-*", **one_time)
    listed = _window(name="listed", scope="services", services=[other], **one_time)
    assert maintenance.covers(team, billing) and not maintenance.covers(team, other)
    assert maintenance.covers(pattern, billing) and not maintenance.covers(pattern, other)
    assert maintenance.covers(listed, other) and not maintenance.covers(listed, billing)


def test_window_suppresses_then_alert_goes_out_when_it_ends(slack):
    service = service_create(heartbeat_name="db", alert_interval=1)
    now = timezone.now()
    window = _window(
        name="db-upgrade",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(minutes=30),
        notify=False,
    )
    during = service.next_deadline_at + timedelta(seconds=1)
    sweep(now=during)
    alert = Alert.objects.get()
    assert alert.suppressed is True
    delivery = Delivery.objects.get(alert=alert)
    assert delivery.status == "suppressed" and "db-upgrade" in delivery.suppressed_reason
    assert slack.requests == []
    # still down when the window closes: the alert goes out then
    sweep(now=window.ends_at + timedelta(seconds=1))
    alert.refresh_from_db()
    assert alert.suppressed is False
    assert "is down" in slack.wait_for(1)[0].json()["text"]


def test_window_start_and_end_notices_go_to_the_affected_teams_routes(slack, settings):
    from alerting.models import Team

    Team.objects.create(name="payments", slack_channel_id="C0PAYMENTS")
    service_create(heartbeat_name="billing", alert_interval=60, team="payments")
    now = timezone.now()
    window = _window(
        name="payments-deploy",
        scope="team",
        team="payments",
        starts_at=now + timedelta(minutes=1),
        ends_at=now + timedelta(minutes=31),
    )
    sweep(now=now)
    assert slack.requests == []
    result = sweep(now=now + timedelta(minutes=2))
    assert result.window_notices == [("payments-deploy", "started")]
    started = slack.wait_for(1)[0].json()
    assert started["channel"] == "C0PAYMENTS" and "started" in started["text"]
    assert sweep(now=now + timedelta(minutes=3)).window_notices == []  # once
    ended = sweep(now=window.ends_at + timedelta(seconds=1))
    assert ended.window_notices == [("payments-deploy", "ended")]
    assert "ended" in slack.wait_for(2)[1].json()["text"]


def test_api_crud_and_filters(writer, reader):
    now = timezone.now()
    current = writer.post(
        "/v2/maintenance-windows",
        {
            "name": "now",
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    )
    assert current.status_code == 201, current.content
    assert current.json()["active_now"] is True
    later = writer.post(
        "/v2/maintenance-windows",
        {
            "name": "weekly",
            "cron_expression": "0 3 * * 6",
            "duration_minutes": 90,
            "timezone": "Europe/Berlin",
            "scope": "pattern",
            "pattern": "db-*",
        },
    )
    assert later.status_code == 201, later.content
    assert len(later.json()["next_occurrences"]) == 5
    names = {
        w["name"]
        for w in reader.get("/v2/maintenance-windows", {"active": "true"}).json()["results"]
    }
    assert "now" in names
    upcoming = reader.get("/v2/maintenance-windows", {"upcoming": "true"}).json()["results"]
    assert "weekly" in {w["name"] for w in upcoming}
    bad = writer.post(
        "/v2/maintenance-windows",
        {"name": "bad", "cron_expression": "0 3 * * 6", "duration_minutes": 60, "timezone": "CET"},
    )
    assert bad.status_code == 422 and "timezone" in bad.json()["error"]["fields"]
    assert reader.get("/v2/maintenance-windows", {"active": "maybe"}).status_code == 422
    assert (
        writer.patch("/v2/maintenance-windows/weekly", {"duration_minutes": 30}).json()[
            "duration_minutes"
        ]
        == 30
    )
    assert writer.delete("/v2/maintenance-windows/weekly").status_code == 204
    assert reader.post("/v2/maintenance-windows", {"name": "x"}).status_code == 403
