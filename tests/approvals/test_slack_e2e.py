"""Real processes: a Celery worker with beat and a gunicorn web, a fake Slack and a webhook
receiver. A service stops beating, the playbook (approval: required) parks its run, the worker
posts the approval message; a signed Approve click to the real web runs the playbook and the
message is updated in place. A second service that recovers before anyone clicks is cancelled
as "recovered on its own" and its message says so."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from dashboard.roles import groups_ensure
from heartbeats.services import heartbeat_record, service_create
from remediation.approvals.models import ApprovalRequest
from remediation.playbooks import services
from remediation.playbooks.models import Execution, ExecutionState
from tests.playbooks.conftest import playbook_yaml
from tests.playbooks.test_durability_e2e import FAST, _broker, _ensure_beat_schedule, _wait  # noqa: F401
from tests.receivers import Receiver, SlackFake

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]
SECRET = "e2e-signing-secret"


def _click(web: str, response_url: str, execution_id: int) -> int:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "user": {"id": "U-OLGA"},
        "response_url": response_url,
        "trigger_id": "1.2.3",
        "actions": [
            {
                "type": "button",
                "action_id": "medic_approval_approve",
                "block_id": f"medic_approval_{execution_id}",
                "value": str(execution_id),
                "action_ts": "1.1",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()))
    signature = (
        "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    )
    request = urllib.request.Request(
        web + "/slack/events",
        body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
    )
    try:
        return urllib.request.urlopen(request, timeout=20).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_slack_approval_and_recovery_with_real_processes(settings, start_worker, start_web):
    _ensure_beat_schedule()
    groups_ensure(Group)
    olga = get_user_model().objects.create_user("olga", email="olga@example.com", password="x")
    olga.groups.add(Group.objects.get(name="operator"))
    with SlackFake("xoxb-e2e") as fake, Receiver() as hooks:
        fake.users = {
            "U-OLGA": {
                "id": "U-OLGA",
                "is_email_confirmed": True,
                "profile": {"email": "olga@example.com"},
            }
        }
        settings.SLACK_BOT_TOKEN = "xoxb-e2e"
        settings.SLACK_API_BASE_URL = fake.url + "/api"
        settings.SLACK_DEFAULT_CHANNEL = "C-APPROVALS"
        services.playbook_save(
            document=playbook_yaml(
                "restart-flow", hooks.url, pattern="flow-*", extra_trigger="approval: required"
            ),
            actor="tests",
        )
        one = service_create(heartbeat_name="flow-one", alert_interval=0.05, priority="p2")
        two = service_create(heartbeat_name="flow-two", alert_interval=0.05, priority="p2")
        heartbeat_record(service_ref=one.pk)
        heartbeat_record(service_ref=two.pk)
        worker = start_worker(beat=True, SLACK_SIGNING_SECRET=SECRET, **FAST)
        web = start_web(SLACK_SIGNING_SECRET=SECRET)

        requests = _wait(
            lambda: (
                ApprovalRequest.objects.filter(slack_ts__gt="").count() == 2
                and list(ApprovalRequest.objects.select_related("execution"))
            ),
            120,
            "both approval messages",
            [worker],
        )
        first = next(r for r in requests if r.execution.service_name == "flow-one")
        second = next(r for r in requests if r.execution.service_name == "flow-two")
        assert first.execution.state == ExecutionState.PENDING_APPROVAL
        posted = [
            c.json()
            for c in fake.calls("chat.postMessage")
            if c.json()["text"].startswith("Approval needed")
        ]
        assert {p["text"] for p in posted} == {
            "Approval needed: restart-flow on flow-one",
            "Approval needed: restart-flow on flow-two",
        }

        # flow-two comes back before anyone clicks: cancelled, and its message says so.
        heartbeat_record(service_ref=two.pk)
        _wait(
            lambda: any(
                c.json()["ts"] == second.slack_ts and "recovered on its own" in json.dumps(c.json())
                for c in fake.calls("chat.update")
            ),
            90,
            "the recovered request's message to be updated",
            [worker],
        )
        assert Execution.objects.get(pk=second.execution_id).state == ExecutionState.CANCELLED

        # flow-one: Olga approves in Slack; the playbook runs its restart webhook.
        assert _click(web, fake.url + "/respond", first.execution_id) == 200
        hooks.wait_for(1, timeout=60)
        assert hooks.requests[0].json()["service"] == "flow-one"
        _wait(
            lambda: any(
                c.json()["ts"] == first.slack_ts and "Approved by user:olga" in json.dumps(c.json())
                for c in fake.calls("chat.update")
            ),
            60,
            "the approved request's message to be updated",
            [worker],
        )
        first.refresh_from_db()
        assert first.state == "approved" and first.channel == "slack"
        assert fake.calls("respond") == []  # no ephemeral refusal was needed
