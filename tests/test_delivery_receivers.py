"""Deliveries against receivers that answer like the real Slack, PagerDuty and webhook endpoints:
every case in which a page used to be lost or mis-sent (docs/alert-routing.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from alerting import config as cfg
from alerting.delivery import delivery_attempt, retry_delay
from alerting.models import Alert, AlertReason, Delivery, NotificationTarget
from alerting.services import alert_open, alert_resolve_for_service
from alerting.transports import retry_after_seconds
from heartbeats.services import service_create
from tests.fakes import FakePagerDuty, FakeServer, FakeSlack, Reply
from tests.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)
ROUTING_KEY = "R0UTINGKEY000000000000000000abcd"


@pytest.fixture
def fake_slack(settings):
    with FakeSlack(per_channel_interval=0) as fake:
        settings.SLACK_BOT_TOKEN = fake.token
        settings.SLACK_API_BASE_URL = fake.url + "/api"
        settings.SLACK_DEFAULT_CHANNEL = "C0DEFAULT"
        yield fake


@pytest.fixture
def fake_pd(settings):
    with FakePagerDuty() as fake:
        settings.PAGERDUTY_ROUTING_KEY = ROUTING_KEY
        settings.PAGERDUTY_EVENTS_URL = fake.url
        yield fake


def _down(service):
    sweep(now=service.next_deadline_at + timedelta(seconds=1))


def _open(service, **details) -> Alert:
    with transaction.atomic():
        return alert_open(service=service, reason=AlertReason.JOB_FAILED, details=details)


# --- 1. Resolves go where the trigger went; one dedup key per alert ----------------------------


def test_resolve_reaches_the_pagerduty_that_the_trigger_paged_after_rules_changed(
    fake_slack, fake_pd
):
    """The 23:00 rule paged PagerDuty; at 09:30 the rules send to Slack only. The resolve still
    goes to PagerDuty (and not to a Slack channel that never heard of the incident)."""
    pd = cfg.target_create(name="pd", kind="pagerduty", config={}, secrets={}, actor="t")[0]
    slack = cfg.target_create(name="slack", kind="slack", config={}, secrets={}, actor="t")[0]
    night = cfg.rule_create(name="night", position=10, targets=[pd], actor="t")
    service = service_create(heartbeat_name="ledger", alert_interval=5)
    _down(service)
    assert [e["event_action"] for e in fake_pd.accepted] == ["trigger"]

    cfg.rule_update(ref=night.pk, enabled=False, actor="t")  # day: Slack only
    cfg.rule_create(name="day", position=20, targets=[slack], actor="t")
    alert_resolve_for_service(service_id=service.pk)

    assert [e["event_action"] for e in fake_pd.accepted] == ["trigger", "resolve"]
    assert fake_pd.accepted[1]["dedup_key"] == fake_pd.accepted[0]["dedup_key"]
    assert fake_pd.open_incidents() == []
    assert fake_slack.accepted == []
    resolve = Delivery.objects.get(event="resolve")
    assert resolve.notification_target == pd and resolve.status == "succeeded"


def test_renotifications_go_to_the_trigger_targets_except_pagerduty(fake_slack, fake_pd):
    slack = cfg.target_create(name="slack", kind="slack", config={}, secrets={}, actor="t")[0]
    pd = cfg.target_create(name="pd", kind="pagerduty", config={}, secrets={}, actor="t")[0]
    rule = cfg.rule_create(name="both", targets=[slack, pd], actor="t")
    service = service_create(heartbeat_name="ledger", alert_interval=5)
    t0 = service.next_deadline_at + timedelta(seconds=1)
    sweep(now=t0)
    cfg.rule_update(ref=rule.pk, enabled=False, actor="t")  # the rules now route nowhere
    sweep(now=t0 + timedelta(minutes=5, seconds=1))
    texts = [m["text"] for m in fake_slack.accepted]
    assert len(texts) == 2 and "is still down" in texts[1]
    assert [e["event_action"] for e in fake_pd.accepted] == ["trigger"]


def test_each_outage_is_its_own_pagerduty_incident(fake_pd):
    service = service_create(heartbeat_name="ledger", alert_interval=5)
    first = _open(service)
    alert_resolve_for_service(service_id=service.pk)
    second = _open(service)
    assert first.dedup_key != second.dedup_key
    keys = [e["dedup_key"] for e in fake_pd.accepted]
    assert keys == [first.dedup_key, first.dedup_key, second.dedup_key]
    assert fake_pd.open_incidents() == [second.dedup_key]


def test_a_250_character_name_gives_a_dedup_key_pagerduty_accepts(fake_pd):
    service = service_create(heartbeat_name="n" * 250, alert_interval=5)
    alert = _open(service)
    assert len(alert.dedup_key) <= 255
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded", delivery.error
    assert fake_pd.accepted[0]["dedup_key"] == alert.dedup_key


def test_an_imported_key_over_255_characters_is_shortened_stably(fake_pd):
    service = service_create(heartbeat_name="legacy", alert_interval=5)
    alert = _open(service)
    Alert.objects.filter(pk=alert.pk).update(dedup_key="k" * 300)
    alert_resolve_for_service(service_id=service.pk)
    sent = fake_pd.accepted[-1]["dedup_key"]
    assert len(sent) == 255 and sent.startswith("k" * 200)
    assert Delivery.objects.get(event="resolve").status == "succeeded"


def test_a_resolve_waits_for_an_unfinished_trigger_to_the_same_target(fake_pd, settings):
    """PagerDuty must see the trigger before the resolve, or the incident stays open."""
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [600]
    fake_pd.failures.append(Reply(500, b'{"status":"error"}'))
    service = service_create(heartbeat_name="ledger", alert_interval=5)
    _open(service)
    trigger = Delivery.objects.get(event="trigger")
    assert trigger.status == "retrying"
    alert_resolve_for_service(service_id=service.pk)
    resolve = Delivery.objects.get(event="resolve")
    assert resolve.status == "pending" and resolve.attempts == 0
    assert resolve.next_attempt_at > trigger.next_attempt_at
    assert [e["event_action"] for e in fake_pd.accepted] == []


# --- 2. Redirects and answers that are not the service's own ---------------------------------


def _webhook(url: str, name: str = "hook") -> NotificationTarget:
    target, _ = cfg.target_create(
        name=name, kind="webhook", config={"url": url}, secrets={}, actor="t"
    )
    cfg.rule_create(name=f"to-{name}", targets=[target], actor="t")
    return target


def test_a_redirecting_webhook_is_a_failure_not_a_success(settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0, 0]
    with FakeServer(lambda r: Reply(302, headers={"Location": "https://elsewhere/"})) as hook:
        _webhook(hook.url + "/moved")
        _down(service_create(heartbeat_name="ledger", alert_interval=5))
        assert len(hook.requests) == 1  # permanent: the URL is wrong until someone fixes it
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.response_code == 302
    assert "redirect to https://elsewhere/" in delivery.error


def test_a_redirecting_pagerduty_url_is_a_failure(settings):
    with FakeServer(lambda r: Reply(301, headers={"Location": "https://x/v2/enqueue"})) as fake:
        settings.PAGERDUTY_ROUTING_KEY = ROUTING_KEY
        settings.PAGERDUTY_EVENTS_URL = fake.url
        _down(service_create(heartbeat_name="ledger", alert_interval=5))
    assert Delivery.objects.get().status == "failed"


PROXY_PAGE = Reply(200, b"<html><body>Please sign in</body></html>", content_type="text/html")


@pytest.mark.parametrize("kind", ["slack", "pagerduty", "webhook"])
def test_an_html_200_from_a_proxy_is_retried_then_failed(kind, settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0, 0]
    with FakeServer(lambda r: PROXY_PAGE) as proxy:
        if kind == "slack":
            settings.SLACK_BOT_TOKEN, settings.SLACK_DEFAULT_CHANNEL = "xoxb-t", "C1"
            settings.SLACK_API_BASE_URL = proxy.url + "/api"
        elif kind == "pagerduty":
            settings.PAGERDUTY_ROUTING_KEY = ROUTING_KEY
            settings.PAGERDUTY_EVENTS_URL = proxy.url
        else:
            _webhook(proxy.url + "/hook")
        _down(service_create(heartbeat_name="ledger", alert_interval=5))
        assert len(proxy.requests) == 3
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 3
    assert "text/html" in delivery.error and "not" in delivery.error


# --- 3. Slack echoes the message: a long reply is read whole and parsed ------------------------


def test_a_slack_post_with_job_output_is_sent_once_and_succeeds(fake_slack):
    service = service_create(heartbeat_name="backup", alert_interval=5)
    _open(service, exit_code=2, run_id="r-1", output_tail="line of output\n" * 400)
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 1, delivery.error
    assert len(fake_slack.requests) == 1
    assert fake_slack.reply_sizes[0] > 6000  # Slack's echo of the message
    assert delivery.attempt_rows.get().response_body.startswith('{"ok": true')


# --- 4. Slack's errors: permanent, transient, rate limited ---------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (200, "channel_not_found", "failed"),
        (200, "invalid_blocks", "failed"),
        (200, "request_timeout", "succeeded"),
        (200, "team_added_to_org", "succeeded"),
        (200, "internal_error", "succeeded"),
        (408, "request_timeout", "succeeded"),
        (503, "service_unavailable", "succeeded"),
    ],
)
def test_slack_errors_are_permanent_or_transient_as_documented(
    fake_slack, settings, status, error, expected
):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0]
    fake_slack.fail_next(error, status=status)
    _down(service_create(heartbeat_name="ledger", alert_interval=5))
    delivery = Delivery.objects.get()
    assert delivery.status == expected
    assert delivery.attempts == (1 if expected == "failed" else 2)


def test_slack_429_honours_retry_after_and_holds_the_channel(fake_slack, settings):
    settings.MEDIC_SLACK_PACE_PER_SECOND = 1.0
    fake_slack.fail_next("ratelimited", status=429, **{"Retry-After": "7"})
    service = service_create(heartbeat_name="ledger", alert_interval=5)
    _open(service)
    delivery = Delivery.objects.get()
    attempt = delivery.attempt_rows.get()
    assert delivery.status == "retrying" and delivery.failures == 0  # not a step of the schedule
    wait = (delivery.next_attempt_at - attempt.started_at).total_seconds()
    assert 7 <= wait <= 8 + attempt.duration_ms / 1000 + 1
    # every other message to the channel waits too: its slot is after the Retry-After
    other = service_create(heartbeat_name="other", alert_interval=5)
    _open(other)
    queued = Delivery.objects.get(alert__service=other)
    assert queued.status == "pending" and queued.attempts == 0
    assert queued.slot_at >= attempt.started_at + timedelta(seconds=6)
    assert len(fake_slack.accepted) == 0


def test_pagerduty_429_without_retry_after_backs_off_on_the_schedule(fake_pd, settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [10, 30, 90]
    fake_pd.failures.append(Reply(429, b'{"status":"throttle exceeded"}'))
    _open(service_create(heartbeat_name="ledger", alert_interval=5))
    delivery = Delivery.objects.get()
    attempt = delivery.attempt_rows.get()
    wait = (delivery.next_attempt_at - attempt.started_at).total_seconds()
    assert delivery.status == "retrying" and 10 <= wait <= 15 + 1


def test_pagerduty_400_names_the_documented_errors(fake_pd):
    fake_pd.failures.append(
        Reply(
            400,
            json.dumps(
                {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": ["'links[0].href' is invalid"],
                }
            ).encode(),
        )
    )
    _open(service_create(heartbeat_name="ledger", alert_interval=5))
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "Event object is invalid: 'links[0].href' is invalid" in delivery.error


def test_retry_schedule_is_jittered_within_its_documented_bounds(settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [10, 30, 90, 300, 900]
    for step, base in enumerate(settings.MEDIC_DELIVERY_RETRY_DELAYS, start=1):
        samples = [retry_delay(step) for _ in range(200)]
        assert all(base <= s <= base * 1.5 for s in samples)
        assert len({round(s, 3) for s in samples}) > 100  # spread, not one instant


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Sat, 05 Dec 2026 12:00:30 GMT", now=now) == 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("999999") == 3600


# --- 5. Slack payload limits and escaping ---------------------------------------------------------


def test_long_names_and_runbook_fit_slack_sections(fake_slack):
    service = service_create(
        heartbeat_name="h" * 255,
        service_name="S" * 255,
        team="t" * 100,
        alert_interval=5,
        runbook="See https://wiki/" + "r" * 983,
    )
    _open(service, exit_code=1, output_tail="x" * 20000)
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded", delivery.error
    message = fake_slack.accepted[0]
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert all(len(s) <= 3000 for s in sections)
    assert sections[0].startswith(":rotating_light: *" + "S" * 100)
    assert sections[2].rstrip("`\n").endswith("x" * 100)  # the end of the output is kept


def test_job_output_cannot_ping_the_channel_or_make_links(fake_slack):
    service = service_create(heartbeat_name="etl <!here>", alert_interval=5, team="a&b")
    _open(service, exit_code=1, output_tail="done <!channel> see <http://evil|click> & more")
    message = fake_slack.accepted[0]
    everything = message["text"] + json.dumps(message["blocks"])
    assert "<!channel>" not in everything and "<!here>" not in everything
    assert "<http://evil|click>" not in everything
    assert "&lt;!channel&gt;" in message["text"] and "&lt;http://evil|click&gt;" in message["text"]
    assert "a&amp;b" in message["text"] and "&amp; more" in message["text"]
    # Medic's own link to the alert stays a link
    assert f"|Alert {Delivery.objects.get().alert_id}>" in message["text"]


# --- 6. Webhook signatures: Standard Webhooks, id and timestamp signed, rotation ---------------


def _verifier(*secrets: str):
    """A receiver that verifies with the Standard Webhooks library and answers 401 otherwise."""

    def handle(request):
        for secret in secrets:
            try:
                Webhook(secret).verify(request.body, request.headers)
            except WebhookVerificationError:
                return Reply(401, b'{"error":"bad signature"}')
        return Reply(204)

    return handle


def test_a_standard_webhooks_receiver_verifies_medic_deliveries():
    with FakeServer(lambda r: Reply(204)) as hook:
        target, secret = cfg.target_create(
            name="hook", kind="webhook", config={"url": hook.url + "/h"}, secrets={}, actor="t"
        )
        assert secret.startswith("whsec_")
        hook.handle = _verifier(secret)
        cfg.rule_create(name="r", targets=[target], actor="t")
        _down(service_create(heartbeat_name="ledger", alert_interval=5))
        request = hook.wait_for(1)[0]
    assert Delivery.objects.get().status == "succeeded"
    delivery = Delivery.objects.get()
    assert request.headers["webhook-id"] == f"msg_medic_{delivery.pk}_trigger"
    # relabelling a trigger as a resolve breaks the signature: the event is in the signed id
    relabelled = {**request.headers, "webhook-id": f"msg_medic_{delivery.pk}_resolve"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body, relabelled)


def test_rotation_signs_with_both_secrets_until_the_window_ends(settings):
    with FakeServer(lambda r: Reply(204)) as hook:
        target, old = cfg.target_create(
            name="hook", kind="webhook", config={"url": hook.url + "/h"}, secrets={}, actor="t"
        )
        cfg.rule_create(name="r", targets=[target], actor="t")
        new = cfg.new_signing_secret()
        cfg.target_update(ref=target.pk, secrets={"signing_secret": new}, actor="t")
        hook.handle = _verifier(old, new)  # a receiver on either secret accepts
        service = service_create(heartbeat_name="ledger", alert_interval=5)
        _open(service)
        signatures = hook.wait_for(1)[0].headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        assert Delivery.objects.get().status == "succeeded"

        target.refresh_from_db()
        until = datetime.fromisoformat(target.config["previous_signing_secret_until"])
        assert timedelta(hours=23) < until - timezone.now() <= timedelta(hours=24)
        # after the window only the new secret signs
        target.config["previous_signing_secret_until"] = (
            timezone.now() - timedelta(seconds=1)
        ).isoformat()
        target.save(update_fields=["config"])
        hook.handle = _verifier(new)
        alert_resolve_for_service(service_id=service.pk)
        resolve = hook.wait_for(2)[1]
    assert len(resolve.headers["webhook-signature"].split(" ")) == 1
    assert Delivery.objects.get(event="resolve").status == "succeeded"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(resolve.body, resolve.headers)


def test_a_secret_generated_before_standard_base64_still_verifies_translated():
    legacy = "whsec_" + "ab-_" * 10 + "xyz"
    from alerting.transports import signing_key

    translated = "whsec_" + legacy[6:].replace("-", "+").replace("_", "/")
    assert signing_key(legacy) == Webhook(translated)._whsecret


# --- 7. Replies are read streamed, with a cap; slow receivers time out -------------------------


def test_an_endless_reply_is_cut_at_the_cap_and_the_delivery_recorded(settings):
    settings.MEDIC_NOTIFY_MAX_REPLY_BYTES = 64 * 1024

    def endless():
        while True:
            yield b"x" * 8192

    with FakeServer(lambda r: Reply(200, endless, content_type="text/plain")) as hook:
        _webhook(hook.url + "/h")
        _down(service_create(heartbeat_name="ledger", alert_interval=5))
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded"
    assert delivery.attempt_rows.get().response_body == "x" * 2000


def test_a_slow_webhook_times_out_and_is_retried(settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [0]
    replies = iter([Reply(200, delay=2.0), Reply(204)])
    with FakeServer(lambda r: next(replies)) as hook:
        target = _webhook(hook.url + "/h")
        target.config["timeout_seconds"] = 0.5
        target.save(update_fields=["config"])
        _down(service_create(heartbeat_name="ledger", alert_interval=5))
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    assert delivery.attempt_rows.first().error == "timed out after 0.5s"


def test_a_retry_is_not_sent_before_its_time(fake_slack, settings):
    settings.MEDIC_DELIVERY_RETRY_DELAYS = [600]
    fake_slack.fail_next("internal_error")
    _open(service_create(heartbeat_name="ledger", alert_interval=5))
    delivery = Delivery.objects.get()
    assert delivery_attempt(delivery_id=delivery.pk) is None
    assert len(fake_slack.requests) == 1


# --- Pacing: one sending slot after another per destination, shared by every worker -----------


@pytest.mark.parametrize("store", ["database", "redis"])
def test_pace_hands_out_consecutive_slots_and_holds_after_a_429(store, settings):
    import os
    import uuid

    from alerting import pacing

    if store == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("no Redis configured")
        settings.MEDIC_DELIVERY_PACE_REDIS_URL = os.environ["REDIS_URL"]
    else:
        settings.MEDIC_DELIVERY_PACE_REDIS_URL = ""
    key = f"slack:test:{uuid.uuid4().hex}"
    # What holds at any instant: slot n is n seconds after the first, less the time the
    # reservations themselves took (well under a second), and never negative.
    waits = [pacing.reserve(key, per_second=1.0, burst=1) for _ in range(5)]
    assert waits[0] == 0.0
    for n, wait in enumerate(waits[1:], start=1):
        assert n - 0.9 < wait <= n
    burst_key = f"pagerduty:test:{uuid.uuid4().hex}"
    burst = [pacing.reserve(burst_key, per_second=2.0, burst=10) for _ in range(12)]
    assert burst[:10] == [0.0] * 10 and 0 < burst[10] <= 0.5 and burst[11] > burst[10]
    # admit: a send now is counted; one that would come too early is told to wait, not counted
    sent = f"slack:test:{uuid.uuid4().hex}"
    assert pacing.admit(sent, per_second=1.0, burst=1) == 0.0
    refused = [pacing.admit(sent, per_second=1.0, burst=1) for _ in range(3)]
    assert all(0.1 < wait <= 1.0 for wait in refused)
    held = f"slack:test:{uuid.uuid4().hex}"
    pacing.hold(held, 30, per_second=1.0, burst=1)
    assert 29 < pacing.reserve(held, per_second=1.0, burst=1) <= 30
    assert 29 < pacing.admit(held, per_second=1.0, burst=1) <= 30


def test_rotating_through_the_api_shows_until_when_both_secrets_sign(admin):
    created = admin.post(
        "/v2/notification-targets",
        {"name": "hook", "kind": "webhook", "url": "https://example.invalid/h"},
    ).json()
    assert created["signing_secret"].startswith("whsec_")
    assert len(Webhook(created["signing_secret"])._whsecret) == 32
    response = admin.patch(
        "/v2/notification-targets/hook", {"signing_secret": cfg.new_signing_secret()}
    )
    assert response.status_code == 200
    body = response.json()
    assert "previous_signing_secret" in body["secret_fields"]
    until = datetime.fromisoformat(body["previous_signing_secret_until"])
    assert timedelta(hours=23) < until - timezone.now() <= timedelta(hours=24)
    refused = admin.patch(
        "/v2/notification-targets/hook", {"headers": {"webhook-signature": "v1,forged"}}
    )
    assert refused.status_code == 422
