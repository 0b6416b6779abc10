"""Inbound hooks with real processes: an operator creates an Alertmanager hook over the API of
a real web process (gunicorn), Alertmanager's grouped payload, signed with the hook's secret, is
POSTed to the hook's URL on that web process, and a real Celery worker runs one execution per
firing service: the playbook's restart webhook is called once for each service. Alertmanager
repeating the group starts nothing new."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from heartbeats.services import heartbeat_record, service_create
from remediation.approvals.hooks import sign
from remediation.playbooks import services
from remediation.playbooks.models import Execution
from tests.approvals.test_hooks import ALERTMANAGER
from tests.conftest import _key
from tests.playbooks.conftest import playbook_yaml
from tests.playbooks.test_durability_e2e import FAST, _broker, _ensure_beat_schedule, _wait  # noqa: F401
from tests.receivers import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _call(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _signed(web: str, hook: dict, payload: dict, *, ts: int) -> tuple[int, dict]:
    body = json.dumps(payload).encode()
    path = "/" + hook["url"].split("://", 1)[1].split("/", 1)[1]
    headers = {
        "X-Medic-Timestamp": str(ts),
        "X-Medic-Signature": sign(hook["signing_secret"], str(ts), body),
    }
    return _call(web + path, body, headers)


def test_alertmanager_payload_to_a_real_web_runs_one_execution_per_service(start_web, start_worker):
    _ensure_beat_schedule()
    with Receiver() as receiver:
        services.playbook_save(
            document=playbook_yaml("restart-worker", receiver.url, timeout="5s"), actor="tests"
        )
        for name in ("worker-1", "worker-2", "worker-3"):
            service = service_create(heartbeat_name=name, alert_interval=60)
            heartbeat_record(service_ref=service.pk)
        writer = _key(["write"], "alertmanager operator")
        worker = start_worker(beat=True, **FAST)
        web = start_web()

        status, hook = _call(
            web + "/v2/hooks",
            json.dumps(
                {
                    "name": "alertmanager",
                    "playbook": "restart-worker",
                    "format": "alertmanager",
                    "mapping": {
                        "service": "labels.service",
                        "variables": {"INSTANCE": "labels.instance"},
                    },
                }
            ).encode(),
            {"Authorization": f"Bearer {writer}"},
        )
        assert status == 201, hook

        now = int(time.time())
        status, body = _signed(web, hook, ALERTMANAGER, ts=now)
        assert status == 202, body
        assert sorted(s["service"] for s in body["started"]) == ["worker-1", "worker-2"]

        calls = receiver.wait_for(2, timeout=90)
        assert sorted(c.json()["service"] for c in calls) == ["worker-1", "worker-2"]
        runs = {e.service_name: e for e in Execution.objects.all()}
        assert set(runs) == {"worker-1", "worker-2"}  # worker-3's alert had resolved
        assert runs["worker-1"].trigger["kind"] == "webhook"
        assert runs["worker-1"].requested_by == "hook:alertmanager"

        # Alertmanager repeats the group while it fires: the open runs are not doubled.
        status, again = _signed(web, hook, ALERTMANAGER, ts=now + 1)
        assert status == 202 and again["started"] == []
        assert {r["code"] for r in again["refused"]} == {"already_running"}
        # a replay of a request already received is refused by the web process
        body_bytes = json.dumps(ALERTMANAGER).encode()
        path = "/" + hook["url"].split("://", 1)[1].split("/", 1)[1]
        headers = {
            "X-Medic-Timestamp": str(now),
            "X-Medic-Signature": sign(hook["signing_secret"], str(now), body_bytes),
        }
        status, replay = _call(web + path, body_bytes, headers)
        assert status == 401 and replay["error"]["code"] == "replayed"

        _wait(
            lambda: all(e.finished_at for e in Execution.objects.all()),
            120,
            "both executions to finish",
            [worker],
        )
        assert Execution.objects.count() == 2
        assert len(receiver.requests) == 2  # one restart per service, nothing run twice
