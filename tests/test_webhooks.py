"""Webhook deliveries (SRE-9) and notify-until-success failover (SRE-10) to local receivers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import timedelta

import pytest
from standardwebhooks import Webhook

from alerting import config as cfg
from alerting.models import Delivery
from heartbeats.services import heartbeat_record, service_create
from tests.receivers import Receiver
from tests.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver():
    with Receiver(default_status=204, default_body=b"") as r:
        yield r


def _hook(receiver, name="hook", **config):
    target, secret = cfg.target_create(
        name=name,
        kind="webhook",
        config={"url": receiver.url + "/medic", **config},
        secrets={"secret_headers": {"Authorization": "Bearer t0ken"}},
        actor="t",
    )
    return target, secret


def _down(service):
    sweep(now=service.next_deadline_at + timedelta(seconds=1))


def test_webhook_body_headers_and_verifiable_signature(receiver, settings):
    target, secret = _hook(
        receiver,
        headers={"X-Team": "payments"},
        body_template={
            "text": "${service} is ${status} (${priority})",
            "id": "${alert_id}",
            "resolved": "${resolved_at}",
        },
    )
    cfg.rule_create(name="r", targets=[target], actor="t")
    service = service_create(heartbeat_name="ledger", alert_interval=5, priority="p2")
    _down(service)
    request = receiver.wait_for(1)[0]
    assert request.method == "POST" and request.path == "/medic"
    body = request.json()
    delivery = Delivery.objects.get()
    assert body == {"text": "ledger is down (p2)", "id": delivery.alert_id, "resolved": None}
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.headers["X-Team"] == "payments"
    assert request.headers["X-Medic-Event"] == "trigger"
    assert request.headers["X-Medic-Delivery"] == str(delivery.pk)
    # X-Medic-Signature: t=<t>,v1=<hex HMAC(key, "<webhook-id>.<t>." + body)>, the key being
    # the base64 after whsec_ (docs/alert-routing.md#signatures)
    parts = dict(p.split("=", 1) for p in request.headers["X-Medic-Signature"].split(","))
    msg_id = request.headers["webhook-id"]
    assert msg_id == f"msg_medic_{delivery.pk}_trigger"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{parts['t']}.".encode() + request.body
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - time.time()) < 60
    assert request.headers["webhook-timestamp"] == parts["t"]
    # ...and the same signature verifies with the Standard Webhooks library
    Webhook(secret).verify(request.body, request.headers)
    assert delivery.status == "succeeded" and delivery.response_code == 204

    heartbeat_record(service_ref=service.pk)
    sweep()
    resolved = receiver.wait_for(2)[1]
    assert resolved.headers["X-Medic-Event"] == "resolve"
    assert resolved.json()["text"] == "ledger is up (p2)"


def test_default_body_without_template(receiver):
    target, _ = _hook(receiver)
    cfg.rule_create(name="r", targets=[target], actor="t")
    service = service_create(heartbeat_name="ledger", alert_interval=5, runbook="https://rb")
    _down(service)
    body = receiver.wait_for(1)[0].json()
    assert (
        body["service"] == "ledger" and body["status"] == "down" and body["runbook"] == "https://rb"
    )
    assert body["dashboard_link"].endswith(f"/ui/alerts/{body['alert_id']}")


def test_webhook_4xx_is_final_and_5xx_is_retried(receiver, settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0, 0, 0]
    target, _ = _hook(receiver)
    cfg.rule_create(name="r", targets=[target], actor="t")
    receiver.respond(500).respond(429).respond(422, b'{"error":"bad schema"}')
    _down(service_create(heartbeat_name="ledger", alert_interval=5))
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 3
    assert list(delivery.attempt_rows.values_list("status_code", flat=True)) == [500, 429, 422]


def test_until_success_uses_the_second_target_only_after_the_first_failed_for_good(settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0, 0]
    with Receiver(default_status=503) as first, Receiver(default_status=200) as second:
        a, _ = _hook(first, name="first")
        b, _ = _hook(second, name="second")
        cfg.rule_create(name="failover", mode="until_success", targets=[a, b], actor="t")
        _down(service_create(heartbeat_name="ledger", alert_interval=5))
        second.wait_for(1)
        assert len(first.requests) == 3  # first try + 2 retries before failing over
        assert second.requests[0].at >= first.requests[-1].at
    rows = {d.target.split("/")[2]: d for d in Delivery.objects.all()}
    statuses = sorted(d.status for d in rows.values())
    assert statuses == ["failed", "succeeded"]


def test_until_success_skips_the_rest_after_a_success(settings):
    with Receiver(default_status=200) as first, Receiver(default_status=200) as second:
        a, _ = _hook(first, name="first")
        b, _ = _hook(second, name="second")
        cfg.rule_create(name="failover", mode="until_success", targets=[a, b], actor="t")
        _down(service_create(heartbeat_name="ledger", alert_interval=5))
        first.wait_for(1)
        assert second.requests == []
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["skipped", "succeeded"]


def test_default_body_carries_every_template_variable(receiver):
    from alerting.transports import TEMPLATE_VARIABLES

    target, _ = _hook(receiver)
    cfg.rule_create(name="r", targets=[target], actor="t")
    service = service_create(heartbeat_name="ledger", alert_interval=5)
    _down(service)
    request = receiver.wait_for(1)[0]
    body = request.json()
    assert sorted(body) == sorted(TEMPLATE_VARIABLES)
    assert body["service_id"] == service.pk
    assert body["reason"] == "never_reported"
    assert body["notify_count"] == 1
    assert body["delivery_id"] == int(request.headers["X-Medic-Delivery"])
    assert body["exit_code"] is None and body["run_id"] is None
