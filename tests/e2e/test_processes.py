"""End to end with real processes: celery-beat schedules the sweep in a real worker, which
notifies Slack and PagerDuty stand-ins; revocation reaches every web process within 5 s."""

from __future__ import annotations

import importlib
import time
import urllib.error
import urllib.request

import pytest
from django.apps import apps

from alerting.models import Alert, Delivery
from heartbeats.services import heartbeat_record, service_create
from medic.apikeys import api_key_create, api_key_revoke
from tests.e2e.conftest import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


PERIODIC_TASK_MIGRATIONS = (
    "heartbeats.migrations.0002_periodic_tasks",
    "medic.events.migrations.0002_periodic_tasks",
    "alerting.migrations.0006_periodic_tasks",
)


def _ensure_beat_schedule() -> None:
    # Transactional tests flush tables between tests, data-migration rows included: re-apply
    # the (idempotent) migration functions that create Medic's periodic tasks.
    for name in PERIODIC_TASK_MIGRATIONS:
        importlib.import_module(name).create(apps, None)


def _wait(predicate, timeout: float, what: str, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{proc.output()}" if proc else ""))


def test_missed_heartbeat_alerts_and_recovers_through_real_worker(start_worker, slack, pagerduty):
    _ensure_beat_schedule()
    service = service_create(heartbeat_name="e2e-job", alert_interval=0.05, priority="p2")
    heartbeat_record(service_ref=service.pk)
    metrics_port = free_port()
    worker = start_worker(beat=True, metrics_port=metrics_port)

    _wait(lambda: Alert.objects.filter(state="open").exists(), 45, "the alert", worker)
    trigger = pagerduty.wait_for(1, timeout=20)[0].json()
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"].startswith("medic-e2e-job-")  # one key per alert
    assert trigger["payload"]["severity"] == "error"
    assert "e2e-job" in slack.wait_for(1, timeout=20)[0].json()["text"]

    heartbeat_record(service_ref=service.pk)  # recovery: resolved by the worker
    _wait(lambda: Alert.objects.filter(state="resolved").exists(), 30, "resolution", worker)
    resolve = _wait(
        lambda: [r for r in pagerduty.requests if r.json()["event_action"] == "resolve"],
        20,
        "PagerDuty resolve",
        worker,
    )
    assert resolve[0].json()["dedup_key"] == trigger["dedup_key"]
    assert Delivery.objects.filter(status="succeeded").count() >= 4

    # metrics observed in the worker are scrapeable from its endpoint
    key = api_key_create(name="scraper", scopes=["read"]).secret
    request = urllib.request.Request(
        f"http://127.0.0.1:{metrics_port}/metrics", headers={"Authorization": f"Bearer {key}"}
    )
    body = urllib.request.urlopen(request, timeout=5).read().decode()
    assert "medic_sweep_duration_seconds_count" in body
    assert 'medic_notifications_total{channel="pagerduty",outcome="success"}' in body


def _status(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        return urllib.request.urlopen(request, timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_revocation_reaches_every_web_process_within_5_seconds(start_web):
    base = start_web(workers=2)
    key = api_key_create(name="soon-revoked", scopes=["read"])
    # warm the key cache of both worker processes
    assert {_status(base + "/v2/services", key.secret) for _ in range(40)} == {200}
    api_key_revoke(key_id=key.key.pk)
    revoked_at = time.monotonic()

    refused_since = []

    def all_refused():
        started = time.monotonic()
        if all(_status(base + "/v2/services", key.secret) == 401 for _ in range(20)):
            refused_since.append(started)
            return True
        return False

    _wait(all_refused, 10, "revocation")
    assert refused_since[0] - revoked_at < 5
