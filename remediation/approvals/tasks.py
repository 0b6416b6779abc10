"""Thin tasks: the Slack message of an approval request, posted and updated after commit. A
post or update Slack refuses for a while (429, 5xx, a transient ``ok: false``) is retried by
Celery when ``slack.slack_post`` or ``slack.slack_update`` says so."""

from __future__ import annotations

from celery import shared_task

from remediation.approvals import slack


@shared_task(
    bind=True,
    name="approvals.slack_post",
    ignore_result=True,
    max_retries=None,  # slack.POST_ATTEMPTS bounds the attempts
    time_limit=60,
    soft_time_limit=50,
)
def slack_post(self, request_id: int) -> None:
    _retry_when_asked(
        self, slack.slack_post(request_id=request_id, attempt=self.request.retries + 1)
    )


@shared_task(
    bind=True,
    name="approvals.slack_update",
    ignore_result=True,
    max_retries=None,  # slack.POST_ATTEMPTS bounds the attempts
    time_limit=60,
    soft_time_limit=50,
)
def slack_update(self, request_id: int) -> None:
    _retry_when_asked(
        self, slack.slack_update(request_id=request_id, attempt=self.request.retries + 1)
    )


def _retry_when_asked(task, result: slack.PostResult) -> None:
    if result.retry_in is not None:
        raise task.retry(countdown=result.retry_in)
