"""One small class per integration. ``send`` returns the HTTP outcome or raises
``TransientError`` (worth retrying: timeouts, connection errors, 5xx, 408, a 2xx that is not the
service's own answer), ``RateLimited`` (429 or Slack's ``ratelimited``: retried after its
``Retry-After``) or ``PermanentError`` (a retry cannot help: a redirect, other 4xx, an API's
explicit refusal). docs/alert-routing.md has the rules and the retry schedule."""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime

import requests
from django.conf import settings
from django.utils import timezone

from alerting.models import Alert, AlertReason, Channel, Delivery, NotificationEvent
from medic.crypto import DecryptionError, decrypt

_session = requests.Session()
_SEVERITY = {"p1": "critical", "p2": "error", "p3": "warning", "p4": "warning", "p5": "info"}


@dataclass
class Outcome:
    status_code: int | None
    body: str
    content_type: str = ""
    # Seconds the receiver asked us to wait (Retry-After), when it said.
    retry_after: float | None = None
    # The reply was longer than MEDIC_NOTIFY_MAX_REPLY_BYTES and was not read to its end.
    truncated: bool = False


class DeliveryError(Exception):
    def __init__(self, message: str, outcome: Outcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome or Outcome(None, "")


class TransientError(DeliveryError):
    pass


class RateLimited(TransientError):
    """The receiver is rate limiting us: wait ``outcome.retry_after`` (when given), and hold
    every delivery to the same destination as long."""


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


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After``: delay-seconds or an HTTP date (RFC 9110 10.2.3); None when absent or
    unreadable. Capped at an hour: a receiver cannot park a page for longer."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), 3600.0)


def _read_capped(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """The reply body, read while streaming and never more than ``limit`` bytes (a receiver
    cannot make a worker hold an unbounded reply); True when it was cut."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16384):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def _post(
    url: str,
    *,
    payload: dict | None = None,
    data: bytes | None = None,
    headers: dict | None = None,
    method: str = "POST",
    timeout: float | None = None,
) -> Outcome:
    """Send one request; return the outcome of a 2xx. Redirects are not followed (a signed body
    re-posted elsewhere, or a POST turned into a GET, is not a delivery) and count as a
    permanent failure: the URL is wrong until someone changes it."""
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
            stream=True,
        )
        try:
            raw, cut = _read_capped(response, settings.MEDIC_NOTIFY_MAX_REPLY_BYTES)
        finally:
            response.close()
    except requests.Timeout as exc:
        raise TransientError(f"timed out after {timeout}s") from exc
    except requests.ConnectionError as exc:
        raise TransientError(f"connection failed: {exc.__class__.__name__}") from exc
    except requests.RequestException as exc:
        raise TransientError(f"reply unreadable: {exc.__class__.__name__}") from exc
    status = response.status_code
    try:
        text = raw.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = raw.decode("utf-8", errors="replace")
    outcome = Outcome(
        status,
        text,
        response.headers.get("Content-Type", ""),
        retry_after_seconds(response.headers.get("Retry-After")),
        cut,
    )
    if status == 429:
        raise RateLimited("HTTP 429 (rate limited)", outcome)
    if status >= 500 or status in (408, 425):
        raise TransientError(f"HTTP {status}", outcome)
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        raise PermanentError(
            f"HTTP {status} redirect to {location or '(no Location)'}: not followed, the URL "
            "must be changed",
            outcome,
        )
    if status >= 400:
        raise PermanentError(f"HTTP {status}", outcome)
    if status < 200:
        raise TransientError(f"HTTP {status}", outcome)
    return outcome


def _json_object(outcome: Outcome) -> dict | None:
    if outcome.truncated:
        return None
    try:
        data = json.loads(outcome.body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _not_theirs(service: str, outcome: Outcome) -> TransientError:
    kind = outcome.content_type.split(";")[0].strip() or "no content type"
    return TransientError(
        f"HTTP {outcome.status_code} that is not {service}'s answer ({kind}): a proxy or "
        "captive portal in the way?",
        outcome,
    )


_MRKDWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def mrkdwn_escape(text) -> str:
    """Make user- or job-provided text inert in Slack mrkdwn: ``<!channel>`` and
    ``<http://x|y>`` become plain text (Slack's own rule: escape &, < and >)."""
    return str(text).translate(_MRKDWN)


_PARTIAL_ENTITY_END = re.compile(r"&[a-z]{0,3}$")
_PARTIAL_ENTITY_START = re.compile(r"^[a-z]{0,3};")


def clip(text: str, limit: int, *, keep: str = "start") -> str:
    """Shorten escaped text to ``limit`` characters with an ellipsis, never cutting an entity
    in half; ``keep="end"`` keeps the tail (job output)."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ""
    if keep == "end":
        tail = _PARTIAL_ENTITY_START.sub("", text[-(limit - 1) :])
        return "…" + tail
    head = _PARTIAL_ENTITY_END.sub("", text[: limit - 1])
    return head + "…"


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
    AlertReason.REMEDIATION_CIRCUIT_OPEN: ":no_entry: *{service}*: automatic remediation stopped",
    AlertReason.PLAYBOOK_DEMOTED: ":warning: *{service}*: a playbook now needs approval",
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
    """Slack mrkdwn: the window's and services' names are escaped (mrkdwn_escape)."""
    data = window_payload(delivery)
    verb = "started" if delivery.event == NotificationEvent.MAINTENANCE_STARTED else "ended"
    icon = ":construction:" if verb == "started" else ":white_check_mark:"
    names = [mrkdwn_escape(name) for name in data["services"][:10]]
    covered = ", ".join(names) + (" …" if len(data["services"]) > 10 else "")
    return (
        f"{icon} Maintenance window *{mrkdwn_escape(data['window'])}* {verb} "
        f"({data['starts_at']} → {data['ends_at']}). Alerts for {covered or 'no services'} are "
        + ("held until it ends." if verb == "started" else "sent again; any still down follow.")
    )


def signing_key(secret: str) -> bytes:
    """The HMAC key of a signing secret, as Standard Webhooks libraries derive it: the base64
    after ``whsec_``. Secrets generated before standard base64 was used are URL-safe base64 and
    give the same bytes once ``-``/``_`` read as ``+``/``/``; anything else (a secret typed by
    hand) is used as its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        encoded = secret[len("whsec_") :].translate(str.maketrans("-_", "+/"))
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode()


def webhook_message_id(delivery: Delivery) -> str:
    """``webhook-id``: one per delivery, the same on every retry, and naming the event so a
    signed trigger cannot be replayed as a resolve."""
    return f"msg_medic_{delivery.pk}_{delivery.event}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> bytes:
    """HMAC-SHA256 over ``"<webhook-id>.<timestamp>." + body`` (the Standard Webhooks content)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(signing_key(secret), signed, hashlib.sha256).digest()


def signature_headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict:
    """Standard Webhooks headers plus ``X-Medic-Signature`` (the same signatures, hex, Stripe's
    ``t=...,v1=...`` layout), one signature per secret: during a rotation both are sent."""
    digests = [sign(secret, msg_id, timestamp, body) for secret in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join("v1," + base64.b64encode(d).decode() for d in digests),
        "X-Medic-Signature": f"t={timestamp}," + ",".join(f"v1={d.hex()}" for d in digests),
    }


def _signing_secrets(delivery: Delivery, now: datetime) -> list[str]:
    current = _secret(delivery, "signing_secret")
    if not current:
        return []
    secrets = [current]
    until = (delivery.notification_target.config or {}).get("previous_signing_secret_until")
    if until and datetime.fromisoformat(until) > now:
        previous = _secret(delivery, "previous_signing_secret")
        if previous and previous != current:
            secrets.append(previous)
    return secrets


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
        secrets = _signing_secrets(delivery, timezone.now())
        if secrets:
            msg_id = webhook_message_id(delivery)
            headers.update(signature_headers(secrets, msg_id, int(time.time()), body))
        outcome = _post(
            config["url"],
            data=body,
            headers=headers,
            method=config.get("method", "POST"),
            timeout=config.get("timeout_seconds"),
        )
        # Any 2xx from the receiver counts, except a web page: an API endpoint does not answer
        # with HTML, a login or maintenance page of a proxy in front of it does.
        if outcome.content_type.split(";")[0].strip().lower() == "text/html":
            raise _not_theirs("the receiver", outcome)
        return outcome

    def pace(self, delivery: Delivery) -> Pace | None:
        return None


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


@dataclass(frozen=True)
class Pace:
    """A destination's sending pace: ``per_second`` on average, ``burst`` at once."""

    key: str
    per_second: float
    burst: int


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# Slack: a section's text is at most 3,000 characters, a message's fallback text is best kept
# under 4,000 (longer is truncated by Slack), and a message has at most 50 blocks.
SLACK_SECTION_LIMIT = 3000
SLACK_TEXT_LIMIT = 3000
_SLACK_TRANSIENT = {
    "ratelimited",
    "internal_error",
    "service_unavailable",
    "fatal_error",
    "request_timeout",
    "team_added_to_org",
}


_FENCE = ("*Output (tail):*\n```\n", "\n```")


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


class SlackTransport:
    channel = Channel.SLACK

    def _headline(self, delivery: Delivery, name: str) -> str:
        alert = delivery.alert
        if delivery.event == NotificationEvent.RESOLVE:
            return f":white_check_mark: *{name}* recovered"
        if delivery.event == NotificationEvent.RENOTIFY:
            return f":rotating_light: *{name}* is still down"
        if alert.reason in EVENT_HEADLINES:
            return EVENT_HEADLINES[alert.reason].format(service=name)
        return f":rotating_light: *{name}* is down"

    def payload(self, delivery: Delivery) -> dict:
        """One message; every text that comes from users or jobs (names, team, summary, output,
        runbook) is escaped, and each section is kept within Slack's limit, the headline first."""
        if delivery.window_id is not None:
            text = clip(window_text(delivery), SLACK_TEXT_LIMIT)
            return {"channel": delivery.target, "text": text, "unfurl_links": False}
        alert = delivery.alert
        service = alert.service
        esc = mrkdwn_escape
        name = clip(esc(_service_line(alert)), 200)
        headline = self._headline(delivery, name)
        facts = clip(
            f"*Heartbeat:* `{clip(esc(service.heartbeat_name), 300)}`   "
            f"*Priority:* {esc(alert.priority.upper())}   *Team:* {clip(esc(service.team), 200)}\n"
            f"*Last heartbeat:* {_last_seen(alert)}",
            SLACK_SECTION_LIMIT - len(headline) - 1,
        )
        blocks = [_section(f"{headline}\n{facts}")]
        if delivery.event != NotificationEvent.RESOLVE:
            why = clip(f"*Why:* {esc(alert.summary)}", SLACK_SECTION_LIMIT)
            details = alert.details or {}
            if details.get("exit_code") is not None:
                why += clip(
                    f"\n*Exit code:* {esc(details['exit_code'])}   "
                    f"*Run:* `{esc(details.get('run_id'))}`",
                    SLACK_SECTION_LIMIT - len(why),
                )
            blocks.append(_section(why))
            story = (details.get("remediation") or {}).get("story")
            if story:
                blocks.append(_section(clip(f"*Remediation:* {esc(story)}", SLACK_SECTION_LIMIT)))
        output = ""
        if delivery.event != NotificationEvent.RESOLVE and (alert.details or {}).get("output_tail"):
            # The end of the output is what explains a failure: keep the tail.
            output = esc(alert.details["output_tail"]).replace("```", "` ` `")
            room = SLACK_SECTION_LIMIT - len(_FENCE[0]) - len(_FENCE[1])
            blocks.append(_section(_FENCE[0] + clip(output, room, keep="end") + _FENCE[1]))
        if service.runbook:
            blocks.append(_section(clip(f"*Runbook:* {esc(service.runbook)}", SLACK_SECTION_LIMIT)))
        link = f"<{alert_link(alert)}|Alert {alert.pk}>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
        return {
            "channel": delivery.target,
            "text": self._fallback(blocks, output, link),
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }

    def _fallback(self, blocks: list[dict], output: str, link: str) -> str:
        """The message's ``text`` (notifications, clients without blocks): the sections in
        order within SLACK_TEXT_LIMIT, the output's tail shortened to what room is left."""
        texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
        budget = SLACK_TEXT_LIMIT - len(link) - 1
        if output:
            at = next(i for i, t in enumerate(texts) if t.startswith(_FENCE[0]))
            others = sum(len(t) + 1 for i, t in enumerate(texts) if i != at)
            room = budget - others - len(_FENCE[0]) - len(_FENCE[1])
            if room >= 40:
                texts[at] = _FENCE[0] + clip(output, room, keep="end") + _FENCE[1]
            else:
                del texts[at]
        return clip("\n".join(texts), budget) + "\n" + link

    def _token(self, delivery: Delivery) -> str:
        return _secret(delivery, "bot_token") or settings.SLACK_BOT_TOKEN

    def pace(self, delivery: Delivery) -> Pace | None:
        return Pace(
            f"slack:{_fingerprint(self._token(delivery))}:{delivery.target}",
            settings.MEDIC_SLACK_PACE_PER_SECOND,
            settings.MEDIC_SLACK_PACE_BURST,
        )

    def send(self, delivery: Delivery) -> Outcome:
        outcome = _post(
            f"{settings.SLACK_API_BASE_URL}/chat.postMessage",
            payload=self.payload(delivery),
            headers={"Authorization": f"Bearer {self._token(delivery)}"},
        )
        # Slack answers 200 with {"ok": true, "message": {...the whole message...}} or
        # {"ok": false, "error": ...}; anything else did not come from Slack.
        data = _json_object(outcome)
        if data is None or "ok" not in data:
            raise _not_theirs("Slack", outcome)
        if not data["ok"]:
            error = str(data.get("error", "unknown_error"))
            if error == "ratelimited":
                raise RateLimited(f"Slack error: {error}", outcome)
            if error in _SLACK_TRANSIENT:
                raise TransientError(f"Slack error: {error}", outcome)
            raise PermanentError(f"Slack error: {error}", outcome)
        return outcome


PAGERDUTY_DEDUP_KEY_LIMIT = 255


def pagerduty_dedup_key(alert: Alert) -> str:
    """The alert's dedup key, within PagerDuty's 255 characters: a longer (imported) key keeps
    its start and ends with a hash of the whole, so it stays unique and stable."""
    key = alert.dedup_key
    if len(key) <= PAGERDUTY_DEDUP_KEY_LIMIT:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: PAGERDUTY_DEDUP_KEY_LIMIT - 33]}-{digest}"


class PagerDutyTransport:
    channel = Channel.PAGERDUTY

    def _routing_key(self, delivery: Delivery) -> str:
        return _secret(delivery, "routing_key") or settings.PAGERDUTY_ROUTING_KEY

    def payload(self, delivery: Delivery) -> dict:
        alert = delivery.alert
        service = alert.service
        body: dict = {
            "routing_key": self._routing_key(delivery),
            "event_action": "resolve" if delivery.event == NotificationEvent.RESOLVE else "trigger",
            "dedup_key": pagerduty_dedup_key(alert),
        }
        if body["event_action"] == "trigger":
            body["payload"] = {
                "summary": alert.summary[:1024],
                "source": service.heartbeat_name[:255],
                "severity": _SEVERITY.get(alert.priority, "warning"),
                "component": service.service_name[:255],
                "group": service.team[:255],
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
            approval = (alert.details or {}).get("approval") or {}
            if isinstance(approval, dict) and str(approval.get("url", "")).startswith("http"):
                # A remediation waits on a decision: its page in the portal, first.
                text = (
                    "Approve or decline in Medic"
                    if approval.get("state") == "pending"
                    else ("Approval in Medic")
                )
                body["links"].insert(0, {"href": approval["url"], "text": text})
            if service.runbook.startswith(("http://", "https://")):
                body["links"].append({"href": service.runbook, "text": "Runbook"})
        return body

    def pace(self, delivery: Delivery) -> Pace | None:
        return Pace(
            f"pagerduty:{_fingerprint(self._routing_key(delivery))}",
            settings.MEDIC_PAGERDUTY_PACE_PER_MINUTE / 60.0,
            settings.MEDIC_PAGERDUTY_PACE_BURST,
        )

    def send(self, delivery: Delivery) -> Outcome:
        try:
            outcome = _post(
                f"{settings.PAGERDUTY_EVENTS_URL}/v2/enqueue", payload=self.payload(delivery)
            )
        except PermanentError as exc:
            # 400 {"status":"invalid event","message":...,"errors":[...]}: say what was wrong.
            data = _json_object(exc.outcome) or {}
            if data.get("errors"):
                raise PermanentError(
                    f"{exc}: {data.get('message', 'invalid event')}: "
                    + "; ".join(str(e) for e in data["errors"]),
                    exc.outcome,
                ) from exc
            raise
        # 202 {"status":"success","message":"Event processed","dedup_key":...}
        data = _json_object(outcome)
        if data is None or data.get("status") != "success":
            raise _not_theirs("PagerDuty", outcome)
        return outcome


TRANSPORTS = {
    Channel.SLACK: SlackTransport(),
    Channel.PAGERDUTY: PagerDutyTransport(),
    Channel.WEBHOOK: WebhookTransport(),
}
