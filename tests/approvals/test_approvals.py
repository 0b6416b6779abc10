"""Approval requests: opened with the parked execution, decided exactly once over the API
(approve starts the run, decline cancels it), four-eyes and two approvers, the deadline
(timeout runs, required expires and escalates) on a controlled clock, and a service that
recovers while its request waits."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

from alerting.models import Alert
from medic.events.consumers import consumer_dispatch
from medic.events.services import event_record
from remediation.approvals.models import ApprovalRequest
from remediation.approvals.services import approval_decide, approvals_due
from remediation.audit.models import AuditEntry
from remediation.playbooks import services
from remediation.playbooks.models import Execution, ExecutionState
from remediation.playbooks.triggers import trigger_service
from tests.conftest import ApiClient, _key
from tests.playbooks.conftest import playbook_yaml
from tests.playbooks.test_executions_api import _down

URL = "http://127.0.0.1:9"


def _parked(approval: str = "required", extra: str = "", name: str = "worker-1") -> Execution:
    services.playbook_save(
        document=playbook_yaml("restart-worker", URL, extra_trigger=f"approval: {approval}{extra}"),
        actor="tests",
    )
    service = _down(name)
    # Outside a test transaction the alert.opened consumer may already have started it.
    trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    return Execution.objects.get(service=service)


@pytest.mark.django_db
def test_required_waits_and_an_approval_starts_it_once(writer, reader, admin):
    execution = _parked()
    assert execution.state == ExecutionState.PENDING_APPROVAL
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.state == "pending" and request.mode == "required"
    assert request.deadline_at == execution.created_at + timedelta(hours=24)
    listed = reader.get("/v2/approvals").json()["results"]
    assert [(a["execution"], a["service"], a["state"]) for a in listed] == [
        (execution.pk, "worker-1", "pending")
    ]

    assert reader.post(f"/v2/executions/{execution.pk}/approve").status_code == 403
    response = writer.post(f"/v2/executions/{execution.pk}/approve", {"reason": "go"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "approved" and body["channel"] == "api"
    assert body["decided_by"].startswith("key:writer persona#")
    assert body["execution_state"] == ExecutionState.RUNNING
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING and execution.due_at is not None
    assert execution.events.filter(kind="approved").exists()
    audit = AuditEntry.objects.get(event="approval.approved", execution_id=execution.pk)
    assert audit.details["channel"] == "api" and audit.details["reason"] == "go"

    again = admin.post(f"/v2/executions/{execution.pk}/decline", {"reason": "no"})
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "approval_already_decided"
    assert "approved by key:writer persona#" in error["message"]
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING
    assert reader.get("/v2/approvals").json()["results"] == []


@pytest.mark.django_db
def test_decline_cancels_and_nothing_runs(writer):
    execution = _parked()
    response = writer.post(f"/v2/executions/{execution.pk}/decline", {"reason": "not now"})
    assert response.status_code == 200 and response.json()["state"] == "declined"
    execution.refresh_from_db()
    assert execution.state == ExecutionState.CANCELLED and execution.due_at is None
    assert set(execution.steps.values_list("state", flat=True)) == {"skipped"}
    assert "not now" in execution.events.last().message
    assert writer.post(f"/v2/executions/{execution.pk}/approve").status_code == 409


@pytest.mark.django_db
def test_not_parked_or_missing(writer):
    services.playbook_save(document=playbook_yaml("restart-worker", URL), actor="tests")
    (execution,) = trigger_service(
        service=_down("worker-1"), kind="alert.opened", event_id=None, payload={}
    )
    response = writer.post(f"/v2/executions/{execution.pk}/approve")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "approval_not_pending"
    assert writer.post("/v2/executions/999999/approve").status_code == 404


@pytest.mark.django_db
def test_cancelled_meanwhile_closes_the_request(writer, admin):
    execution = _parked()
    assert (
        admin.post(f"/v2/executions/{execution.pk}/cancel", {"reason": "fixed"}).status_code == 200
    )
    late = writer.post(f"/v2/executions/{execution.pk}/approve")
    assert late.status_code == 409 and late.json()["error"]["code"] == "approval_already_decided"
    assert ApprovalRequest.objects.get(execution=execution).state == "cancelled"
    listed = admin.get("/v2/approvals")
    assert listed.json()["results"] == [], listed.content


@pytest.mark.django_db
def test_four_eyes_and_two_approvers(db):
    execution = _parked(extra="\nfour_eyes: true\napprovers: 2")
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.four_eyes and request.approvers_needed == 2
    own = approval_decide(
        execution_id=execution.pk, actor="alice", approve=True, channel="portal", reason=""
    )
    assert own.state == "pending" and [a["actor"] for a in own.approvals] == ["alice"]
    execution.refresh_from_db()
    assert execution.state == ExecutionState.PENDING_APPROVAL
    with pytest.raises(Exception) as same:
        approval_decide(
            execution_id=execution.pk, actor="alice", approve=True, channel="slack", reason=""
        )
    assert getattr(same.value, "code", "") == "approval_needs_another_approver"
    # The requester (here the trigger) may never approve.
    requester = execution.requested_by
    with pytest.raises(Exception) as four:
        approval_decide(
            execution_id=execution.pk, actor=requester, approve=True, channel="api", reason=""
        )
    assert getattr(four.value, "code", "") == "four_eyes"
    done = approval_decide(
        execution_id=execution.pk, actor="bob", approve=True, channel="mcp", reason="ok"
    )
    assert done.state == "approved" and done.decided_by == "bob"
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING


@pytest.mark.django_db
def test_four_eyes_over_the_api(db):
    services.playbook_save(
        document=playbook_yaml(
            "restart-worker", URL, extra_trigger="approval: required\nfour_eyes: true"
        ),
        actor="tests",
    )
    _down("worker-1")
    alice = ApiClient(_key(["write"], "alice"))
    bob = ApiClient(_key(["write"], "bob"))
    started = alice.post("/v2/playbooks/restart-worker/execute", {"service": "worker-1"})
    assert started.status_code == 201 and started.json()["state"] == "pending_approval"
    execution_id = started.json()["id"]
    own = alice.post(f"/v2/executions/{execution_id}/approve")
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
    assert Execution.objects.get(pk=execution_id).state == ExecutionState.PENDING_APPROVAL
    assert bob.post(f"/v2/executions/{execution_id}/approve").status_code == 200
    assert Execution.objects.get(pk=execution_id).state == ExecutionState.RUNNING


@pytest.mark.django_db
def test_timeout_runs_after_the_deadline_unless_declined(db):
    execution = _parked("timeout:1m")
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.mode == "timeout"
    start = execution.created_at
    assert approvals_due(now=start + timedelta(seconds=59)) == 0
    execution.refresh_from_db()
    assert execution.state == ExecutionState.PENDING_APPROVAL
    assert approvals_due(now=start + timedelta(seconds=61)) == 1
    execution.refresh_from_db()
    request.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING
    assert request.state == "approved" and request.channel == "system"
    assert request.reason == "nobody declined before the deadline"


@pytest.mark.django_db
def test_timeout_declined_within_the_minute_never_runs(writer):
    execution = _parked("timeout:1m")
    assert writer.post(f"/v2/executions/{execution.pk}/decline").status_code == 200
    assert approvals_due(now=execution.created_at + timedelta(minutes=5)) == 0
    execution.refresh_from_db()
    assert execution.state == ExecutionState.CANCELLED


@pytest.mark.django_db
def test_required_expires_times_out_and_escalates(settings):
    settings.MEDIC_APPROVAL_EXPIRY = "2h"
    execution = _parked()
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.deadline_at == execution.created_at + timedelta(hours=2)
    assert approvals_due(now=execution.created_at + timedelta(hours=2, seconds=1)) == 1
    execution.refresh_from_db()
    request.refresh_from_db()
    assert request.state == "expired"
    assert execution.state == ExecutionState.TIMED_OUT
    assert "approval expired" in execution.error
    alert = Alert.objects.get(pk=execution.alert_id)
    assert alert.details["remediation"]["execution_id"] == execution.pk
    assert AuditEntry.objects.filter(event="approval.expired", execution_id=execution.pk).exists()


@pytest.mark.django_db
def test_service_recovers_while_waiting(writer):
    execution = _parked()
    with transaction.atomic():
        event_record(kind="service.recovered", service_id=execution.service_id)
    consumer_dispatch("remediation")
    execution.refresh_from_db()
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.state == "cancelled" and request.reason == "recovered on its own"
    assert execution.state == ExecutionState.CANCELLED
    assert "recovered on its own" in execution.events.last().message
    late = writer.post(f"/v2/executions/{execution.pk}/approve")
    assert late.status_code == 409 and "recovered on its own" in late.json()["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_one_decision():
    execution = _parked()
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def click(actor: str, approve: bool) -> None:
        try:
            barrier.wait(5)
            approval_decide(
                execution_id=execution.pk, actor=actor, approve=approve, channel="slack"
            )
            results[actor] = "decided"
        except Exception as exc:  # the loser is told who decided
            results[actor] = getattr(exc, "message", str(exc))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=click, args=("alice", True)),
        threading.Thread(target=click, args=("bob", False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(v == "decided" for v in results.values()) == [False, True]
    winner = next(a for a, v in results.items() if v == "decided")
    loser = next(a for a, v in results.items() if v != "decided")
    assert f"by {winner}" in results[loser]
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.decided_by == winner
    execution.refresh_from_db()
    assert execution.state == (
        ExecutionState.RUNNING if winner == "alice" else ExecutionState.CANCELLED
    )
