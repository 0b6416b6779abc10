"""GET /v2/executions (filters, newest first, pages), detail with steps and events, cancel;
circuit breakers and the stop-all switch over the API."""

from __future__ import annotations

import pytest
from django.db import transaction

from alerting.services import alert_open
from heartbeats.models import Service
from heartbeats.services import service_create
from remediation.playbooks import services
from remediation.playbooks.models import CircuitBreaker, ExecutionState
from remediation.playbooks.triggers import trigger_service
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9"


def _down(name: str) -> Service:
    service = service_create(heartbeat_name=name, alert_interval=1)
    Service.objects.filter(pk=service.pk).update(status="down", consecutive_failures=1)
    service.refresh_from_db()
    with transaction.atomic():
        alert_open(service=service)
    return service


@pytest.fixture
def executions(db):
    services.playbook_save(document=playbook_yaml("restart-worker", URL), actor="tests")
    services.playbook_save(document=playbook_yaml("restart-db", URL, pattern="db-*"), actor="tests")
    made = []
    for name in ("worker-1", "worker-2", "db-1"):
        made += trigger_service(service=_down(name), kind="alert.opened", event_id=None, payload={})
    return made


def test_list_newest_first_with_filters(reader, executions):
    body = reader.get("/v2/executions").json()
    assert [e["id"] for e in body["results"]] == [e.pk for e in reversed(executions)]
    first = body["results"][0]
    assert first["playbook"] == "restart-db" and first["version"] == 1
    assert first["service"] == "db-1" and first["state"] == "running"
    assert first["steps"] == [
        {"name": "restart", "type": "webhook", "state": "pending"},
        {"name": "settle", "type": "wait", "state": "pending"},
        {"name": "verify", "type": "condition", "state": "pending"},
    ]
    only = reader.get("/v2/executions?playbook=restart-worker&service=worker-2").json()["results"]
    assert [e["service"] for e in only] == ["worker-2"]
    page = reader.get("/v2/executions?limit=2").json()
    assert len(page["results"]) == 2 and page["next"]
    assert reader.get("/v2/executions?state=nope").status_code == 422


def test_detail_and_cancel(reader, writer, executions):
    execution = executions[0]
    detail = reader.get(f"/v2/executions/{execution.pk}").json()
    assert detail["events"][0]["kind"] == "created"
    assert detail["trigger"]["kind"] == "alert.opened"
    assert reader.post(f"/v2/executions/{execution.pk}/cancel").status_code == 403
    response = writer.post(f"/v2/executions/{execution.pk}/cancel", {"reason": "manual fix"})
    assert response.status_code == 200
    assert response.json()["state"] == ExecutionState.CANCELLED
    assert response.json()["events"][-1]["message"].endswith("manual fix")
    again = writer.post(f"/v2/executions/{execution.pk}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "execution_finished"
    assert reader.get("/v2/executions/999999").status_code == 404


def test_circuit_breaker_status_and_reset(admin, writer, reader):
    CircuitBreaker.objects.create(scope="playbook", key="restart-worker", opened_reason="3 runs")
    CircuitBreaker.objects.filter(key="restart-worker").update(opened_at="2026-01-01T00:00:00Z")
    listed = reader.get("/v2/circuit-breakers").json()["results"]  # in pages, like every list
    assert listed[0]["open"] is True and listed[0]["opened_reason"] == "3 runs"
    assert writer.post("/v2/circuit-breakers/playbook/restart-worker/reset").status_code == 403
    response = admin.post("/v2/circuit-breakers/playbook/restart-worker/reset")
    assert response.status_code == 200
    assert response.json()["open"] is False and response.json()["counted_since"]
    assert admin.post("/v2/circuit-breakers/nope/x/reset").status_code == 422


def test_the_stop_switch(admin, writer, reader, executions):
    assert reader.get("/v2/remediation").json()["stopped"] is False
    assert writer.post("/v2/remediation/stop").status_code == 403
    stopped = admin.post("/v2/remediation/stop", {"reason": "bad deploy"}).json()
    assert stopped["stopped"] is True and "bad deploy" in stopped["reason"]
    assert stopped["running"] == 3
    resumed = admin.post("/v2/remediation/resume").json()
    assert resumed["stopped"] is False


def test_the_setting_stops_everything_too(reader, settings):
    settings.MEDIC_REMEDIATION_ENABLED = False
    body = reader.get("/v2/remediation").json()
    assert body["stopped"] is True and "MEDIC_REMEDIATION_ENABLED" in body["reason"]
