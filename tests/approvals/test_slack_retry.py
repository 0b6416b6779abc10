"""Posting the approval request to Slack survives what Slack answers under load: 429 with
Retry-After and the transient errors Slack documents (service_unavailable, fatal_error,
internal_error, HTTP 5xx) are retried by Celery with backoff and the message is posted once;
a permanent error (channel_not_found, invalid_auth) is not retried, and is recorded on the
request, in the audit log, in a metric and on the portal's approval page.

The fake is tests.fakes.FakeSlack, which answers as Slack does (``ok: false`` with Slack's error
names, 429 + Retry-After). The permanent errors and the last attempt run in-process (eager
Celery); test_slack_retry_e2e.py runs the retry schedule in a real worker.
"""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from remediation.approvals.models import ApprovalRequest
from remediation.approvals.slack import POST_ATTEMPTS
from remediation.audit.models import AuditEntry
from tests.approvals.test_approvals import _parked
from tests.dashboard.conftest import logged_in, make_user
from tests.fakes import FakeSlack
from tests.test_delivery_receivers import fake_slack  # noqa: F401 (fixture)

APPROVAL = "Approval needed"


def _failures(error: str) -> float:
    return REGISTRY.get_sample_value("medic_approval_slack_failures_total", {"error": error}) or 0


def _approval_posts(fake: FakeSlack) -> list[dict]:
    return [
        json.loads(r.body)
        for r in fake.requests
        if r.path == "/api/chat.postMessage" and json.loads(r.body)["text"].startswith(APPROVAL)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "status"),
    [("channel_not_found", 200), ("invalid_auth", 200), ("not_in_channel", 200)],
)
def test_a_permanent_error_is_recorded_and_shown_not_retried(
    fake_slack,  # noqa: F811
    error,
    status,
    django_capture_on_commit_callbacks,
):
    before = _failures(error)
    fake_slack.fail_next(error, status, text_prefix=APPROVAL)
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    assert len(_approval_posts(fake_slack)) == 1  # asked once, never again
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.slack_ts == "" and request.slack_error == error
    audit = AuditEntry.objects.get(event="approval.slack_failed", execution_id=execution.pk)
    assert audit.details == {"channel": "C0DEFAULT", "error": error}
    assert _failures(error) == before + 1
    page = logged_in(make_user("vera", "viewer")).get(f"/ui/approvals/{execution.pk}")
    assert f"The Slack message was not posted</strong>: {error}" in page.content.decode()
    # the request still waits and can be decided elsewhere
    assert request.state == "pending"


@pytest.mark.django_db
def test_retryable_errors_give_up_after_the_last_attempt(
    fake_slack,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    """Eager Celery runs the retries at once (countdowns are the worker's business, below)."""
    before = _failures("ratelimited")
    for _ in range(POST_ATTEMPTS):
        fake_slack.fail_next("ratelimited", 429, text_prefix=APPROVAL, **{"Retry-After": "1"})
    with django_capture_on_commit_callbacks(execute=True):
        execution = _parked()
    assert len(_approval_posts(fake_slack)) == POST_ATTEMPTS
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.slack_ts == ""
    assert request.slack_error == f"ratelimited (after {POST_ATTEMPTS} attempts)"
    assert AuditEntry.objects.filter(event="approval.slack_failed").count() == 1
    assert _failures("ratelimited") == before + 1
