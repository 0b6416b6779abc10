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


def test_incident_links_to_the_portal_approval_page(
    pagerduty, settings, django_capture_on_commit_callbacks
):
    settings.MEDIC_BASE_URL = "https://medic.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    _, update = [r.json() for r in pagerduty.wait_for(2)]
    page = f"https://medic.example.com/ui/approvals/{execution.pk}"
    # the incident's update (same dedup key) links the approval page first, then the alert
    assert update["links"][0] == {"href": page, "text": "Approve or decline in Medic"}
    assert update["links"][1]["href"] == f"https://medic.example.com/ui/alerts/{execution.alert_id}"
    approval = update["payload"]["custom_details"]["approval"]
    assert approval["url"] == page
    assert approval["state"] == "pending" and approval["mode"] == "required"
    assert approval["why"] == "approval required by the playbook"
    assert approval["requested_by"] == execution.requested_by
    assert approval["deadline_at"].startswith(str(execution.created_at.year))
