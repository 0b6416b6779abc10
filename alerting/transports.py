"""One small class per integration. ``send`` returns the HTTP outcome or raises
``TransientError`` (worth retrying: timeouts, connection errors, 5xx, 429) or ``PermanentError``
(a retry cannot help: other 4xx, an API's explicit refusal)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests
from django.conf import settings

from alerting.models import Alert, Channel, Delivery, NotificationEvent

_session = requests.Session()
_SEVERITY = {"p1": "critical", "p2": "error", "p3": "warning", "p4": "warning", "p5": "info"}


@dataclass
class Outcome:
    status_code: int | None
    body: str


class DeliveryError(Exception):
    def __init__(self, message: str, outcome: Outcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome or Outcome(None, "")


class TransientError(DeliveryError):
    pass


class PermanentError(DeliveryError):
    pass


def _post(url: str, *, payload: dict, headers: dict | None = None) -> Outcome:
    try:
        response = _session.post(
            url, json=payload, headers=headers or {}, timeout=settings.MEDIC_NOTIFY_TIMEOUT_SECONDS
        )
    except requests.Timeout as exc:
        raise TransientError(f"timed out after {settings.MEDIC_NOTIFY_TIMEOUT_SECONDS}s") from exc
    except requests.ConnectionError as exc:
        raise TransientError(f"connection failed: {exc.__class__.__name__}") from exc
    outcome = Outcome(response.status_code, response.text[:2000])
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(f"HTTP {response.status_code}", outcome)
    if response.status_code >= 400:
        raise PermanentError(f"HTTP {response.status_code}", outcome)
    return outcome


def _service_line(alert: Alert) -> str:
    service = alert.service
    return service.service_name or service.heartbeat_name


def _last_seen(alert: Alert) -> str:
    at = alert.service.last_heartbeat_at
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else "never"


def alert_link(alert: Alert) -> str:
    return f"{settings.MEDIC_BASE_URL}/v2/alerts/{alert.pk}"


class SlackTransport:
    channel = Channel.SLACK

    def payload(self, delivery: Delivery) -> dict:
        alert = delivery.alert
        service = alert.service
        if delivery.event == NotificationEvent.RESOLVE:
            headline = f":white_check_mark: *{_service_line(alert)}* recovered"
        elif delivery.event == NotificationEvent.RENOTIFY:
            headline = f":rotating_light: *{_service_line(alert)}* is still down"
        else:
            headline = f":rotating_light: *{_service_line(alert)}* is down"
        lines = [
            headline,
            f"*Heartbeat:* `{service.heartbeat_name}`   *Priority:* {alert.priority.upper()}"
            f"   *Team:* {service.team}",
            f"*Last heartbeat:* {_last_seen(alert)}",
        ]
        if service.runbook:
            lines.append(f"*Runbook:* {service.runbook}")
        lines.append(f"<{alert_link(alert)}|Alert {alert.pk}>")
        text = "\n".join(lines)
        return {
            "channel": delivery.target,
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            "unfurl_links": False,
        }

    def send(self, delivery: Delivery) -> Outcome:
        outcome = _post(
            f"{settings.SLACK_API_BASE_URL}/chat.postMessage",
            payload=self.payload(delivery),
            headers={"Authorization": f"Bearer {settings.SLACK_BOT_TOKEN}"},
        )
        # Slack answers 200 with {"ok": false, "error": ...} for refusals.
        try:
            data = json.loads(outcome.body)
        except ValueError as exc:
            raise TransientError("Slack answered with a non-JSON body", outcome) from exc
        if not data.get("ok"):
            error = data.get("error", "unknown_error")
            if error in {"ratelimited", "internal_error", "service_unavailable", "fatal_error"}:
                raise TransientError(f"Slack error: {error}", outcome)
            raise PermanentError(f"Slack error: {error}", outcome)
        return outcome


class PagerDutyTransport:
    channel = Channel.PAGERDUTY

    def payload(self, delivery: Delivery) -> dict:
        alert = delivery.alert
        service = alert.service
        body: dict = {
            "routing_key": settings.PAGERDUTY_ROUTING_KEY,
            "event_action": "resolve" if delivery.event == NotificationEvent.RESOLVE else "trigger",
            "dedup_key": alert.dedup_key,
        }
        if body["event_action"] == "trigger":
            body["payload"] = {
                "summary": alert.summary[:1024],
                "source": service.heartbeat_name,
                "severity": _SEVERITY.get(alert.priority, "warning"),
                "component": service.service_name,
                "group": service.team,
                "class": alert.reason,
                "custom_details": {
                    "heartbeat_name": service.heartbeat_name,
                    "priority": alert.priority,
                    "team": service.team,
                    "last_heartbeat": _last_seen(alert),
                    "runbook": service.runbook,
                    "alert_id": alert.pk,
                },
            }
            body["links"] = [{"href": alert_link(alert), "text": "Medic alert"}]
            if service.runbook.startswith(("http://", "https://")):
                body["links"].append({"href": service.runbook, "text": "Runbook"})
        return body

    def send(self, delivery: Delivery) -> Outcome:
        return _post(f"{settings.PAGERDUTY_EVENTS_URL}/v2/enqueue", payload=self.payload(delivery))


TRANSPORTS = {Channel.SLACK: SlackTransport(), Channel.PAGERDUTY: PagerDutyTransport()}
