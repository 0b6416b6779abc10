"""PagerDuty: the incident of an alert whose run waits on approval is updated (same dedup key)
with the approval summary in custom_details; the decision is kept on the alert too."""

from __future__ import annotations

import pytest

from alerting.models import Alert
from tests.approvals.test_approvals import _parked

pytestmark = pytest.mark.django_db


def test_incident_carries_the_approval_summary(
    pagerduty, writer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked(extra="\nfour_eyes: true")
    events = [r.json() for r in pagerduty.wait_for(2)]
    assert [e["event_action"] for e in events] == ["trigger", "trigger"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"]
    approval = events[1]["payload"]["custom_details"]["approval"]
    assert approval["state"] == "pending" and approval["execution_id"] == execution.pk
    assert approval["playbook"] == "restart-worker v1" and approval["four_eyes"] is True
    assert f"/v2/executions/{execution.pk}/approve" in approval["decide"]

    with django_capture_on_commit_callbacks(execute=True):
        assert writer.post(f"/v2/executions/{execution.pk}/approve").status_code == 200
    details = Alert.objects.get(pk=execution.alert_id).details["approval"]
    assert details["state"] == "approved" and details["channel"] == "api"
    assert len(pagerduty.requests) == 2  # the decision itself does not page again
