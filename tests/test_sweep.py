"""The sweep: overdue services go down once, alerts repeat, recover, respect mutes and activity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerting.models import Alert, Delivery, DeliveryStatus, Team
from heartbeats.models import Heartbeat, Service
from heartbeats.services import heartbeat_record, heartbeats_prune, service_mute
from tests.factories import ServiceFactory
from tests.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)


class NightlyEtl(ServiceFactory):
    heartbeat_name = "nightly-etl"
    alert_interval = 10


def test_service_goes_down_after_interval_plus_grace_and_alerts_once(slack, pagerduty):
    service = ServiceFactory(
        heartbeat_name="nightly-etl",
        alert_interval=10,
        grace_period_seconds=30,
        priority="p1",
        runbook="https://runbooks/etl",
    )
    t0 = timezone.now()
    heartbeat_record(service_ref=service.pk, at=t0)
    assert sweep(now=t0 + timedelta(minutes=10, seconds=29)).marked_down == []
    result = sweep(now=t0 + timedelta(minutes=10, seconds=31))
    assert result.marked_down == [service.pk]
    service.refresh_from_db()
    assert service.status == "down"
    alert = Alert.objects.get()
    # one incident key per alert (docs/alert-routing.md): the service name and the opening time
    assert alert.state == "open" and alert.dedup_key.startswith("medic-nightly-etl-")
    # a second pass does not open a second alert
    assert sweep(now=t0 + timedelta(minutes=11)).marked_down == []
    assert Alert.objects.count() == 1

    slack_msg = slack.wait_for(1)[0]
    assert slack_msg.path == "/api/chat.postMessage"
    assert slack_msg.headers["Authorization"] == "Bearer xoxb-test-token"
    body = slack_msg.json()
    assert body["channel"] == "C0DEFAULT"
    for fragment in ("nightly-etl", "P1", "https://runbooks/etl", "Last heartbeat"):
        assert fragment in body["text"]
    event = pagerduty.wait_for(1)[0].json()
    assert event["event_action"] == "trigger" and event["dedup_key"] == alert.dedup_key
    assert event["payload"]["severity"] == "critical"
    assert event["routing_key"] == "R0UTINGKEY0000000000000000000abcd"
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}


def test_team_channel_is_used_when_the_team_has_one(slack):
    Team.objects.create(name="payments", slack_channel_id="C0PAYMENTS")
    service = NightlyEtl(team="payments")
    sweep(now=service.next_deadline_at + timedelta(seconds=1))
    assert slack.wait_for(1)[0].json()["channel"] == "C0PAYMENTS"


def test_never_reporting_service_alerts_once_not_every_cycle(slack):
    service = NightlyEtl()
    start = service.next_deadline_at
    for minutes in range(0, 9, 1):
        sweep(now=start + timedelta(minutes=minutes, seconds=1))
    alert = Alert.objects.get()
    assert alert.reason == "never_reported"
    assert len(slack.wait_for(1)) == 1


def test_never_reporting_service_repeats_once_per_interval_like_any_open_alert(slack):
    # docs/runbook.md: one alert, opened once, repeated every alert_interval while no heartbeat
    # has come; not once per sweep.
    service = NightlyEtl(alert_interval=0.5)
    start = service.next_deadline_at
    for seconds in range(1, 91, 5):  # eighteen sweeps over three intervals
        sweep(now=start + timedelta(seconds=seconds))
    alert = Alert.objects.get()
    assert alert.reason == "never_reported" and alert.state == "open"
    assert alert.notify_count == 3
    assert len(slack.wait_for(3)) == 3
    assert Delivery.objects.filter(event="renotify").count() == 2


def test_open_alert_renotifies_every_interval_then_resolves_on_recovery(slack, pagerduty):
    service = NightlyEtl()
    t0 = service.next_deadline_at + timedelta(seconds=1)
    sweep(now=t0)
    sweep(now=t0 + timedelta(minutes=10, seconds=1))  # one re-notification
    sweep(now=t0 + timedelta(minutes=15))  # too early for the next
    alert = Alert.objects.get()
    assert alert.notify_count == 2
    texts = [r.json()["text"] for r in slack.wait_for(2)]
    assert "is still down" in texts[1]
    # PagerDuty owns re-paging: it got only the trigger
    assert [r.json()["event_action"] for r in pagerduty.requests] == ["trigger"]

    heartbeat_record(service_ref=service.pk)
    service.refresh_from_db()
    assert service.status == "up"
    sweep()
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.resolved_at is not None
    assert "recovered" in slack.wait_for(3)[2].json()["text"]
    assert pagerduty.wait_for(2)[1].json() == {
        "routing_key": "R0UTINGKEY0000000000000000000abcd",
        "event_action": "resolve",
        "dedup_key": alert.dedup_key,
    }


def test_threshold_counts_heartbeats_in_window():
    service = NightlyEtl(threshold=3)
    t0 = timezone.now()
    for seconds in (0, 60, 120):
        heartbeat_record(service_ref=service.pk, at=t0 + timedelta(seconds=seconds))
    service.refresh_from_db()
    # the window holds 3 beats until the oldest of them is 10 minutes old
    assert service.next_deadline_at == t0 + timedelta(minutes=10)
    assert service.status == "up"


def test_status_text_never_marks_a_v1_service_down():
    service = NightlyEtl()
    heartbeat_record(service_ref=service.pk, status="DOWN", source="v1")
    service.refresh_from_db()
    assert service.status == "up" and service.last_status == "DOWN"


def test_muted_service_detects_but_suppresses_then_releases_on_unmute(slack, writer):
    service = NightlyEtl()
    service_mute(service_ref=service.pk, reason="migration", duration=timedelta(hours=1))
    sweep(now=service.next_deadline_at + timedelta(seconds=1))
    service.refresh_from_db()
    assert service.status == "down"
    alert = Alert.objects.get()
    assert alert.suppressed is True
    delivery = Delivery.objects.get()
    assert delivery.status == "suppressed" and "migration" in delivery.suppressed_reason
    assert slack.requests == []
    # mute expires: the held alert goes out
    later = timezone.now() + timedelta(hours=2)
    Service.objects.filter(pk=service.pk).update(mute_until=timezone.now())
    sweep(now=later)
    assert "is down" in slack.wait_for(1)[0].json()["text"]
    alert.refresh_from_db()
    assert alert.suppressed is False and alert.notify_count == 1


def test_recovery_while_muted_is_silent(slack):
    service = NightlyEtl()
    service_mute(service_ref=service.pk, duration=timedelta(hours=1))
    sweep(now=service.next_deadline_at + timedelta(seconds=1))
    heartbeat_record(service_ref=service.pk)
    sweep()
    assert Alert.objects.get().state == "resolved"
    assert slack.requests == []


def test_inactive_service_never_goes_down():
    service = NightlyEtl(active=False)
    sweep(now=timezone.now() + timedelta(days=1))
    service.refresh_from_db()
    assert service.status == "paused" and Alert.objects.count() == 0


def test_one_broken_row_does_not_stop_the_sweep():
    bad, good = (
        NightlyEtl(heartbeat_name="bad"),
        NightlyEtl(heartbeat_name="good"),
    )
    # A corrupt row (written behind validation's back): its schedule cannot be evaluated.
    Service.objects.filter(pk=bad.pk).update(schedule_kind="cron", cron_expression="corrupt")
    now = good.next_deadline_at + timedelta(seconds=1)
    result = sweep(now=now)
    assert result.marked_down == [good.pk] and result.errors == 1
    bad.refresh_from_db()
    assert bad.status == "new" and bad.next_deadline_at > now  # pushed forward, not retried hot


def test_prune_deletes_only_expired_heartbeats():
    service = NightlyEtl()
    heartbeat_record(service_ref=service.pk)
    old = heartbeat_record(service_ref=service.pk).heartbeat
    Heartbeat.objects.filter(pk=old.pk).update(time=timezone.now() - timedelta(days=31))
    assert heartbeats_prune() == 1
    assert Heartbeat.objects.count() == 1


def test_the_sweep_task_logs_what_it_did_and_nothing_when_it_did_nothing(db, caplog):
    import logging
    from datetime import timedelta

    from django.utils import timezone

    from heartbeats import tasks
    from heartbeats.models import Service
    from heartbeats.services import service_create

    with caplog.at_level(logging.INFO, logger="heartbeats.tasks"):
        tasks.sweep()
    assert not [r for r in caplog.records if r.name == "heartbeats.tasks"]
    service = service_create(heartbeat_name="late", alert_interval=1)
    Service.objects.filter(pk=service.pk).update(
        next_deadline_at=timezone.now() - timedelta(minutes=5)
    )
    with caplog.at_level(logging.INFO, logger="heartbeats.tasks"):
        tasks.sweep()
    assert any("1 marked down" in r.getMessage() for r in caplog.records)
