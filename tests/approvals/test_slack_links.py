"""Explicit Slack user links: an admin links a Medic user to a Slack user id in the portal
(validated, unique, audited); a linked Slack user whose e-mail matches nobody can approve, the
same Slack user unlinked is told "not allowed", and only admins reach the form."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from dashboard.models import SlackUserLink
from medic.models import AuditEvent
from remediation.approvals.models import ApprovalRequest
from remediation.playbooks.models import ExecutionState
from tests.approvals.test_approvals import _parked
from tests.approvals.test_slack import _click, _send, slack  # noqa: F401 (fixture)
from tests.dashboard.conftest import logged_in, make_user

pytestmark = pytest.mark.django_db


def test_admin_links_a_slack_user_and_the_form_validates(slack):  # noqa: F811
    ada = logged_in(make_user("ada", "admin"))
    olga = get_user_model().objects.get(username="olga")
    listing = ada.get("/ui/slack-users").content.decode()
    assert "olga" in listing and "by e-mail" in listing

    bad = ada.post(f"/ui/slack-users/{olga.pk}", {"slack_user_id": "olga@example.com"})
    assert bad.status_code == 200 and "Not a Slack user id" in bad.content.decode()
    assert not SlackUserLink.objects.exists()

    done = ada.post(f"/ui/slack-users/{olga.pk}", {"slack_user_id": " u0olga1 "}, follow=True)
    assert "Slack user U0OLGA1 now acts as olga." in done.content.decode()
    assert SlackUserLink.objects.get().slack_user_id == "U0OLGA1"
    audit = AuditEvent.objects.get(event="slack_link.set")
    assert audit.actor == "user:ada" and audit.object_id == "olga"

    vic = get_user_model().objects.get(username="vic")
    taken = ada.post(f"/ui/slack-users/{vic.pk}", {"slack_user_id": "U0OLGA1"})
    assert "already linked to another Medic user" in taken.content.decode()
    assert SlackUserLink.objects.count() == 1

    removed = ada.post(f"/ui/slack-users/{olga.pk}", {"slack_user_id": ""}, follow=True)
    assert "olga has no Slack link" in removed.content.decode()
    assert not SlackUserLink.objects.exists()


def test_only_admins_reach_the_form(slack):  # noqa: F811
    olga = get_user_model().objects.get(username="olga")
    otto = logged_in(make_user("otto", "operator"))
    assert otto.get("/ui/slack-users").status_code == 403
    assert otto.post(f"/ui/slack-users/{olga.pk}", {"slack_user_id": "U1"}).status_code == 403
    assert not SlackUserLink.objects.exists()


def test_a_linked_slack_user_with_an_unrelated_email_can_approve(
    slack,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    # U-OTHER's verified e-mail belongs to no Medic user
    slack.users["U0OTHER"] = {
        "id": "U0OTHER",
        "is_email_confirmed": True,
        "profile": {"email": "someone@elsewhere.example"},
    }
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()

    # not linked yet: an ephemeral "not allowed" and nothing changes
    assert _send(*_click(slack, execution.pk, "U0OTHER")).status_code == 200
    (reply,) = slack.calls("respond")
    assert reply.json()["response_type"] == "ephemeral"
    assert reply.json()["text"].startswith("Not allowed")
    assert ApprovalRequest.objects.get(execution=execution).state == "pending"

    ada = logged_in(make_user("ada", "admin"))
    olga = get_user_model().objects.get(username="olga")
    ada.post(f"/ui/slack-users/{olga.pk}", {"slack_user_id": "U0OTHER"})
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(*_click(slack, execution.pk, "U0OTHER")).status_code == 200
    assert len(slack.calls("respond")) == 1  # no second "not allowed"
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.state == "approved" and request.decided_by == "user:olga"
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING


def test_a_link_does_not_lift_the_role_check(slack, django_capture_on_commit_callbacks):  # noqa: F811
    """A linked viewer is still a viewer."""
    vic = get_user_model().objects.get(username="vic")
    assert (
        vic.groups.filter(name="viewer").exists()
        and not Group.objects.filter(name="operator", user=vic).exists()
    )
    SlackUserLink.objects.create(user=vic, slack_user_id="U0VICTOR", linked_by="tests")
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    assert _send(*_click(slack, execution.pk, "U0VICTOR")).status_code == 200
    (reply,) = slack.calls("respond")
    assert reply.json()["text"].startswith("Not allowed")
    assert ApprovalRequest.objects.get(execution=execution).state == "pending"
