"""``manage.py import_v1``: v1's playbooks, their triggers, the remediation history and the API
keys. v1 HEAD has no writer for playbooks, triggers or scripts (entered by hand) and never commits
executions, step results, approvals or audit rows (``query_db`` never commits), so these rows
are built by hand here, shaped as v1's tables hold them."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from django.utils import timezone

from medic.apikeys import key_cache
from medic.metrics import API_KEY_HASH_VERIFICATIONS
from medic.models import ApiKey, AuditEvent
from remediation.approvals.models import ApprovalRequest
from remediation.audit.models import AuditEntry
from remediation.playbooks.models import Execution, Playbook, PlaybookVersion
from remediation.playbooks.scoring import outcomes_score
from remediation.playbooks.services import playbook_mode_set, playbook_save
from remediation.services import script_update
from tests.conftest import ApiClient
from tests.test_import_v1 import _sql, scratch_schema
from tests.test_import_v1_head import DDL, SCHEMA, _import, _insert
from tests.test_import_v1_head import _seed as _seed_head

pytestmark = pytest.mark.django_db(transaction=True)

RESTART = """\
name: restart-billing
description: Restart billing when it stops beating
approval: timeout:5m
version: 3
owner: sre
steps:
  - name: page
    type: webhook
    url: https://hooks.example/restart
    headers:
      Authorization: "Bearer ${secrets.PAGER_TOKEN}"
    body:
      service: "${SERVICE_NAME}"
    success_codes: [200, 202]
  - name: restart
    type: script
    script: restart-svc
    timeout: 2m
  - name: settle
    type: wait
    duration: 30s
  - name: verify
    type: condition
    check: heartbeat_received
    timeout: 5m
    on_failure: escalate
"""
HASHER = PasswordHasher()  # argon2-cffi defaults: what v1's scripts/create_api_key.py uses


def _v1_key() -> str:
    return "mdk_" + secrets.token_urlsafe(32)


def _seed() -> dict:
    ids = _seed_head()
    now = ids["now"]
    ids["restart"] = _insert(
        "playbooks", name="restart-billing", description="Restart billing", yaml_content=RESTART
    )
    _insert(
        "playbook_triggers",
        playbook_id=ids["restart"],
        service_pattern="billing*",
        consecutive_failures=3,
    )
    two = _insert(
        "playbooks",
        name="two-triggers",
        yaml_content="name: two-triggers\nsteps:\n  - {name: w, type: wait, duration: 5s}\n",
    )
    _insert("playbook_triggers", playbook_id=two, service_pattern="api*")
    _insert("playbook_triggers", playbook_id=two, service_pattern="web*")
    email = _insert(
        "playbooks",
        name="mail-step",
        yaml_content="name: mail-step\nsteps:\n  - {name: m, type: email, to: ops}\n",
    )
    _insert("playbook_triggers", playbook_id=email, service_pattern="*")
    off = _insert(
        "playbooks",
        name="switched-off",
        yaml_content="name: switched-off\nsteps:\n  - {name: w, type: wait, duration: 10s}\n",
    )
    _insert("playbook_triggers", playbook_id=off, service_pattern="etl", enabled=False)

    # History v1 never committed, built by hand: a finished run with its steps, its approval and
    # its audit trail; a run still waiting for approval; a run of a playbook Medic 2 refuses.
    started = now - timedelta(hours=2)
    done = _insert(
        "playbook_executions",
        playbook_id=ids["restart"],
        service_id=ids["billing"],
        status="completed",
        current_step=3,
        started_at=started,
        completed_at=started + timedelta(minutes=6),
    )
    for index, (name, status, output) in enumerate(
        (
            ("page", "completed", "202"),
            ("restart", "completed", "ok"),
            ("settle", "completed", None),
            ("verify", "completed", None),
        )
    ):
        _insert(
            "playbook_step_results",
            execution_id=done,
            step_name=name,
            step_index=index,
            status=status,
            output=output,
            started_at=started + timedelta(minutes=index + 1),
            completed_at=started + timedelta(minutes=index + 2),
        )
    _insert(
        "approval_requests",
        execution_id=done,
        requested_at=started,
        expires_at=started + timedelta(minutes=5),
        status="approved",
        decided_by="U0APPROVER",
        decided_at=started + timedelta(minutes=1),
    )
    for action, actor, minutes in (
        ("approval_requested", "system", 0),
        ("approved", "U0APPROVER", 1),
        ("execution_completed", "system", 6),
    ):
        _insert(
            "remediation_audit_log",
            execution_id=done,
            action_type=action,
            details=json.dumps({"playbook": "restart-billing"}),
            actor=actor,
            timestamp=started + timedelta(minutes=minutes),
        )
    waiting = _insert(
        "playbook_executions",
        playbook_id=ids["restart"],
        service_id=ids["billing"],
        status="pending_approval",
        started_at=now - timedelta(minutes=20),
    )
    _insert(
        "approval_requests",
        execution_id=waiting,
        requested_at=now - timedelta(minutes=20),
        expires_at=now + timedelta(days=1),
    )
    refused = _insert("playbook_executions", playbook_id=two, status="failed", started_at=started)
    _insert(
        "remediation_audit_log",
        execution_id=refused,
        action_type="execution_failed",
        actor="system",
        timestamp=started,
    )
    _insert(
        "remediation_audit_log",
        execution_id=refused,
        action_type="execution_started",
        actor="system",
        timestamp=now - timedelta(days=400),
    )

    # Keys as scripts/create_api_key.py writes them: only the Argon2id hash is stored.
    ids["deploy"] = _v1_key()
    ids["reader"] = _v1_key()
    _insert(
        "api_keys", name="deploy", key_hash=HASHER.hash(ids["deploy"]), scopes=["read", "write"]
    )
    _insert("api_keys", name="reader", key_hash=HASHER.hash(ids["reader"]))
    _insert(
        "api_keys", name="old", key_hash=HASHER.hash(_v1_key()), expires_at=now - timedelta(days=1)
    )
    ids["waiting"], ids["done"] = waiting, done
    return ids


@pytest.fixture
def v1(transactional_db):
    yield from scratch_schema(DDL, SCHEMA, _seed)


def _versions() -> list[tuple]:
    return list(PlaybookVersion.objects.values_list("playbook__name", "version", "mode", "author"))


def test_playbooks_arrive_in_shadow_mode_through_the_playbook_service(v1):
    out, err = _import()
    assert "playbooks:  created 2, updated 0, unchanged 0, skipped 3" in out
    playbook = Playbook.objects.get(name="restart-billing")
    version = playbook.versions.get()
    assert (version.author, version.mode) == ("import", "shadow")
    assert version.reason.startswith(f"imported from Medic v1 playbook {v1['restart']}")
    spec = version.spec
    assert spec["approval"] == "timeout:5m" and spec["description"] == "Restart billing"
    assert spec["trigger"]["service_pattern"] == "billing*"
    assert spec["trigger"]["consecutive_failures"] == 3
    page, restart, settle, verify = spec["steps"]
    # v1's ${secrets.NAME} is Medic 2's ${SECRET.NAME}; v1's 30 s webhook default is kept.
    assert page["headers"] == {"Authorization": "Bearer ${SECRET.PAGER_TOKEN}"}
    assert page["success"]["status"] == [200, 202] and page["timeout_seconds"] == 30
    # The script arrived disabled (review first); the shadow playbook may name it.
    assert restart["script"] == "restart-svc" and restart["timeout_seconds"] == 120
    assert settle["duration_seconds"] == 30
    assert verify["check"] == "heartbeat_received" and verify["on_failure"] == {
        "action": "escalate"
    }
    assert "owner dropped (v1 kept them as metadata only)" in err

    # What Medic 2 cannot express is reported with why, and not imported.
    assert "two-triggers): not imported, it has 2 different triggers (api*, web*)" in err
    assert "mail-step): not imported, steps[0] has type 'email'" in err
    assert "restart): not imported, it has no playbook_triggers row" in err
    assert not Playbook.objects.filter(name__in=["two-triggers", "mail-step", "restart"]).exists()
    # A v1 playbook whose triggers are all disabled arrives disabled.
    assert not Playbook.objects.get(name="switched-off").enabled
    assert "switched-off): all its v1 triggers are disabled" in err


def test_keep_v1_mode_imports_them_active(v1):
    _import("--keep-v1-mode")
    assert Playbook.objects.get(name="restart-billing").versions.get().mode == "active"


def test_reimport_writes_a_version_only_when_the_v1_row_changed(v1):
    _import()
    versions = _versions()
    audits = (AuditEvent.objects.count(), AuditEntry.objects.count())

    again, _ = _import()
    assert "playbooks:  created 0, updated 0, unchanged 2, skipped 3" in again
    assert _versions() == versions
    assert (AuditEvent.objects.count(), AuditEntry.objects.count()) == audits

    # Reviewed (its script enabled, then the playbook switched to active) in Medic 2: v1 is
    # unchanged, so the import leaves it active.
    script_update(name="restart-svc", actor="user:ops")
    playbook_mode_set(name="restart-billing", mode="active", actor="user:ops")
    _import()
    playbook = Playbook.objects.get(name="restart-billing")
    assert playbook.current_version == 2 and playbook.versions.get(version=2).mode == "active"

    # Changed in v1: a new version by the import, in shadow mode again (unreviewed).
    _sql(
        f"UPDATE {SCHEMA}.playbooks SET yaml_content = replace(yaml_content, '30s', '45s') "
        "WHERE name = 'restart-billing'"
    )
    dry, _ = _import("--dry-run")
    out, _ = _import()
    assert dry.replace("Dry run, nothing was written. ", "") == out
    assert "playbooks:  created 0, updated 1, unchanged 1, skipped 3" in out
    playbook.refresh_from_db()
    latest = playbook.versions.get(version=3)
    assert (latest.author, latest.mode) == ("import", "shadow")
    assert latest.spec["steps"][2]["duration_seconds"] == 45
    assert "-  duration: 30s" in latest.diff and "+  duration: 45s" in latest.diff


def test_a_medic2_playbook_of_the_same_name_is_left_alone(v1):
    playbook_save(
        document="name: restart-billing\ntrigger: {service_pattern: 'x*'}\n"
        "steps:\n  - {name: w, type: wait, duration: 5s}\n",
        actor="user:ops",
    )
    _, err = _import()
    assert "restart-billing): skipped, a Medic 2 playbook of that name exists" in err
    assert _versions() == [
        ("restart-billing", 1, "active", "user:ops"),
        ("switched-off", 1, "shadow", "import"),
    ]
    assert not Execution.objects.filter(playbook__name="restart-billing").exists()


def test_history_is_read_only_and_a_pending_request_cannot_be_decided(v1, admin):
    out, err = _import()
    assert "executions: created 2, updated 0, unchanged 0, skipped 1" in out
    assert "1 v1 execution(s) of playbooks that were not imported were skipped" in err
    done = Execution.objects.get(trigger__v1_id=v1["done"])
    assert (done.state, done.automatic, done.due_at) == ("completed", False, None)
    assert done.trigger["source"] == "medic-v1" and done.service_name == "prod-billing"
    assert [(s.name, s.state) for s in done.steps.all()] == [
        ("page", "succeeded"),
        ("restart", "succeeded"),
        ("settle", "succeeded"),
        ("verify", "succeeded"),
    ]
    assert done.steps.first().type == "webhook" and done.steps.first().result == {"output": "202"}
    # History is not scored by today's status, nor counted for demotion.
    assert outcomes_score() == 0
    done.refresh_from_db()
    assert done.outcome == ""

    assert "approvals:  created 2, updated 0, unchanged 0, skipped 0" in out
    approved = ApprovalRequest.objects.get(execution=done)
    assert (approved.state, approved.decided_by, approved.channel) == (
        "approved",
        "slack:U0APPROVER",
        "slack",
    )
    assert approved.mode == "timeout"

    # Waiting for approval in v1: a cancelled execution and request, which nobody can decide.
    waiting = Execution.objects.get(trigger__v1_id=v1["waiting"])
    assert waiting.state == "cancelled" and "pending_approval in Medic v1" in waiting.error
    request = ApprovalRequest.objects.get(execution=waiting)
    assert request.state == "cancelled" and "not decidable here" in request.why
    response = admin.post(f"/v2/executions/{waiting.pk}/approve", {"reason": "go"})
    assert response.status_code == 409
    waiting.refresh_from_db()
    assert waiting.state == "cancelled"

    # The audit trail, at v1's times with v1's actors; a row older than the retention is not.
    assert "audit_log:  created 4, updated 0, unchanged 0, skipped 1" in out
    rows = {e.event: e for e in AuditEntry.objects.filter(event__startswith="v1.")}
    assert set(rows) == {
        "v1.approval_requested",
        "v1.approved",
        "v1.execution_completed",
        "v1.execution_failed",
    }
    approved_row = rows["v1.approved"]
    assert approved_row.actor == "U0APPROVER"
    assert approved_row.created_at == v1["now"] - timedelta(hours=2) + timedelta(minutes=1)
    assert approved_row.execution_id == done.pk and approved_row.playbook == "restart-billing"
    assert approved_row.details["source"] == "medic-v1"
    assert rows["v1.execution_failed"].object_id.startswith("v1:")
    assert "1 v1 audit row(s) older than MEDIC_AUDIT_RETENTION_DAYS" in err


def test_history_follows_v1_on_a_rehearsal_rerun(v1):
    _import()
    again, _ = _import()
    assert "executions: created 0, updated 0, unchanged 2" in again
    assert "approvals:  created 0, updated 0, unchanged 2" in again
    assert "audit_log:  created 0, updated 0, unchanged 4, skipped 1" in again

    # v1 goes on: the waiting run is approved and completes.
    now = timezone.now()
    _sql(
        f"UPDATE {SCHEMA}.playbook_executions SET status = 'completed', completed_at = %s "
        "WHERE id = %s",
        (now, v1["waiting"]),
    )
    _sql(
        f"UPDATE {SCHEMA}.approval_requests SET status = 'approved', decided_by = 'U0OPS', "
        "decided_at = %s WHERE execution_id = %s",
        (now, v1["waiting"]),
    )
    out, _ = _import()
    assert "executions: created 0, updated 1, unchanged 1" in out
    assert "approvals:  created 0, updated 1, unchanged 1" in out
    waiting = Execution.objects.get(trigger__v1_id=v1["waiting"])
    assert (waiting.state, waiting.error, waiting.finished_at) == ("completed", "", now)
    assert ApprovalRequest.objects.get(execution=waiting).decided_by == "slack:U0OPS"


def test_v1_keys_keep_working_found_without_trying_every_hash(v1, settings):
    out, err = _import()
    assert "api_keys:   created 3, updated 0, unchanged 0, skipped 1" in out
    assert "v1 API key 4 (old): not imported, it expired in v1" in err
    deploy = ApiKey.objects.get(name="deploy")
    assert deploy.prefix == "v1-2" and deploy.scopes == ["read", "write"]

    # First use: found among the imported keys not used yet, then bound to the key.
    client = ApiClient(v1["deploy"])
    assert client.get("/v2/services").status_code == 200
    deploy.refresh_from_db()
    assert deploy.prefix.startswith("v1") and not deploy.prefix.startswith("v1-")
    assert deploy.last_used_at is not None
    # The v1 API served by Medic 2 takes it as v1 did, scopes included.
    reader = ApiClient(v1["reader"])
    assert reader.get("/service").status_code == 200
    assert (
        reader.post(
            "/service", {"heartbeat_name": "x", "service_name": "x", "alert_interval": 5}
        ).status_code
        == 403
    )

    # Later uses cost one hash: the key is found by its bound prefix.
    key_cache.clear()
    before = API_KEY_HASH_VERIFICATIONS._value.get()
    assert client.get("/v2/services").status_code == 200
    assert API_KEY_HASH_VERIFICATIONS._value.get() - before == 1

    # An unknown v1-shaped key is tried against the unbound keys only (here: admin), once.
    stranger = ApiClient(_v1_key())
    before = API_KEY_HASH_VERIFICATIONS._value.get()
    assert stranger.get("/v2/services").status_code == 401
    assert stranger.get("/v2/services").status_code == 401
    assert API_KEY_HASH_VERIFICATIONS._value.get() - before == 1

    # A re-run writes nothing, and keeps the binding.
    audits = AuditEvent.objects.count()
    again, _ = _import()
    assert "api_keys:   created 0, updated 0, unchanged 3, skipped 1" in again
    assert AuditEvent.objects.count() == audits
    assert ApiKey.objects.get(name="deploy").prefix == deploy.prefix


def test_no_more_v1_keys_wait_for_first_use_than_the_bound(v1, settings):
    settings.MEDIC_V1_API_KEY_CANDIDATES = 2
    out, err = _import()
    assert "api_keys:   created 2, updated 0, unchanged 0, skipped 2" in out
    assert "1 v1 API key(s) not imported (reader): at most MEDIC_V1_API_KEY_CANDIDATES (2)" in err
    assert ApiClient(v1["reader"]).get("/v2/services").status_code == 401
    # Once a deployed client has used its key, the next run imports the one left over.
    assert ApiClient(v1["deploy"]).get("/v2/services").status_code == 200
    out, _ = _import()
    assert "api_keys:   created 1, updated 0, unchanged 2, skipped 1" in out
    key_cache.clear()  # a refused key is remembered for five minutes per process
    assert ApiClient(v1["reader"]).get("/v2/services").status_code == 200
