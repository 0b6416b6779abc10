"""Thin tasks: the Slack message of an approval request, posted and updated after commit."""

from __future__ import annotations

from celery import shared_task

from remediation.approvals import slack


@shared_task(name="approvals.slack_post", ignore_result=True, time_limit=60, soft_time_limit=50)
def slack_post(request_id: int) -> None:
    slack.slack_post(request_id=request_id)


@shared_task(name="approvals.slack_update", ignore_result=True, time_limit=60, soft_time_limit=50)
def slack_update(request_id: int) -> None:
    slack.slack_update(request_id=request_id)
