"""One small class per integration. ``send`` returns the HTTP outcome or raises
``TransientError`` (worth retrying: timeouts, connection errors, 5xx, 429) or ``PermanentError``
(a retry cannot help: other 4xx, an API's explicit refusal)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass

import requests
from django.conf import settings

from alerting.models import Alert, AlertReason, Channel, Delivery, NotificationEvent
from medic.crypto import DecryptionError, decrypt

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


def _secret(delivery: Delivery, name: str) -> str:
    target = delivery.notification_target
    token = target.secrets.get(name) if target is not None else None
    if not token:
        return ""
    try:
        return decrypt(token)
    except DecryptionError as exc:
        raise PermanentError(f"secret '{name}' of target '{target.name}': {exc}") from exc


def _post(
    url: str,
    *,
    payload: dict | None = None,
    data: bytes | None = None,
    headers: dict | None = None,
    method: str = "POST",
    timeout: float | None = None,
) -> Outcome:
    timeout = timeout or settings.MEDIC_NOTIFY_TIMEOUT_SECONDS
    try:
        response = _session.request(
            method,
            url,
            json=payload,
            data=data,
            headers=headers or {},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.Timeout as exc:
        raise TransientError(f"timed out after {timeout}s") from exc
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
    """The alert's page in the admin portal (timeline, deliveries, service)."""
    return f"{settings.MEDIC_BASE_URL}/ui/alerts/{alert.pk}"


# Alerts that report an event (nothing that a heartbeat could end) rather than a service down.
EVENT_HEADLINES = {
    AlertReason.SCRIPT_SKIPPED: ":warning: *{service}*: a remediation script was refused",
}


def template_variables(delivery: Delivery) -> dict:
    """The variables a webhook body template may use (docs/alert-routing.md lists them)."""
    alert = delivery.alert
    service = alert.service
    status = {"trigger": "down", "renotify": "down", "resolve": "up"}[delivery.event]
    details = alert.details or {}

    def iso(value):
        return value.isoformat() if value else None

    return {
        "exit_code": details.get("exit_code"),
        "output_tail": details.get("output_tail"),
        "run_id": details.get("run_id"),
        "duration_ms": details.get("duration_ms"),
        "event": delivery.event,
        "status": status,
        "service": service.heartbeat_name,
        "service_id": service.pk,
        "service_name": service.service_name,
        "alert_id": alert.pk,
        "dedup_key": alert.dedup_key,
        "summary": alert.summary,
        "reason": alert.reason,
        "priority": alert.priority,
        "team": service.team,
        "runbook": service.runbook,
        "opened_at": iso(alert.opened_at),
        "resolved_at": iso(alert.resolved_at),
        "last_heartbeat_at": iso(service.last_heartbeat_at),
        "notify_count": alert.notify_count,
        "dashboard_link": alert_link(alert),
        "delivery_id": delivery.pk,
    }


_VAR = re.compile(r"\$\{([a-z_]+)\}")


def render_template(template, variables: dict):
    """Substitute ``${name}`` in every string of a JSON template. A string that is exactly one
    placeholder takes the variable's JSON type (number, null); otherwise it is interpolated as
    text. Unknown names are left as they are (validation rejects them when the target is saved).
    """
    if isinstance(template, dict):
        return {k: render_template(v, variables) for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, variables) for v in template]
    if isinstance(template, str):
        whole = _VAR.fullmatch(template)
        if whole and whole.group(1) in variables:
            return variables[whole.group(1)]

        def sub(match: re.Match) -> str:
            value = variables.get(match.group(1), match.group(0))
            return "" if value is None else str(value)

        return _VAR.sub(sub, template)
    return template


def window_payload(delivery: Delivery) -> dict:
    """The fixed body of a maintenance-window notice (body templates are for alerts)."""
    from heartbeats.maintenance import covered_services

    window = delivery.window
    names = list(covered_services(window).values_list("heartbeat_name", flat=True)[:50])
    return {
        "event": delivery.event,
        "window": window.name,
        "description": window.description,
        "starts_at": delivery.window_occurrence.get("starts_at"),
        "ends_at": delivery.window_occurrence.get("ends_at"),
        "timezone": window.time_zone,
        "scope": window.scope,
        "services": names,
        "delivery_id": delivery.pk,
    }


def window_text(delivery: Delivery) -> str:
    data = window_payload(delivery)
    verb = "started" if delivery.event == NotificationEvent.MAINTENANCE_STARTED else "ended"
    icon = ":construction:" if verb == "started" else ":white_check_mark:"
    covered = ", ".join(data["services"][:10]) + (" …" if len(data["services"]) > 10 else "")
    return (
        f"{icon} Maintenance window *{data['window']}* {verb} "
        f"({data['starts_at']} → {data['ends_at']}). Alerts for {covered or 'no services'} are "
        + ("held until it ends." if verb == "started" else "sent again; any still down follow.")
    )


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Medic-Signature``: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookTransport:
    channel = Channel.WEBHOOK

    def body(self, delivery: Delivery) -> bytes:
        if delivery.window_id is not None:
            return json.dumps(window_payload(delivery), separators=(",", ":")).encode()
        target = delivery.notification_target
        variables = template_variables(delivery)
        template = (target.config.get("body_template") if target else None) or DEFAULT_BODY
        return json.dumps(render_template(template, variables), separators=(",", ":")).encode()

    def send(self, delivery: Delivery) -> Outcome:
        target = delivery.notification_target
        if target is None:
            raise PermanentError("webhook delivery without a target")
        config = target.config
        body = self.body(delivery)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"Medic/{settings.VERSION}",
            "X-Medic-Event": delivery.event,
            "X-Medic-Delivery": str(delivery.pk),
        }
        headers.update(config.get("headers", {}))
        for name in target.secrets.get("headers", {}):
            try:
                headers[name] = decrypt(target.secrets["headers"][name])
            except DecryptionError as exc:
                raise PermanentError(f"secret header '{name}': {exc}") from exc
        signing = _secret(delivery, "signing_secret")
        if signing:
            headers["X-Medic-Signature"] = sign(signing, int(time.time()), body)
        return _post(
            config["url"],
            data=body,
            headers=headers,
            method=config.get("method", "POST"),
            timeout=config.get("timeout_seconds"),
        )


# Every variable a body template may use (docs/alert-routing.md lists them); the body sent
# without a template carries all of them.
TEMPLATE_VARIABLES = (
    "event",
    "status",
    "service",
    "service_id",
    "service_name",
    "alert_id",
    "dedup_key",
    "summary",
    "reason",
    "priority",
    "team",
    "runbook",
    "opened_at",
    "resolved_at",
    "last_heartbeat_at",
    "notify_count",
    "delivery_id",
    "dashboard_link",
    "exit_code",
    "output_tail",
    "run_id",
    "duration_ms",
)
DEFAULT_BODY = {name: "${" + name + "}" for name in TEMPLATE_VARIABLES}


class SlackTransport:
    channel = Channel.SLACK

    def payload(self, delivery: Delivery) -> dict:
        if delivery.window_id is not None:
            text = window_text(delivery)
            return {"channel": delivery.target, "text": text, "unfurl_links": False}
        alert = delivery.alert
        service = alert.service
        if delivery.event == NotificationEvent.RESOLVE:
            headline = f":white_check_mark: *{_service_line(alert)}* recovered"
        elif delivery.event == NotificationEvent.RENOTIFY:
            headline = f":rotating_light: *{_service_line(alert)}* is still down"
        elif alert.reason in EVENT_HEADLINES:
            headline = EVENT_HEADLINES[alert.reason].format(service=_service_line(alert))
        else:
            headline = f":rotating_light: *{_service_line(alert)}* is down"
        lines = [
            headline,
            f"*Heartbeat:* `{service.heartbeat_name}`   *Priority:* {alert.priority.upper()}"
            f"   *Team:* {service.team}",
            f"*Last heartbeat:* {_last_seen(alert)}",
        ]
        if delivery.event != NotificationEvent.RESOLVE:
            lines.append(f"*Why:* {alert.summary}")
            details = alert.details or {}
            if details.get("exit_code") is not None:
                lines.append(
                    f"*Exit code:* {details['exit_code']}   *Run:* `{details.get('run_id')}`"
                )
            if details.get("output_tail"):
                # Slack caps a section at 3,000 characters: show the end of the output.
                lines.append("*Output (tail):*\n```" + details["output_tail"][-1500:] + "```")
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
        token = _secret(delivery, "bot_token") or settings.SLACK_BOT_TOKEN
        outcome = _post(
            f"{settings.SLACK_API_BASE_URL}/chat.postMessage",
            payload=self.payload(delivery),
            headers={"Authorization": f"Bearer {token}"},
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
            "routing_key": _secret(delivery, "routing_key") or settings.PAGERDUTY_ROUTING_KEY,
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
                    **(alert.details or {}),
                },
            }
            body["links"] = [{"href": alert_link(alert), "text": "Medic alert"}]
            if service.runbook.startswith(("http://", "https://")):
                body["links"].append({"href": service.runbook, "text": "Runbook"})
        return body

    def send(self, delivery: Delivery) -> Outcome:
        return _post(f"{settings.PAGERDUTY_EVENTS_URL}/v2/enqueue", payload=self.payload(delivery))


TRANSPORTS = {
    Channel.SLACK: SlackTransport(),
    Channel.PAGERDUTY: PagerDutyTransport(),
    Channel.WEBHOOK: WebhookTransport(),
}
