"""POST /v2/playbooks/{id}/execute: by id or name, the approval setting, Idempotency-Key,
dry runs, variables, and clear refusals (scope, unknown things, stop switch, already open)."""

from __future__ import annotations

import pytest

from heartbeats.services import service_create
from remediation.audit.models import AuditEntry
from remediation.playbooks import services
from remediation.playbooks.models import Execution, TriggerRecord
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9"


@pytest.fixture
def playbook(db):
    service_create(heartbeat_name="worker-1", alert_interval=1)
    service_create(heartbeat_name="worker-2", alert_interval=1)
    return services.playbook_save(document=playbook_yaml("restart-worker", URL), actor="t").playbook


def test_by_id_starts_a_run_with_variables(writer, playbook):
    response = writer.post(
        f"/v2/playbooks/{playbook.pk}/execute",
        {"service": "worker-1", "variables": {"reason": "deploy stuck", "attempt": 2}},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "running" and body["mode"] == "active"
    assert body["automatic"] is False and body["requested_by"].startswith("key:writer persona#")
    assert body["trigger"]["kind"] == "api" and body["trigger"]["reason"] == "deploy stuck"
    assert AuditEntry.objects.filter(event="execution.started", execution_id=body["id"]).exists()
    again = writer.post("/v2/playbooks/restart-worker/execute", {"service": "worker-1"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_running"
    assert TriggerRecord.objects.filter(decision="already_running", event_kind="api").exists()


def test_required_parks_in_pending_approval(writer):
    service_create(heartbeat_name="worker-1", alert_interval=1)
    services.playbook_save(
        document=playbook_yaml("restart-worker", URL, extra_trigger="approval: required"),
        actor="t",
    )
    response = writer.post("/v2/playbooks/restart-worker/execute", {"service": "worker-1"})
    assert response.status_code == 201 and response.json()["state"] == "pending_approval"


def test_idempotency_key_returns_the_first_execution(writer, playbook):
    headers = {"HTTP_IDEMPOTENCY_KEY": "deploy-42"}
    first = writer.post("/v2/playbooks/restart-worker/execute", {"service": "worker-1"}, **headers)
    second = writer.post("/v2/playbooks/restart-worker/execute", {"service": "worker-2"}, **headers)
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert Execution.objects.count() == 1


def test_dry_run_is_a_shadow_run(writer, playbook):
    response = writer.post(
        "/v2/playbooks/restart-worker/execute", {"service": "worker-1", "dry_run": True}
    )
    assert response.status_code == 201 and response.json()["mode"] == "shadow"


def test_refusals(reader, writer, admin, playbook):
    assert (
        reader.post("/v2/playbooks/restart-worker/execute", {"service": "worker-1"}).status_code
        == 403
    )
    missing = writer.post("/v2/playbooks/nope/execute", {"service": "worker-1"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "playbook_not_found"
    unknown = writer.post("/v2/playbooks/restart-worker/execute", {"service": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "service_not_found"
    assert writer.post("/v2/playbooks/restart-worker/execute", {}).status_code == 422
    bad = writer.post(
        "/v2/playbooks/restart-worker/execute",
        {"service": "worker-1", "variables": {"kind": "x", "ok": {"nested": 1}}},
    )
    assert bad.status_code == 422 and len(bad.json()["error"]["fields"]["variables"]) == 2
    assert admin.post("/v2/remediation/stop", {"reason": "incident"}).status_code == 200
    stopped = writer.post("/v2/playbooks/restart-worker/execute", {"service": "worker-1"})
    assert stopped.status_code == 409
    assert stopped.json()["error"]["code"] == "remediation_stopped"
    assert Execution.objects.count() == 0
