"""A real Celery worker posts the approval request to a fake Slack that answers 429 with
Retry-After, then 503 service_unavailable, then ``ok: false, fatal_error``: the task is retried
with backoff and the message is posted exactly once."""

from __future__ import annotations

import pytest

from remediation.approvals.models import ApprovalRequest
from remediation.audit.models import AuditEntry
from tests.approvals.test_approvals import _parked
from tests.approvals.test_slack_retry import APPROVAL, _approval_posts
from tests.playbooks.test_durability_e2e import _broker, _wait  # noqa: F401 (fixture)
from tests.test_delivery_receivers import fake_slack  # noqa: F401 (fixture)


@pytest.mark.e2e
@pytest.mark.timeout(240)
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_429_and_transient_errors_and_posts_once(
    fake_slack,  # noqa: F811
    start_worker,
):
    fake_slack.fail_next("ratelimited", 429, text_prefix=APPROVAL, **{"Retry-After": "1"})
    fake_slack.fail_next("service_unavailable", 503, text_prefix=APPROVAL)
    fake_slack.fail_next("fatal_error", 200, text_prefix=APPROVAL)
    worker = start_worker(beat=False)
    execution = _parked()  # committed: the worker gets the post task
    request = _wait(
        lambda: ApprovalRequest.objects.filter(execution=execution, slack_ts__gt="").first(),
        120,
        "the approval message to be posted",
        [worker],
    )
    posts = _approval_posts(fake_slack)
    assert len(posts) == 4  # three refusals, then the one that was accepted
    accepted = [m for m in fake_slack.accepted if m["text"].startswith(APPROVAL)]
    assert len(accepted) == 1 and accepted[0]["channel"] == "C0DEFAULT"
    assert request.slack_channel == "C0DEFAULT" and request.slack_error == ""
    assert not AuditEntry.objects.filter(event="approval.slack_failed").exists()
