"""A mass outage through real Celery workers: 200 services fail in the same sweep, Slack allows
one message per second per channel (429 + Retry-After beyond), PagerDuty a number of events per
window per routing key (429 beyond). Every page is delivered exactly once.

The test asserts outcomes only, with a generous bound on waiting; the time it took is printed and,
with ``MEDIC_BURST_RESULT`` set, written as JSON (bench/deliveries/run.sh runs this test with the
real services' limits and records the figure in docs/performance.md).

Profiles (``MEDIC_BURST_PROFILE``):
- ``ci`` (default): 20 team channels (10 messages each), PagerDuty allowing 100 events per 10 s;
- ``real``: 10 team channels (20 messages each), PagerDuty allowing 120 events per minute, and
  Medic's default pace (100 events per minute per routing key, bursts of 10).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Max, Min
from django.utils import timezone

from alerting import config as cfg
from alerting.models import Alert, Delivery
from heartbeats.services import heartbeat_record, service_create
from tests.e2e.test_processes import _ensure_beat_schedule, _wait
from tests.fakes import FakePagerDuty, FakeSlack

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROFILES = {
    "ci": {
        "channels": 20,
        "pd_limit": 100,
        "pd_window": 10.0,
        "env": {"MEDIC_PAGERDUTY_PACE_PER_MINUTE": "600", "MEDIC_PAGERDUTY_PACE_BURST": "20"},
    },
    "real": {"channels": 10, "pd_limit": 120, "pd_window": 60.0, "env": {}},
}
SERVICES = 200
ROUTING_KEY = "R0UTINGKEY000000000000000000abcd"
_HEADLINE = re.compile(r"\*(burst-\d+)\* is down")


def test_two_hundred_services_down_at_once_are_each_paged_exactly_once(start_worker, settings):
    profile_name = os.environ.get("MEDIC_BURST_PROFILE", "ci")
    profile = PROFILES[profile_name]
    _ensure_beat_schedule()
    with (
        FakeSlack(per_channel_interval=1.0) as slack,
        FakePagerDuty(limit=profile["pd_limit"], window=profile["pd_window"]) as pagerduty,
    ):
        settings.SLACK_BOT_TOKEN = slack.token
        settings.SLACK_API_BASE_URL = slack.url + "/api"
        settings.SLACK_DEFAULT_CHANNEL = "C0DEFAULT"
        settings.PAGERDUTY_ROUTING_KEY = ROUTING_KEY
        settings.PAGERDUTY_EVENTS_URL = pagerduty.url
        for team in range(profile["channels"]):
            cfg.team_create(name=f"team-{team}", slack_channel_id=f"C{team:04d}", actor="t")
        long_ago = timezone.now() - timedelta(minutes=10)
        for n in range(SERVICES):
            service = service_create(
                heartbeat_name=f"burst-{n:03d}",
                alert_interval=1,
                team=f"team-{n % profile['channels']}",
                priority="p1",
            )
            heartbeat_record(service_ref=service.pk, at=long_ago)  # all overdue: one sweep
        env = {"MEDIC_RENOTIFY_MINUTES": "600", **profile["env"]}
        worker = start_worker(beat=True, **env)
        start_worker(beat=False, **env)  # a second worker shares the pace through Redis
        _wait(lambda: Alert.objects.count() == SERVICES, 60, "the alerts", worker)

        def all_done():
            return not Delivery.objects.exclude(status__in=["succeeded", "failed"]).exists()

        _wait(all_done, 600, "every delivery to finish", worker)
        time.sleep(2)  # anything still in flight would show up as a duplicate below
        slack_pages = Counter(
            _HEADLINE.search(m["text"]).group(1) for m in slack.accepted if "is down" in m["text"]
        )
        pd_pages = Counter(e["dedup_key"] for e in pagerduty.accepted)
        slack_429, pd_429 = slack.rate_limited, pagerduty.rate_limited

    assert Delivery.objects.count() == 2 * SERVICES
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    names = {f"burst-{n:03d}" for n in range(SERVICES)}
    assert set(slack_pages) == names and set(slack_pages.values()) == {1}
    assert len(slack.accepted) == SERVICES
    keys = set(Alert.objects.values_list("dedup_key", flat=True))
    assert set(pd_pages) == keys and set(pd_pages.values()) == {1}
    assert len(pagerduty.accepted) == SERVICES
    # (the fake refused, 429, any message less than a second after the previous in its channel)

    first = Alert.objects.aggregate(first=Min("opened_at"))["first"]

    def seconds(**filters) -> float:
        last = Delivery.objects.filter(**filters).aggregate(last=Max("completed_at"))["last"]
        return round((last - first).total_seconds(), 1)

    result = {
        "profile": profile_name,
        "services": SERVICES,
        "deliveries": 2 * SERVICES,
        "seconds_to_all_delivered": seconds(),
        "seconds_to_all_slack": seconds(channel="slack"),
        "seconds_to_all_pagerduty": seconds(channel="pagerduty"),
        "slack_429": slack_429,
        "pagerduty_429": pd_429,
        "attempts": sum(Delivery.objects.values_list("attempts", flat=True)),
    }
    print("burst:", json.dumps(result))
    if os.environ.get("MEDIC_BURST_RESULT"):
        with open(os.environ["MEDIC_BURST_RESULT"], "w") as fh:
            json.dump(result, fh)
