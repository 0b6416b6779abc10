"""Delivery attempts: one row per try, retries on transient errors only, outcomes recorded."""

from __future__ import annotations

import pytest

from alerting.models import Delivery
from heartbeats.services import service_create
from tests.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def down_service():
    service = service_create(heartbeat_name="api", alert_interval=1)
    return service


def _go_down(service):
    from datetime import timedelta

    sweep(now=service.next_deadline_at + timedelta(seconds=1))


def test_slack_5xx_twice_then_success_makes_three_attempts(slack, down_service, settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0, 0, 0]
    slack.respond(503).respond(500)
    _go_down(down_service)
    slack.wait_for(3)
    delivery = Delivery.objects.get(channel="slack")
    assert delivery.status == "succeeded" and delivery.attempts == 3
    codes = list(delivery.attempt_rows.values_list("status_code", flat=True))
    assert codes == [503, 500, 200]


def test_pagerduty_400_is_not_retried(pagerduty, down_service):
    pagerduty.respond(400, b'{"status":"invalid event","errors":["bad routing key"]}')
    _go_down(down_service)
    delivery = Delivery.objects.get(channel="pagerduty")
    assert delivery.status == "failed" and delivery.attempts == 1
    attempt = delivery.attempt_rows.get()
    assert attempt.status_code == 400 and "bad routing key" in attempt.response_body


def test_slack_api_refusal_is_permanent(slack, down_service):
    slack.respond(200, b'{"ok": false, "error": "channel_not_found"}')
    _go_down(down_service)
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.error == "Slack error: channel_not_found"


def test_unreachable_receiver_is_retried_then_failed(down_service, settings):
    settings.SLACK_BOT_TOKEN = "xoxb"
    settings.SLACK_DEFAULT_CHANNEL = "C1"
    settings.SLACK_API_BASE_URL = "http://127.0.0.1:9/api"  # discard port: refused
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0, 0]
    _go_down(down_service)
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 3
    assert all(
        "connection failed" in e for e in delivery.attempt_rows.values_list("error", flat=True)
    )


def test_deliveries_api_shows_every_attempt(slack, down_service, reader, settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0]
    slack.respond(502)
    _go_down(down_service)
    alert_id = Delivery.objects.get().alert_id
    body = reader.get(f"/v2/alerts/{alert_id}/deliveries").json()["results"]
    assert len(body) == 1
    assert [a["status_code"] for a in body[0]["attempt_log"]] == [502, 200]
    assert body[0]["status"] == "succeeded"
    assert reader.get(f"/v2/alerts/{alert_id}").json()["state"] == "open"
    assert reader.get("/v2/alerts", {"state": "open"}).json()["results"][0]["id"] == alert_id
    assert reader.get("/v2/alerts/999999").status_code == 404
