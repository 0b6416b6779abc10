"""Slack interactivity for approvals: the Approve / Decline buttons of a request message.

slack-bolt handles the payload and routing (its Django adapter); before it sees anything, the
request is verified here: the HMAC signature with SLACK_SIGNING_SECRET, a timestamp within five
minutes, and a signature never seen before in that window (a replay). Anything else answers 401,
decides nothing and is counted in ``medic_slack_requests_refused_total``.

A Slack user acts as the Medic user an admin linked to it in the portal (Slack users page), or
else the Medic user with the same e-mail address, verified by Slack (``users.info``:
``is_email_confirmed``), and must be an operator or an admin; anyone else gets an ephemeral
"not allowed" and nothing changes.
"""

from __future__ import annotations

import hmac
import logging
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import Counter
from slack_bolt import App
from slack_bolt.adapter.django import SlackRequestHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from dashboard.roles import Role, role_of
from dashboard.slack_links import linked_user
from medic.errors import MedicError
from remediation.approvals import slack
from remediation.approvals.services import approval_decide

logger = logging.getLogger(__name__)
REPLAY_WINDOW = 300
REFUSED = Counter(
    "medic_slack_requests_refused_total",
    "Slack interactivity requests refused (bad_signature, stale, replayed, not_configured).",
    ["why"],
)
NOT_ALLOWED = Counter(
    "medic_slack_approvals_not_allowed_total",
    "Approval clicks by Slack users who are not Medic operators or admins.",
)


def _refuse(why: str, message: str) -> JsonResponse:
    REFUSED.labels(why=why).inc()
    return JsonResponse({"error": {"code": why, "message": message, "fields": {}}}, status=401)


def _medic_user(client, slack_user_id: str):
    """The Medic user an admin linked to this Slack user (dashboard.slack_links), else the
    active Medic user whose e-mail Slack has verified for this Slack user, else None."""
    linked = linked_user(slack_user_id)
    if linked is not None:
        return linked
    try:
        info = client.users_info(user=slack_user_id)
    except SlackApiError as exc:
        logger.warning("users.info failed for %s: %s", slack_user_id, exc.response.get("error"))
        return None
    user = info.get("user") or {}
    email = (user.get("profile") or {}).get("email") or ""
    if not email or not user.get("is_email_confirmed"):
        return None
    return get_user_model().objects.filter(email__iexact=email, is_active=True).first()


def _click(body: dict, respond, client, *, approve: bool) -> None:
    action = body["actions"][0]
    user = _medic_user(client, body["user"]["id"])
    role = role_of(user) if user is not None else None
    if role is None or role < Role.OPERATOR:
        NOT_ALLOWED.inc()
        respond(
            text="Not allowed: only Medic operators and admins (linked to your Slack user in "
            "Medic, or matched by your verified Slack e-mail) can approve or decline.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    try:
        approval_decide(
            execution_id=int(action["value"]),
            actor=f"user:{user.get_username()}",
            approve=approve,
            channel="slack",
            reason="",
        )
    except MedicError as exc:
        respond(text=exc.message, response_type="ephemeral", replace_original=False)


def _app() -> App:
    app = App(
        signing_secret=settings.SLACK_SIGNING_SECRET,
        token=settings.SLACK_BOT_TOKEN,
        client=slack.client(),
        token_verification_enabled=False,
        request_verification_enabled=False,  # done in slack_events, with the replay check
        process_before_response=True,
    )

    @app.action(slack.APPROVE)
    def approve_clicked(ack, body, respond, client):
        ack()
        _click(body, respond, client, approve=True)

    @app.action(slack.DECLINE)
    def decline_clicked(ack, body, respond, client):
        ack()
        _click(body, respond, client, approve=False)

    return app


@csrf_exempt
def slack_events(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    if not settings.SLACK_SIGNING_SECRET or not settings.SLACK_BOT_TOKEN:
        return _refuse("not_configured", "SLACK_SIGNING_SECRET or SLACK_BOT_TOKEN is not set.")
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    body = request.body
    expected = SignatureVerifier(settings.SLACK_SIGNING_SECRET).generate_signature(
        timestamp=timestamp, body=body
    )
    if not timestamp.isdigit() or not hmac.compare_digest(expected or "", signature):
        return _refuse("bad_signature", "The request signature does not match.")
    if abs(time.time() - int(timestamp)) > REPLAY_WINDOW:
        return _refuse("stale", "The request timestamp is outside the five-minute window.")
    if not cache.add(f"slack-signature:{signature}", 1, timeout=REPLAY_WINDOW + 60):
        return _refuse("replayed", "This request was already received.")
    return SlackRequestHandler(app=_app()).handle(request)
