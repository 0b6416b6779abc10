"""The portal's approval page: everything to decide on one page (alert timeline, heartbeats and
runs, the pinned version and its diff, resolved steps with secrets masked, earlier executions),
decided through the same service as Slack/API/MCP (exactly once, a second decider told who
decided), viewers see but cannot decide (403 on POST), and the states after a decision, an
expiry and a recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from alerting.services import alert_open
from heartbeats.models import Service
from heartbeats.services import heartbeat_record, service_create
from medic.events.consumers import consumer_dispatch
from medic.events.services import event_record
from remediation.approvals.models import ApprovalRequest
from remediation.approvals.services import approval_decide, approvals_due
from remediation.audit.models import AuditEntry
from remediation.playbooks import services
from remediation.playbooks.models import Execution, ExecutionState
from remediation.playbooks.triggers import trigger_service
from remediation.secrets.services import secret_set
from tests.approvals.test_approvals import URL, _parked
from tests.dashboard.conftest import logged_in, make_user
from tests.playbooks.conftest import playbook_yaml
from tests.playbooks.test_executions_api import _down

pytestmark = pytest.mark.django_db
TOKEN = "s3cr3t-Tok3n-value"


def _with_history() -> Execution:
    """restart-worker v1 ran once on worker-0 (declined), then v2 adds a secret header; its run
    on worker-1 waits for approval."""
    first = _parked(name="worker-0")
    approval_decide(execution_id=first.pk, actor="user:x", approve=False, channel="api")
    secret_set(name="restart_token", value=TOKEN, actor="tests")
    services.playbook_save(
        document=playbook_yaml(
            "restart-worker", URL, extra_trigger="approval: required\nfour_eyes: true"
        ).replace(
            "    timeout: 5s\n",
            "    timeout: 5s\n    headers:\n"
            '      Authorization: "Bearer ${SECRET.restart_token}"\n',
            1,
        ),
        actor="tests",
        reason="send the token",
    )
    # its last heartbeat said what was wrong, then it stopped beating
    service = service_create(heartbeat_name="worker-1", alert_interval=1)
    heartbeat_record(service_ref=service.pk, message="queue stuck at 9000")
    Service.objects.filter(pk=service.pk).update(status="down", consecutive_failures=1)
    service.refresh_from_db()
    with transaction.atomic():
        alert_open(service=service)
    trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    return Execution.objects.get(service=service)


def test_page_shows_everything_needed_to_decide():
    execution = _with_history()
    viewer = logged_in(make_user("vera", "viewer"))
    response = viewer.get(f"/ui/approvals/{execution.pk}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Approval: restart-worker on worker-1" in page
    assert "pinned at v2" in page
    assert 'data-testid="alert-timeline"' in page and "Opened" in page  # the alert's timeline
    assert 'data-testid="heartbeats"' in page and "queue stuck at 9000" in page
    assert (
        'data-testid="diff"' in page
        and "+      Authorization: &quot;Bearer ${SECRET.restart_token}&quot;" in page
    )
    assert "Bearer ••••••" in page and TOKEN not in page  # resolved, secret masked
    assert "&quot;service&quot;: &quot;worker-1&quot;" in page  # variables resolved
    assert 'data-testid="earlier"' in page and "worker-0" in page and "cancelled" in page
    assert "Four-eyes" in page
    # a viewer sees, and is told who decides, without a form
    assert 'data-testid="read-only"' in page and 'name="decision"' not in page
    refused = viewer.post(f"/ui/approvals/{execution.pk}", {"decision": "approve"})
    assert refused.status_code == 403
    assert ApprovalRequest.objects.get(execution=execution).state == "pending"


def test_operator_decides_once_and_a_second_decider_is_told_who():
    execution = _parked()
    otto = logged_in(make_user("otto", "operator"))
    ada = logged_in(make_user("ada", "admin"))
    assert 'name="decision"' in otto.get(f"/ui/approvals/{execution.pk}").content.decode()

    response = otto.post(
        f"/ui/approvals/{execution.pk}",
        {"decision": "approve", "reason": "looks right"},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Approved: the execution runs now." in page
    assert "Approved by user:otto (portal)" in page and "looks right" in page
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING
    audit = AuditEntry.objects.get(event="approval.approved", execution_id=execution.pk)
    assert audit.actor == "user:otto" and audit.details == {
        "channel": "portal",
        "reason": "looks right",
        "approvals": audit.details["approvals"],
    }

    late = ada.post(f"/ui/approvals/{execution.pk}", {"decision": "decline"}, follow=True)
    assert "Already approved by user:otto" in late.content.decode()
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING


def test_decline_with_a_reason_and_bad_input():
    execution = _parked()
    otto = logged_in(make_user("otto", "operator"))
    bad = otto.post(f"/ui/approvals/{execution.pk}", {"decision": "maybe"})
    assert bad.status_code == 422 and "Fix this to continue" in bad.content.decode()
    page = otto.post(
        f"/ui/approvals/{execution.pk}", {"decision": "decline", "reason": "peak hour"}, follow=True
    ).content.decode()
    assert "Declined by user:otto (portal)" in page and "peak hour" in page
    execution.refresh_from_db()
    assert execution.state == ExecutionState.CANCELLED
    assert otto.get("/ui/approvals/999999").status_code == 404


def test_four_eyes_refuses_the_requesters_approval_on_the_page():
    services.playbook_save(
        document=playbook_yaml(
            "restart-worker", URL, extra_trigger="approval: required\nfour_eyes: true"
        ),
        actor="tests",
    )
    otto = logged_in(make_user("otto", "operator"))
    service = _down("worker-1")
    otto.post(f"/ui/services/{service.pk}/run", {"playbook": "restart-worker"})
    execution = Execution.objects.get(service=service)
    page = otto.get(f"/ui/approvals/{execution.pk}").content.decode()
    assert "You requested this run" in page
    refused = otto.post(f"/ui/approvals/{execution.pk}", {"decision": "approve"}, follow=True)
    assert "Four-eyes: whoever requested a run cannot approve it." in refused.content.decode()
    assert ApprovalRequest.objects.get(execution=execution).state == "pending"


def test_expired_and_recovered_states_are_shown():
    expired = _parked()
    approvals_due(now=timezone.now() + timedelta(hours=25))
    viewer = logged_in(make_user("vera", "viewer"))
    page = viewer.get(f"/ui/approvals/{expired.pk}").content.decode()
    assert "Expired: nobody approved in time; the alert escalated" in page
    assert 'name="decision"' not in page

    recovered = _parked(name="worker-2")
    with transaction.atomic():
        event_record(kind="service.recovered", service_id=recovered.service_id)
    consumer_dispatch("remediation")
    page = viewer.get(f"/ui/approvals/{recovered.pk}").content.decode()
    assert "Cancelled: the service recovered on its own" in page


def test_inbox_and_execution_page_link_to_the_approval_page():
    execution = _parked()
    viewer = logged_in(make_user("vera", "viewer"))
    assert f'href="/ui/approvals/{execution.pk}"' in viewer.get("/ui/approvals").content.decode()
    otto = logged_in(make_user("otto", "operator"))
    detail = otto.get(f"/ui/executions/{execution.pk}").content.decode()
    assert f'href="/ui/approvals/{execution.pk}"' in detail
