"""The Slack side of an approval: the request message (chat.postMessage to the team's channel)
and its update in place (chat.update) once decided, expired or cancelled.

Uses the Slack settings alerting uses (SLACK_BOT_TOKEN, SLACK_API_BASE_URL, the team's channel
or SLACK_DEFAULT_CHANNEL). Clicks come back through the interactivity endpoint (``/slack/events``),
which verifies them and calls ``approval_decide`` with channel ``slack``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from remediation.approvals import metrics
from remediation.approvals.models import ApprovalRequest, ApprovalState, approval_page_url
from remediation.playbooks import compliance, engine, selectors

logger = logging.getLogger(__name__)
APPROVE = "medic_approval_approve"
DECLINE = "medic_approval_decline"


def client() -> WebClient:
    return WebClient(
        token=settings.SLACK_BOT_TOKEN, base_url=settings.SLACK_API_BASE_URL + "/", timeout=10
    )


def _link(request: ApprovalRequest) -> str:
    execution = request.execution
    link = f"<{approval_page_url(execution.pk)}|Full context in Medic>"
    if execution.alert_id:
        link += (
            f" · <{settings.MEDIC_BASE_URL}/ui/alerts/{execution.alert_id}"
            f"|Alert {execution.alert_id}>"
        )
    return link


def _score(execution) -> str:
    score = selectors.version_scores(execution.playbook).get(execution.version.version) or {}
    if not score.get("scored"):
        return "no scored runs yet"
    rate = score.get("success_rate")
    return f"{score.get('recovered', 0)}/{score['scored']} recovered" + (
        f" ({rate:.0%})" if isinstance(rate, int | float) else ""
    )


def _outcome(request: ApprovalRequest) -> str:
    who = request.decided_by or "Medic"
    text = {
        ApprovalState.APPROVED: f":white_check_mark: Approved by {who} ({request.channel})",
        ApprovalState.DECLINED: f":no_entry: Declined by {who} ({request.channel})",
        ApprovalState.EXPIRED: ":hourglass: Expired: nobody approved in time; the alert escalated",
        ApprovalState.CANCELLED: f":information_source: Cancelled: {request.reason or 'cancelled'}",
    }.get(request.state, "")
    if request.reason and request.state in (ApprovalState.APPROVED, ApprovalState.DECLINED):
        text += f": {request.reason}"
    return text


def message(request: ApprovalRequest) -> dict:
    """The request as Slack blocks: what, where, why, each step resolved (secrets masked), the
    playbook's recent score, and the buttons while it waits."""
    execution = request.execution
    lines = [
        f"*Service:* {execution.service_name}",
        f"*Alert:* {execution.alert_id or 'none'}",
        f"*Playbook:* {execution.playbook.name} v{execution.version.version} ({execution.mode})",
        f"*Requested by:* {request.requested_by}",
        f"*Why it waits:* {request.why}",
        f"*Recent outcomes:* {_score(execution)}",
    ]
    if request.four_eyes:
        lines.append("*Four-eyes:* the requester cannot approve")
    if request.approvers_needed > 1:
        lines.append(
            f"*Approvers:* {len(request.approvals)}/{request.approvers_needed} "
            f"({', '.join(a['actor'] for a in request.approvals) or 'none yet'})"
        )
    steps = "\n".join(
        f"{i + 1}. `{s['name']}` ({s['type']}): {_short(s['would'])}"
        for i, s in enumerate(engine.execution_preview(execution))
    )
    title = f"Approval needed: {execution.playbook.name} on {execution.service_name}"
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": ("*Steps:*\n" + steps)[:3000]}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _link(request)}],
        },
    ]
    if request.state == ApprovalState.PENDING:
        value = str(execution.pk)
        blocks.append(
            {
                "type": "actions",
                "block_id": f"medic_approval_{execution.pk}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE,
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": value,
                    },
                    {
                        "type": "button",
                        "action_id": DECLINE,
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Decline"},
                        "value": value,
                    },
                ],
            }
        )
    else:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _outcome(request)}})
    return {"text": title, "blocks": blocks}


def _short(would) -> str:
    import json

    text = json.dumps(would, sort_keys=True) if not isinstance(would, str) else would
    return text[:400]


def channel_for(request: ApprovalRequest) -> str:
    from alerting.routing import slack_channel_for

    service = request.execution.service
    if service is None:
        return settings.SLACK_DEFAULT_CHANNEL
    channel, _ = slack_channel_for(service)
    return channel


# Errors Slack documents as transient for chat.postMessage and chat.update: worth another
# attempt. Anything else (channel_not_found, not_in_channel, invalid_auth, invalid_blocks,
# message_not_found, ...) will not change by itself and is recorded at once.
RETRYABLE = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "service_unavailable",
        "fatal_error",
        "internal_error",
        "request_timeout",
    }
)
POST_ATTEMPTS = 6
MAX_RETRY_AFTER = 300


@dataclass(frozen=True)
class PostResult:
    posted: bool = False
    retry_in: int | None = None  # seconds; None: no further attempt
    error: str = ""


def _backoff(attempt: int) -> int:
    return min(MAX_RETRY_AFTER, 2**attempt)


def _retry_after(response) -> int | None:
    value = (getattr(response, "headers", None) or {}).get("Retry-After") or (
        getattr(response, "headers", None) or {}
    ).get("retry-after")
    try:
        return max(1, min(MAX_RETRY_AFTER, int(float(value))))
    except (TypeError, ValueError):
        return None


def _classify(exc: Exception, attempt: int) -> tuple[str, int | None]:
    """(error, seconds before the next attempt or None when retrying cannot help)."""
    if not isinstance(exc, SlackApiError):
        # No answer (connection refused, timeout, a body that is not Slack's JSON).
        return "connection_error", _backoff(attempt)
    response = exc.response
    status = getattr(response, "status_code", 200) or 200
    data = getattr(response, "data", None)
    error = (data.get("error") if isinstance(data, dict) else "") or f"http_{status}"
    if status == 429 or error in ("ratelimited", "rate_limited"):
        return error, _retry_after(response) or _backoff(attempt)
    if status >= 500 or error in RETRYABLE:
        return error, _backoff(attempt)
    return error, None


def _refused(exc: Exception, attempt: int, what: str) -> PostResult:
    """A failed call to Slack as a result: when to try again (logged), or, for a permanent
    refusal or the last attempt, the error to record."""
    error, retry_in = _classify(exc, attempt)
    if retry_in is not None and attempt < POST_ATTEMPTS:
        logger.info("Slack refused %s (%s): retry %d in %ss", what, error, attempt, retry_in)
        return PostResult(retry_in=retry_in, error=error)
    if retry_in is not None:
        error = f"{error} (after {attempt} attempts)"
    return PostResult(error=error)


def slack_post(*, request_id: int, attempt: int = 1) -> PostResult:
    """Post the request message, once. A retryable refusal (429 with Retry-After, 5xx, a
    documented transient ``ok: false``) answers when to try again; a permanent one, or the
    last attempt, is recorded on the request, in the audit log and in a metric."""
    request = ApprovalRequest.objects.select_related(
        "execution", "execution__playbook", "execution__version", "execution__service"
    ).get(pk=request_id)
    if request.slack_ts or request.slack_error or not settings.SLACK_BOT_TOKEN:
        return PostResult()
    channel = channel_for(request)
    if not channel:
        return PostResult()
    # One post in flight per request: a duplicate task (a redelivery) waits for this one.
    claim = f"approval-slack-post:{request_id}"
    if not cache.add(claim, attempt, timeout=60):
        return PostResult(retry_in=_backoff(attempt))
    try:
        try:
            answer = client().chat_postMessage(
                channel=channel, unfurl_links=False, **message(request)
            )
        except Exception as exc:  # every failure is classified below
            result = _refused(exc, attempt, f"approval message {request_id}")
            if result.retry_in is not None:
                metrics.SLACK_RETRIES.labels(error=result.error).inc()
            else:
                _failed(request, channel, result.error)
            return result
        ApprovalRequest.objects.filter(pk=request_id, slack_ts="").update(
            slack_channel=answer.get("channel") or channel, slack_ts=answer["ts"]
        )
        return PostResult(posted=True)
    finally:
        cache.delete(claim)


def _failed(request: ApprovalRequest, channel: str, error: str) -> None:
    logger.warning("Slack approval message %s not posted: %s", request.pk, error)
    execution = request.execution
    with transaction.atomic():
        ApprovalRequest.objects.filter(pk=request.pk).update(slack_error=error[:200])
        compliance.audit(
            actor="system:approvals",
            event="approval.slack_failed",
            object_type="execution",
            object_id=str(execution.pk),
            details={"channel": channel, "error": error},
            playbook=execution.playbook.name,
            service=execution.service_name,
            execution_id=execution.pk,
        )
    metrics.SLACK_FAILURES.labels(error=error.split(" ", 1)[0]).inc()


def slack_update(*, request_id: int, attempt: int = 1) -> PostResult:
    """Update the message in place (decision, expiry, auto-cancel, a first of two approvals)
    with the request as it is now, so a retried update never shows an older state. A retryable
    refusal answers when to try again, as for the post; a permanent one (message_not_found,
    cant_update_message, invalid_auth, ...) or the last attempt is logged and counted."""
    request = ApprovalRequest.objects.select_related(
        "execution", "execution__playbook", "execution__version", "execution__service"
    ).get(pk=request_id)
    if not request.slack_ts or not settings.SLACK_BOT_TOKEN:
        return PostResult()
    try:
        client().chat_update(channel=request.slack_channel, ts=request.slack_ts, **message(request))
    except Exception as exc:  # every failure is classified below
        result = _refused(exc, attempt, f"the update of approval message {request_id}")
        if result.retry_in is None:
            logger.warning("Slack approval message %s not updated: %s", request_id, result.error)
            metrics.SLACK_UPDATE_FAILURES.labels(error=result.error.split(" ", 1)[0]).inc()
        return result
    return PostResult(posted=True)
