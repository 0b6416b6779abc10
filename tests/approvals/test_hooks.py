"""Inbound webhooks: created over the API (URL with token and signing secret shown once),
signed requests start the hook's playbook; bad signatures, stale timestamps, replays and wrong
tokens start nothing; an Alertmanager group starts one execution per firing service."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache
from django.test import Client

from heartbeats.services import service_create
from remediation.approvals.hooks import sign
from remediation.approvals.models import InboundHook
from remediation.playbooks import services
from remediation.playbooks.models import Execution
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db

ALERTMANAGER = {
    "version": "4",
    "groupKey": '{}:{alertname="WorkerDown"}',
    "status": "firing",
    "receiver": "medic",
    "groupLabels": {"alertname": "WorkerDown"},
    "commonLabels": {"alertname": "WorkerDown", "severity": "page"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "WorkerDown", "service": "worker-1", "instance": "a:9100"},
            "annotations": {"summary": "worker-1 down on a"},
            "startsAt": "2026-12-05T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "a1",
        },
        {
            "status": "firing",
            "labels": {"alertname": "WorkerDown", "service": "worker-1", "instance": "b:9100"},
            "annotations": {"summary": "worker-1 down on b"},
            "startsAt": "2026-12-05T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "b2",
        },
        {
            "status": "firing",
            "labels": {"alertname": "WorkerDown", "service": "worker-2", "instance": "c:9100"},
            "annotations": {"summary": "worker-2 down on c"},
            "startsAt": "2026-12-05T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "c3",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "WorkerDown", "service": "worker-3", "instance": "d:9100"},
            "annotations": {"summary": "worker-3 back"},
            "startsAt": "2026-12-05T09:00:00Z",
            "endsAt": "2026-12-05T10:00:00Z",
            "fingerprint": "d4",
        },
    ],
}


@pytest.fixture
def hook(writer):
    cache.clear()
    for name in ("worker-1", "worker-2", "worker-3"):
        service_create(heartbeat_name=name, alert_interval=1)
    services.playbook_save(
        document=playbook_yaml("restart-worker", "http://127.0.0.1:9"), actor="t"
    )
    response = writer.post(
        "/v2/hooks",
        {
            "name": "alertmanager",
            "playbook": "restart-worker",
            "format": "alertmanager",
            "mapping": {
                "service": "labels.service",
                "variables": {"INSTANCE": "labels.instance", "SUMMARY": "annotations.summary"},
            },
        },
    )
    assert response.status_code == 201, response.content
    return response.json()


def _post(url: str, payload, secret: str, *, ts=None, signature=None):
    body = json.dumps(payload).encode()
    ts = str(int(time.time()) if ts is None else ts)
    path = url.split("://", 1)[1].split("/", 1)[1]
    return Client().post(
        "/" + path,
        body,
        content_type="application/json",
        HTTP_X_MEDIC_TIMESTAMP=ts,
        HTTP_X_MEDIC_SIGNATURE=signature or sign(secret, ts, body),
    )


def test_created_once_and_listed_without_secrets(hook, reader):
    assert hook["url"].startswith("http://") and "/hooks/" in hook["url"]
    assert hook["signing_secret"].startswith("whsec_")
    listed = reader.get("/v2/hooks").json()["results"]
    assert listed[0]["name"] == "alertmanager" and "signing_secret" not in listed[0]
    stored = InboundHook.objects.get()
    token = hook["url"].rsplit("/", 1)[1]
    assert token not in json.dumps(listed) and stored.token_hash != token
    assert hook["signing_secret"] not in stored.signing_secret
    assert reader.post("/v2/hooks", {"name": "x", "playbook": "restart-worker"}).status_code == 403


def test_alertmanager_group_starts_one_execution_per_service(hook):
    now = int(time.time())
    response = _post(hook["url"], ALERTMANAGER, hook["signing_secret"], ts=now)
    assert response.status_code == 202, response.content
    body = response.json()
    assert [s["service"] for s in body["started"]] == ["worker-1", "worker-2"]
    assert body["refused"] == []
    runs = {e.service_name: e for e in Execution.objects.all()}
    assert set(runs) == {"worker-1", "worker-2"}
    assert runs["worker-1"].trigger["INSTANCE"] == "a:9100"
    assert runs["worker-1"].trigger["kind"] == "webhook"
    assert runs["worker-1"].requested_by == "hook:alertmanager"
    # Alertmanager repeats the group: a run is already open, nothing new starts.
    again = _post(hook["url"], ALERTMANAGER, hook["signing_secret"], ts=now - 30).json()
    assert again["started"] == [] and {r["code"] for r in again["refused"]} == {"already_running"}
    assert Execution.objects.count() == 2


def test_forged_stale_replayed_and_unknown_start_nothing(hook):
    secret = hook["signing_secret"]
    forged = _post(hook["url"], ALERTMANAGER, "whsec_wrong")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    stale = _post(hook["url"], ALERTMANAGER, secret, ts=int(time.time()) - 600)
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "stale"
    assert _post(hook["url"], ALERTMANAGER, secret, ts="soon").status_code == 401
    unknown = _post(hook["url"].rsplit("/", 1)[0] + "/nope", ALERTMANAGER, secret)
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "unknown_hook"
    assert Execution.objects.count() == 0
    body = json.dumps(ALERTMANAGER).encode()
    ts = str(int(time.time()))
    signature = sign(secret, ts, body)
    first = _post(hook["url"], ALERTMANAGER, secret, ts=ts, signature=signature)
    assert first.status_code == 202
    replay = _post(hook["url"], ALERTMANAGER, secret, ts=ts, signature=signature)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed"
    assert Execution.objects.count() == 2


def test_generic_mapping_and_bad_input(writer, hook):
    created = writer.post(
        "/v2/hooks",
        {
            "name": "ci",
            "playbook": "restart-worker",
            "mapping": {"service": "target.name", "variables": {"BUILD": "build.id"}},
        },
    ).json()
    payload = {"target": {"name": "worker-3"}, "build": {"id": 42}}
    started = _post(created["url"], payload, created["signing_secret"]).json()["started"]
    assert [s["service"] for s in started] == ["worker-3"]
    assert Execution.objects.get(pk=started[0]["execution"]).trigger["BUILD"] == 42
    bad = writer.post(
        "/v2/hooks",
        {"name": "bad", "playbook": "restart-worker", "mapping": {"service": "a..b"}},
    )
    assert bad.status_code == 422
    missing = writer.post("/v2/hooks", {"name": "nope", "playbook": "nope"})
    assert missing.status_code == 404
    not_json = Client().post(
        "/" + created["url"].split("/", 3)[3],
        b"[1]",
        content_type="application/json",
        HTTP_X_MEDIC_TIMESTAMP=str(int(time.time())),
        HTTP_X_MEDIC_SIGNATURE=sign(created["signing_secret"], str(int(time.time())), b"[1]"),
    )
    assert not_json.status_code == 422
