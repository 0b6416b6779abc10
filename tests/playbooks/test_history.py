"""History recorded from another system (the Medic v1 import): executions, approval requests and
audit rows that are read-only records, never due, scored, decidable or counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from medic.errors import Conflict, InvalidInput
from remediation.approvals.services import approval_decide, approval_history_record
from remediation.audit.models import AuditEntry
from remediation.audit.services import audit_record
from remediation.models import Script
from remediation.playbooks.models import Execution
from remediation.playbooks.scoring import outcomes_score
from remediation.playbooks.services import execution_history_record, playbook_save
from remediation.services import script_create, script_disable
from tests.factories import ServiceFactory
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def playbook():
    return playbook_save(
        document=playbook_yaml("restart", "https://hooks.example"), actor="tests"
    ).playbook


AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _record(playbook, **overrides):
    at = AT
    values = {
        "playbook": playbook,
        "key": "elsewhere:1",
        "state": "completed",
        "service": None,
        "service_name": "worker-1",
        "created_at": at,
        "finished_at": at + timedelta(minutes=3),
        "steps": [
            {
                "name": "restart",
                "type": "webhook",
                "state": "succeeded",
                "started_at": at,
                "finished_at": at + timedelta(seconds=1),
                "result": {"output": "202"},
            }
        ],
        "source": {"source": "medic-v1"},
    }
    return execution_history_record(**{**values, **overrides})


def test_a_recorded_execution_is_final_never_due_scored_or_automatic(playbook):
    execution, written = _record(playbook, service=ServiceFactory(heartbeat_name="worker-1"))
    assert written and execution.state == "completed" and execution.due_at is None
    assert not execution.automatic and execution.trigger["kind"] == "history.import"
    assert [(s.name, s.state) for s in execution.steps.all()] == [("restart", "succeeded")]
    assert outcomes_score() == 0
    execution.refresh_from_db()
    assert execution.outcome == ""

    # The same data again writes nothing; a change updates the same row.
    again, written = _record(playbook, service=execution.service)
    assert (again.pk, written) == (execution.pk, False)
    changed, written = _record(playbook, service=execution.service, state="failed", error="boom")
    assert (changed.pk, written, changed.state) == (execution.pk, True, "failed")
    assert Execution.objects.count() == 1

    with pytest.raises(InvalidInput):
        _record(playbook, key="elsewhere:2", state="running")


def test_a_recorded_approval_is_never_pending_and_cannot_be_decided(playbook):
    execution, _ = _record(playbook, state="cancelled")
    values = {
        "execution": execution,
        "mode": "required",
        "created_at": execution.created_at,
        "deadline_at": execution.created_at + timedelta(hours=1),
        "decided_at": None,
        "decided_by": "",
        "channel": "system",
        "why": "undecided elsewhere",
    }
    with pytest.raises(InvalidInput):
        approval_history_record(state="pending", **values)
    request, written = approval_history_record(state="cancelled", **values)
    assert written and request.state == "cancelled"
    assert approval_history_record(state="cancelled", **values) == (request, False)
    with pytest.raises(Conflict):
        approval_decide(execution_id=execution.pk, actor="user:ops", approve=True, channel="api")


def test_an_audit_row_can_carry_the_time_it_happened():
    at = timezone.now() - timedelta(days=3)
    entry = audit_record(
        actor="U0APPROVER",
        event="v1.approved",
        object_type="execution",
        object_id="v1:7",
        details={"source": "medic-v1"},
        at=at,
    )
    assert AuditEntry.objects.get(pk=entry.pk).created_at == at


def test_a_shadow_import_may_name_a_disabled_script():
    script_create(name="restart-svc", actor="tests", run_local=True, body="#!/bin/sh\ntrue\n")
    script_disable(name="restart-svc", actor="tests")
    document = (
        "name: uses-script\nmode: shadow\ntrigger: {service_pattern: '*'}\n"
        "steps:\n  - {name: s, type: script, script: restart-svc}\n"
    )
    with pytest.raises(InvalidInput, match="No registered script named 'restart-svc'"):
        playbook_save(document=document, actor="tests")
    saved = playbook_save(document=document, actor="import", disabled_scripts=True)
    assert saved.created and not Script.objects.get(name="restart-svc").enabled
