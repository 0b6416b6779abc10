"""Slack approvals against a fake Slack Web API: the request message (service, alert, playbook
and version, resolved steps, buttons), signed clicks from Slack (operator approves and the
message is updated in place; a viewer is told "not allowed"), forged / stale / replayed
requests refused with nothing decided, and a recovery that cancels the request and says so."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from prometheus_client import REGISTRY

from dashboard.roles import groups_ensure
from medic.events.consumers import consumer_dispatch
from medic.events.services import event_record
from remediation.approvals import slack as slack_module
from remediation.approvals.models import ApprovalRequest
from remediation.playbooks.models import ExecutionState
from tests.approvals.test_approvals import _parked
from tests.receivers import SlackFake

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test"


@pytest.fixture
def slack(settings, db):
    cache.clear()
    groups_ensure(Group)
    users = get_user_model().objects
    olga = users.create_user("olga", email="olga@example.com", password="x")
    olga.groups.add(Group.objects.get(name="operator"))
    vic = users.create_user("vic", email="vic@example.com", password="x")
    vic.groups.add(Group.objects.get(name="viewer"))
    with SlackFake(TOKEN) as fake:
        fake.users = {
            "U-OLGA": {
                "id": "U-OLGA",
                "is_email_confirmed": True,
                "profile": {"email": "olga@example.com"},
            },
            "U-VIC": {
                "id": "U-VIC",
                "is_email_confirmed": True,
                "profile": {"email": "vic@example.com"},
            },
            "U-FAKE": {
                "id": "U-FAKE",
                "is_email_confirmed": False,
                "profile": {"email": "olga@example.com"},
            },
        }
        settings.SLACK_BOT_TOKEN = TOKEN
        settings.SLACK_API_BASE_URL = fake.url + "/api"
        settings.SLACK_DEFAULT_CHANNEL = "C-APPROVALS"
        settings.SLACK_SIGNING_SECRET = SECRET
        yield fake


# Every real click carries its own trigger_id and action_ts, so two clicks in the same second are
# two requests, not a replay of one (a replayed request is the same bytes sent again).
_clicks = itertools.count(1)


def _click(fake, execution_id: int, user: str, action: str = "approve", *, ts=None, secret=SECRET):
    click = next(_clicks)
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "user": {"id": user},
        "channel": {"id": "C-APPROVALS"},
        "container": {"type": "message", "channel_id": "C-APPROVALS"},
        "trigger_id": f"{click}.2.3",
        "response_url": fake.url + "/respond",
        "actions": [
            {
                "type": "button",
                "action_id": f"medic_approval_{action}",
                "block_id": f"medic_approval_{execution_id}",
                "value": str(execution_id),
                "action_ts": f"{click}.1",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()) if ts is None else ts)
    signature = (
        "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    )
    return body, {"HTTP_X_SLACK_REQUEST_TIMESTAMP": ts, "HTTP_X_SLACK_SIGNATURE": signature}


def _send(body, headers):
    return Client().post(
        "/slack/events", body, content_type="application/x-www-form-urlencoded", **headers
    )


def _approval_posts(fake) -> list:
    """The approval messages (the alert's own notification goes to Slack too)."""
    return [
        c for c in fake.calls("chat.postMessage") if c.json()["text"].startswith("Approval needed")
    ]


def _text(call) -> str:
    return json.dumps(call.json()["blocks"])


def test_request_message_and_an_operator_approves(slack, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    (post,) = _approval_posts(slack)
    sent = post.json()
    assert sent["channel"] == "C-APPROVALS"
    text = _text(post)
    assert "*Service:* worker-1" in text and f"*Alert:* {execution.alert_id}" in text
    assert "restart-worker v1" in text and "no scored runs yet" in text
    assert '\\"service\\": \\"worker-1\\"' in text  # the step's body, variables resolved
    actions = sent["blocks"][-1]["elements"]
    assert [a["action_id"] for a in actions] == ["medic_approval_approve", "medic_approval_decline"]
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.slack_channel == "C-APPROVALS" and request.slack_ts

    with django_capture_on_commit_callbacks(execute=True):
        response = _send(*_click(slack, execution.pk, "U-OLGA"))
    assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING
    request.refresh_from_db()
    assert request.decided_by == "user:olga" and request.channel == "slack"
    (update,) = slack.calls("chat.update")
    assert update.json()["ts"] == request.slack_ts
    assert "Approved by user:olga (slack)" in _text(update)
    assert "medic_approval_approve" not in _text(update)


def test_viewers_and_unverified_emails_are_not_allowed(slack, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    for user in ("U-VIC", "U-FAKE", "U-NOBODY"):
        assert _send(*_click(slack, execution.pk, user)).status_code == 200
    replies = slack.calls("respond")
    assert len(replies) == 3
    assert all(r.json()["response_type"] == "ephemeral" for r in replies)
    assert all(r.json()["text"].startswith("Not allowed") for r in replies)
    execution.refresh_from_db()
    assert execution.state == ExecutionState.PENDING_APPROVAL
    assert slack.calls("chat.update") == []


def test_forged_stale_and_replayed_clicks_are_refused(slack, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked("timeout:10m")
    forged = _send(*_click(slack, execution.pk, "U-OLGA", "decline", secret="wrong"))
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    stale = _send(*_click(slack, execution.pk, "U-OLGA", ts=int(time.time()) - 600))
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "stale"
    garbage = _send("payload=x", {"HTTP_X_SLACK_REQUEST_TIMESTAMP": "nope"})
    assert garbage.status_code == 401
    body, headers = _click(slack, execution.pk, "U-OLGA", "decline")
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(body, headers).status_code == 200
    replay = _send(body, headers)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed"
    execution.refresh_from_db()
    assert execution.state == ExecutionState.CANCELLED
    assert ApprovalRequest.objects.get(execution=execution).decided_by == "user:olga"
    assert len(slack.calls("chat.update")) == 1


def test_second_click_is_told_who_decided(slack, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
        _send(*_click(slack, execution.pk, "U-OLGA", "decline"))
    get_user_model().objects.filter(username="vic").first().groups.add(
        Group.objects.get(name="admin")
    )
    assert _send(*_click(slack, execution.pk, "U-VIC")).status_code == 200
    (reply,) = slack.calls("respond")
    assert "Already declined by user:olga" in reply.json()["text"]
    execution.refresh_from_db()
    assert execution.state == ExecutionState.CANCELLED


def test_recovery_cancels_and_the_message_says_so(slack, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            event_record(kind="service.recovered", service_id=execution.service_id)
        consumer_dispatch("remediation")
    (update,) = slack.calls("chat.update")
    assert "Cancelled: recovered on its own" in _text(update)
    execution.refresh_from_db()
    assert execution.state == ExecutionState.CANCELLED


def _update_failures(error: str) -> float:
    return (
        REGISTRY.get_sample_value("medic_approval_slack_update_failures_total", {"error": error})
        or 0
    )


def test_an_update_slack_refuses_for_a_while_is_retried_with_the_current_state(
    slack, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    request = ApprovalRequest.objects.get(execution=execution)
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(*_click(slack, execution.pk, "U-OLGA")).status_code == 200
    assert len(slack.calls("chat.update")) == 1

    slack.fail_next("chat.update", "ratelimited", 429, **{"Retry-After": "7"})
    slack.fail_next("chat.update", "service_unavailable", 503)
    first = slack_module.slack_update(request_id=request.pk, attempt=1)
    assert first.retry_in == 7 and first.error == "ratelimited"  # Slack's Retry-After
    second = slack_module.slack_update(request_id=request.pk, attempt=2)
    assert second.retry_in is not None and second.error == "service_unavailable"
    third = slack_module.slack_update(request_id=request.pk, attempt=3)
    assert third.posted and not third.error
    updates = slack.calls("chat.update")
    assert len(updates) == 4  # each attempt asked Slack, and carried the decision
    assert all("Approved by user:olga (slack)" in _text(u) for u in updates)


def test_an_update_slack_cannot_apply_is_counted_and_not_retried(
    slack, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    request = ApprovalRequest.objects.get(execution=execution)
    ApprovalRequest.objects.filter(pk=request.pk).update(slack_ts="1699999999.000001")  # deleted
    before = _update_failures("message_not_found")
    result = slack_module.slack_update(request_id=request.pk, attempt=1)
    assert result.retry_in is None and result.error == "message_not_found"
    assert _update_failures("message_not_found") == before + 1
    slack.fail_next("chat.update", "ratelimited", 429, **{"Retry-After": "1"})
    ApprovalRequest.objects.filter(pk=request.pk).update(slack_ts=request.slack_ts)
    last = slack_module.slack_update(request_id=request.pk, attempt=slack_module.POST_ATTEMPTS)
    attempts = slack_module.POST_ATTEMPTS
    assert last.retry_in is None and last.error == f"ratelimited (after {attempts} attempts)"
    assert _update_failures("ratelimited") >= 1
