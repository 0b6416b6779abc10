"""End to end for delivery and routing, with a real Celery worker, Redis and PostgreSQL.

A service goes down; its alert reaches Slack, PagerDuty and webhook stand-ins chosen by priority,
team and the time of day; a webhook that fails twice then succeeds gets one accepted delivery
after three attempts spaced about 1 s and 5 s apart; notify-until-success uses its second target
only after the first failed for good; the deliveries API shows every attempt. Rate limits are
shared by two web processes.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from alerting import config as cfg
from alerting.models import Alert, Delivery
from heartbeats.services import heartbeat_record, service_create
from medic.apikeys import api_key_create
from tests.conftest import ApiClient
from tests.e2e.test_processes import _ensure_beat_schedule, _wait
from tests.receivers import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ZONE = "Asia/Kolkata"  # deliberately not the server's zone (UTC)


def _window_now(open_now: bool) -> dict:
    """A working-hours spec that is open (or closed) right now, in a non-UTC zone."""
    local = datetime.now(ZoneInfo(ZONE))
    if open_now:
        start, end = local - timedelta(hours=1), local + timedelta(hours=2)
    else:
        start, end = local + timedelta(hours=2), local + timedelta(hours=3)
    day = start.strftime("%a").lower()
    return {
        "timezone": ZONE,
        "windows": [
            {"days": [day], "start": start.strftime("%H:00"), "end": end.strftime("%H:00")}
        ],
    }


def test_routing_retries_and_failover_through_a_real_worker(start_worker, slack, pagerduty):
    _ensure_beat_schedule()
    with (
        Receiver(default_status=200) as flaky,
        Receiver(default_status=503) as dead,
        Receiver(default_status=200) as backup,
    ):
        flaky.respond(500).respond(502)  # fails twice, then succeeds
        cfg.team_create(name="payments", slack_channel_id="C0PAYMENTS", actor="t")
        office = cfg.working_hours_create(name="open-now", spec=_window_now(True), actor="t")
        closed = cfg.working_hours_create(name="closed-now", spec=_window_now(False), actor="t")
        team_slack, _ = cfg.target_create(
            name="team-slack", kind="slack", config={}, secrets={}, actor="t"
        )
        pd, _ = cfg.target_create(name="pd", kind="pagerduty", config={}, secrets={}, actor="t")
        hook, _ = cfg.target_create(
            name="flaky-hook",
            kind="webhook",
            config={"url": flaky.url + "/a"},
            secrets={},
            actor="t",
        )
        first, _ = cfg.target_create(
            name="dead-hook", kind="webhook", config={"url": dead.url + "/b"}, secrets={}, actor="t"
        )
        second, _ = cfg.target_create(
            name="backup-hook",
            kind="webhook",
            config={"url": backup.url + "/c"},
            secrets={},
            actor="t",
        )
        cfg.rule_create(
            name="team-slack", position=10, team="payments", targets=[team_slack], actor="t"
        )
        cfg.rule_create(
            name="page-p1", position=20, priorities=["p1", "p2"], targets=[pd], actor="t"
        )
        cfg.rule_create(
            name="day-hook",
            position=30,
            when="working_hours",
            schedule=office,
            targets=[hook],
            actor="t",
        )
        cfg.rule_create(
            name="never-now",
            position=40,
            when="working_hours",
            schedule=closed,
            targets=[second],
            actor="t",
        )
        cfg.rule_create(
            name="failover", position=50, mode="until_success", targets=[first, second], actor="t"
        )

        service = service_create(
            heartbeat_name="ledger", alert_interval=0.05, team="payments", priority="p1"
        )
        heartbeat_record(service_ref=service.pk)
        # repeats every hour: only the first notification is in play here
        # the short schedule this test measures (the default one spans minutes)
        worker = start_worker(
            beat=True, MEDIC_RENOTIFY_MINUTES="60", MEDIC_DELIVERY_RETRY_DELAYS="1,5,30"
        )
        _wait(lambda: Alert.objects.filter(state="open").exists(), 45, "the alert", worker)

        assert slack.wait_for(1, timeout=20)[0].json()["channel"] == "C0PAYMENTS"
        assert pagerduty.wait_for(1, timeout=20)[0].json()["event_action"] == "trigger"
        attempts = flaky.wait_for(3, timeout=30)
        gaps = [attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at]
        assert 0.8 <= gaps[0] <= 3.5, gaps
        assert 4.5 <= gaps[1] <= 8.0, gaps
        # notify-until-success: the backup is used only after the dead hook failed for good
        backup.wait_for(1, timeout=60)
        assert len(dead.requests) == 4  # the first try and three retries (1 s, 5 s, 30 s)
        assert backup.requests[0].at >= dead.requests[-1].at
        time.sleep(1)
        assert len(flaky.requests) == 3 and len(backup.requests) == 1

    alert = Alert.objects.get()
    by_target = {
        d.notification_target.name: d
        for d in Delivery.objects.filter(alert=alert, notification_target__isnull=False)
    }
    assert by_target["flaky-hook"].status == "succeeded" and by_target["flaky-hook"].attempts == 3
    assert by_target["dead-hook"].status == "failed" and by_target["dead-hook"].attempts == 4
    assert by_target["backup-hook"].status == "succeeded"
    reader = ApiClient(api_key_create(name="r", scopes=["read"]).secret)
    rows = reader.get(f"/v2/alerts/{alert.pk}/deliveries").json()["results"]
    flaky_row = next(r for r in rows if r["target"].endswith("/a"))
    assert [a["status_code"] for a in flaky_row["attempt_log"]] == [500, 502, 200]
    assert {r["channel"] for r in rows} == {"slack", "pagerduty", "webhook"}


def _post(url: str, key: str) -> int:
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        return urllib.request.urlopen(request, timeout=5).status
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        assert exc.code != 429 or body["error"]["code"] == "rate_limited"
        return exc.code


def test_two_web_processes_share_one_key_budget(start_web):
    service_create(heartbeat_name="shared", alert_interval=5)
    key = api_key_create(name="shared", scopes=["write"]).secret
    env = {"MEDIC_RATE_LIMIT_HEARTBEAT": "30"}
    first, second = start_web(workers=1, **env), start_web(workers=1, **env)
    if int(timezone.now().timestamp()) % 60 > 50:
        time.sleep(11)  # keep all requests inside one rate-limit window
    statuses = [
        _post(f"{base}/v2/heartbeat/shared", key) for _ in range(20) for base in (first, second)
    ]
    assert statuses.count(201) == 30 and statuses.count(429) == 10


def test_a_retry_survives_a_killed_worker(start_worker, settings):
    """The retry schedule lives in the Delivery row: when the worker holding the retry dies,
    the next worker's sweep re-sends it."""
    import os
    import signal

    _ensure_beat_schedule()
    with Receiver(default_status=200) as receiver:
        receiver.respond(503)
        hook, _ = cfg.target_create(
            name="hook", kind="webhook", config={"url": receiver.url + "/r"}, secrets={}, actor="t"
        )
        cfg.rule_create(name="all", targets=[hook], actor="t")
        service = service_create(heartbeat_name="restart", alert_interval=0.05)
        heartbeat_record(service_ref=service.pk)
        env = {
            "MEDIC_RENOTIFY_MINUTES": "60",
            "MEDIC_DELIVERY_RETRY_DELAYS": "10",
            "MEDIC_DELIVERY_RECOVERY_SECONDS": "5",
        }
        first = start_worker(beat=True, **env)
        receiver.wait_for(1, timeout=45)
        delivery = _wait(
            lambda: Delivery.objects.filter(status="retrying").first(),
            10,
            "the retry to be scheduled",
            first,
        )
        os.killpg(first.popen.pid, signal.SIGKILL)  # the worker holding the retry dies
        first.popen.wait(10)
        second = start_worker(beat=True, **env)
        receiver.wait_for(2, timeout=90)
        _wait(
            lambda: Delivery.objects.get(pk=delivery.pk).status == "succeeded",
            20,
            "the delivery to succeed",
            second,
        )
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert list(delivery.attempt_rows.values_list("status_code", flat=True)) == [503, 200]
