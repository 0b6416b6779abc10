"""The remediation audit log: append-only rows, secrets masked, every remediation action."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib import admin as django_admin
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from remediation.audit.models import AppendOnlyError, AuditEntry
from remediation.audit.services import audit_record
from remediation.jobs import jobs_expire
from remediation.models import Job
from remediation.secrets.services import secret_set
from tests.remediation.conftest import register

pytestmark = pytest.mark.django_db
TOKEN = "hunter2-token-xyz"


def _record(**extra) -> AuditEntry:
    fields = {
        "actor": "system",
        "event": "execution.started",
        "object_type": "execution",
        "object_id": "7",
        "details": {},
    }
    return audit_record(**{**fields, **extra})


def test_a_row_carries_actor_event_object_and_context():
    entry = _record(
        actor="slack:U42",
        details={"step": "restart", "at": timezone.now()},
        playbook="restart-web",
        service="web-api",
        execution_id=7,
    )
    row = AuditEntry.objects.get(pk=entry.pk)
    assert (row.actor, row.event, row.object_type, row.object_id) == (
        "slack:U42",
        "execution.started",
        "execution",
        "7",
    )
    assert (row.playbook, row.service, row.execution_id) == ("restart-web", "web-api", 7)
    assert row.details["step"] == "restart" and isinstance(row.details["at"], str)
    assert row.created_at <= timezone.now()


def test_rows_cannot_be_changed_or_deleted_through_the_orm():
    entry = _record()
    entry.details = {"forged": True}
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(actor="someone-else")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.bulk_update([entry], ["details"])
    assert AuditEntry.objects.get(pk=entry.pk).details == {}


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditentry SET actor = 'forged'",
        "DELETE FROM audit_auditentry",
    ],
)
def test_the_database_refuses_changes_behind_the_orms_back(sql):
    entry = _record()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEntry.objects.get(pk=entry.pk).actor == "system"


def test_the_admin_is_read_only(django_user_model):
    model_admin = django_admin.site._registry[AuditEntry]
    request = RequestFactory().get("/admin/audit/auditentry/")
    request.user = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_secret_values_are_masked_at_any_depth():
    secret_set(name="api_token", value=TOKEN, actor="system")
    entry = _record(
        event="webhook.response",
        details={
            "url": f"https://ops.example/restart?token={TOKEN}",
            "headers": {"Authorization": f"Bearer {TOKEN}", TOKEN: "as a key"},
            "body": [{"echo": [TOKEN, 3, None, True]}, f"prefix-{TOKEN}-suffix"],
            "status": 200,
        },
    )
    stored = AuditEntry.objects.get(pk=entry.pk).details
    assert stored == {
        "url": "https://ops.example/restart?token=••••••",
        "headers": {"Authorization": "Bearer ••••••", "••••••": "as a key"},
        "body": [{"echo": ["••••••", 3, None, True]}, "prefix-••••••-suffix"],
        "status": 200,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT details::text FROM audit_auditentry")
        assert all(TOKEN not in row[0] for row in cursor.fetchall())


def test_a_row_rolls_back_with_the_change_it_records():
    with pytest.raises(RuntimeError), transaction.atomic():
        _record(event="execution.cancelled")
        raise RuntimeError("the change failed")
    assert not AuditEntry.objects.filter(event="execution.cancelled").exists()


# --- The remediation actions that exist today ------------------------------------------------


def test_agent_creation_and_disabling_are_audited(admin):
    created = admin.post("/v2/agents", {"name": "web-9", "labels": ["role:web"]})
    assert created.status_code == 201
    admin.delete("/v2/agents/web-9")
    rows = list(AuditEntry.objects.filter(object_type="agent").order_by("id"))
    assert [r.event for r in rows] == ["agent.created", "agent.disabled"]
    assert rows[0].actor.startswith("key:admin persona#")
    assert rows[0].details == {"labels": ["role:web"], "api_key_id": created.json()["api_key_id"]}
    assert created.json()["key"] not in json.dumps(rows[0].details)


def test_a_run_and_its_result_are_audited_with_output_masked(writer, reader, greet, web1):
    secret_set(name="web_token", value=TOKEN, actor="system")
    _, client = web1
    register(client)
    queued = writer.post(
        "/v2/scripts/greet/run", {"target": {"agent": "web-1"}, "args": {"name": "Ada"}}
    )
    job_id = queued.json()["jobs"][0]["id"]
    client.get("/v2/agent/jobs?wait=0")
    result = {
        "exit_code": 0,
        "duration_ms": 12,
        "stdout_tail": f"hello Ada, token={TOKEN}\n",
        "stderr_tail": "",
        "timed_out": False,
        "signal": None,
    }
    assert client.post(f"/v2/agent/jobs/{job_id}/result", result).status_code == 200
    run = AuditEntry.objects.get(event="script.run")
    assert run.details["args"] == {"name": "Ada"} and run.details["jobs"] == [job_id]
    finished = AuditEntry.objects.get(event="job.finished")
    assert finished.actor == "agent:web-1" and finished.object_id == job_id
    assert finished.details["state"] == "succeeded" and finished.details["exit_code"] == 0
    assert finished.details["stdout_tail"] == "hello Ada, token=••••••\n"
    # the job itself never shows the secret either
    assert reader.get(f"/v2/jobs/{job_id}").json()["stdout_tail"] == "hello Ada, token=••••••\n"


def test_a_skip_and_an_expiry_are_audited(writer, greet, web1, settings):
    _, client = web1
    register(client)
    first = writer.post(
        "/v2/scripts/greet/run", {"target": {"agent": "web-1"}, "args": {"name": "Ada"}}
    )
    skipped_id = first.json()["jobs"][0]["id"]
    client.get("/v2/agent/jobs?wait=0")
    client.post(f"/v2/agent/jobs/{skipped_id}/skipped", {"reason": "shutting_down", "detail": ""})
    second = writer.post(
        "/v2/scripts/greet/run", {"target": {"agent": "web-1"}, "args": {"name": "Ada"}}
    )
    expired_id = second.json()["jobs"][0]["id"]
    later = timezone.now() + timedelta(seconds=settings.MEDIC_AGENT_JOB_QUEUE_TTL_SECONDS + 1)
    assert jobs_expire(now=later) == 1
    assert Job.objects.get(pk=expired_id).state == "failed"
    rows = {r.object_id: r for r in AuditEntry.objects.filter(event="job.finished")}
    assert rows[skipped_id].details["state"] == "skipped"
    assert rows[skipped_id].details["skip_reason"] == "shutting_down"
    assert rows[expired_id].actor == "system"
    assert rows[expired_id].details["detail"].startswith("Expired")
