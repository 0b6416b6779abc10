"""The service page's Run playbook form: operators start a matching playbook (the same service
as the API, with its approval setting), viewers neither see nor can post it."""

from __future__ import annotations

import pytest

from heartbeats.services import service_create
from remediation.playbooks import services
from remediation.playbooks.models import Execution, TriggerRecord
from tests.dashboard.conftest import logged_in, make_user
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(db):
    services.playbook_save(
        document=playbook_yaml(
            "restart-worker", "http://127.0.0.1:9", extra_trigger="approval: required"
        ),
        actor="t",
    )
    services.playbook_save(
        document=playbook_yaml("restart-db", "http://127.0.0.1:9", pattern="db-*"), actor="t"
    )
    return service_create(heartbeat_name="worker-1", alert_interval=1)


def test_operator_runs_a_matching_playbook(service):
    operator = logged_in(make_user("oscar", "operator"))
    page = operator.get(f"/ui/services/{service.pk}").content.decode()
    assert "Run playbook" in page and "restart-worker v1 (approval: required)" in page
    assert "restart-db" not in page
    response = operator.post(
        f"/ui/services/{service.pk}/run", {"playbook": "restart-worker"}, follow=True
    )
    execution = Execution.objects.get()
    assert execution.state == "pending_approval" and execution.requested_by == "user:oscar"
    assert execution.trigger["kind"] == "portal"
    assert f"execution {execution.pk}, waiting for approval" in response.content.decode()
    again = operator.post(
        f"/ui/services/{service.pk}/run", {"playbook": "restart-worker"}, follow=True
    )
    assert "not started" in again.content.decode() and Execution.objects.count() == 1
    assert TriggerRecord.objects.filter(event_kind="portal", decision="already_running").exists()


def test_viewer_sees_no_form_and_cannot_post(service):
    viewer = logged_in(make_user("vera", "viewer"))
    assert "Run playbook" not in viewer.get(f"/ui/services/{service.pk}").content.decode()
    assert (
        viewer.post(f"/ui/services/{service.pk}/run", {"playbook": "restart-worker"}).status_code
        == 403
    )
    assert Execution.objects.count() == 0
