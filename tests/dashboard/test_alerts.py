"""Alert history: filters, and each alert's timeline derived from the Alert and Delivery rows,
with every delivery attempt."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from alerting.models import Alert, Delivery
from heartbeats.models import Service
from heartbeats.services import heartbeat_record, service_create, service_mute, service_unmute
from tests.sweep import sweep

pytestmark = pytest.mark.django_db


def _ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'href="/ui/alerts/(\d+)"', response.content.decode())]


def _alert(service, *, days_ago: float, state: str = "resolved", priority: str = "p3") -> Alert:
    opened = timezone.now() - timedelta(days=days_ago)
    return Alert.objects.create(
        service=service,
        dedup_key=f"medic-{service.heartbeat_name}",
        reason="missed_heartbeat",
        priority=priority,
        summary=f"{service.heartbeat_name}: no heartbeat",
        opened_at=opened,
        state=state,
        resolved_at=None if state == "open" else opened + timedelta(minutes=30),
    )


def _overdue(service) -> None:
    # As if it had been registered long ago: the deadline passed a minute ago.
    Service.objects.filter(pk=service.pk).update(
        next_deadline_at=timezone.now() - timedelta(minutes=1)
    )


def test_filters(viewer, world):
    other = service_create(heartbeat_name="ingest", alert_interval=5, team="platform")
    old = _alert(other, days_ago=10, priority="p1")
    recent = _alert(other, days_ago=1)
    current = _alert(world["service"], days_ago=0.01, state="open", priority="p2")
    everything = _ids(viewer.get("/ui/alerts"))
    assert everything == [current.pk, world["alert"].pk, recent.pk, old.pk]
    assert _ids(viewer.get("/ui/alerts?service=INGEST")) == [recent.pk, old.pk]
    assert _ids(viewer.get("/ui/alerts?team=payments")) == [current.pk, world["alert"].pk]
    assert _ids(viewer.get("/ui/alerts?priority=p1")) == [old.pk]
    assert _ids(viewer.get("/ui/alerts?state=open")) == [current.pk]
    day = (timezone.now() - timedelta(days=10)).date().isoformat()
    assert _ids(viewer.get(f"/ui/alerts?opened_from={day}&opened_to={day}")) == [old.pk]
    week = (timezone.now() - timedelta(days=7)).date().isoformat()
    assert old.pk not in _ids(viewer.get(f"/ui/alerts?opened_from={week}"))
    response = viewer.get("/ui/alerts?service=nothing-like-it")
    assert b"No alert matches these filters" in response.content


def test_bad_date_range_says_what_to_fix(viewer, world):
    html = viewer.get("/ui/alerts?opened_from=2026-05-02&opened_to=2026-05-01").content.decode()
    assert "The end date is before the start date." in html
    html = viewer.get("/ui/alerts?opened_from=yesterday").content.decode()
    assert "Enter a valid date." in html


def test_timeline_of_a_muted_alert_notified_after_unmute_then_resolved(
    viewer, world, slack, django_capture_on_commit_callbacks
):
    service = world["quiet"]
    service_mute(service_ref=service.pk, reason="planned", actor="user:otto")
    _overdue(service)
    sweep()  # overdue: opens, held back by the mute
    alert = Alert.objects.get(service=service, state="open")
    with django_capture_on_commit_callbacks(execute=True):  # deliveries are sent after commit
        service_unmute(service_ref=service.pk, actor="user:otto")  # released: notified now
        heartbeat_record(service_ref=service.pk)  # back up: resolved with a recovery message
        sweep()
    alert.refresh_from_db()
    assert alert.state == "resolved"

    html = viewer.get(f"/ui/alerts/{alert.pk}").content.decode()
    timeline = html[html.index('data-testid="timeline"') : html.index("</ol>")]
    titles = re.findall(r'<div class="what">([^<]+)</div>', timeline)
    assert titles == [
        "Opened",
        "Notification held back",
        "Notified after the hold lifted",
        "Resolved",
        "Recovery sent",
    ]
    assert "muted until" in timeline and ": planned" in timeline
    assert "Slack C0PAYMENTS (succeeded)" in timeline
    # every delivery, with its attempts
    deliveries = html[html.index('data-testid="deliveries"') :]
    assert (
        deliveries.count("HTTP 200")
        == Delivery.objects.filter(alert=alert, status="succeeded").count()
        == 2
    )
    assert "suppressed" in deliveries


def test_timeline_shows_retries_and_renotifications(viewer, world):
    alert = world["alert"]
    html = viewer.get(f"/ui/alerts/{alert.pk}").content.decode()
    assert "HTTP 503" in html and "HTTP 200" in html  # two attempts of one delivery
    Delivery.objects.create(
        alert=alert,
        event="renotify",
        channel="webhook",
        target="https://hooks.example.com/medic",
        status="failed",
        attempts=0,
        created_at=alert.opened_at + timedelta(minutes=10),
    )
    html = viewer.get(f"/ui/alerts/{alert.pk}").content.decode()
    titles = re.findall(r'<div class="what">([^<]+)</div>', html)
    assert titles == ["Opened", "Notified", "Re-notified (still down)", "Resolved"]


def test_alert_without_any_route_says_nobody_was_notified(viewer, world):
    service = world["quiet"]
    _overdue(service)
    sweep()
    alert = Alert.objects.get(service=service, state="open")
    Delivery.objects.filter(alert=alert).delete()
    html = viewer.get(f"/ui/alerts/{alert.pk}").content.decode()
    assert "Nobody was notified" in html and "No route reached a target" in html


def test_muted_badge_in_the_alert_list(viewer, world):
    service_mute(service_ref=world["quiet"].pk, reason="known issue", actor="user:otto")
    html = viewer.get("/ui/alerts").content.decode()
    assert re.search(r'title="muted by user:otto until [^"]+: known issue">muted<', html)


def test_missing_alert_is_a_page(viewer):
    assert viewer.get("/ui/alerts/424242").status_code == 404
