"""Local stand-ins that answer like the real Slack Web API, PagerDuty Events API v2 and webhook
receivers, so that what a real service would refuse is refused here too.

- ``FakeSlack``: ``chat.postMessage`` answers ``{"ok": true, "channel", "ts", "message": {...}}``
  echoing the whole message (so a reply with job output is long), ``ok: false`` with Slack's
  error names (``invalid_blocks`` for a section over 3,000 characters, ``channel_not_found``,
  ``not_authed``...), and HTTP 429 ``{"ok": false, "error": "ratelimited"}`` with
  ``Retry-After`` beyond about one message per second per channel.
- ``FakePagerDuty``: ``/v2/enqueue`` answers 202 ``{"status": "success", "message": "Event
  processed", "dedup_key": ...}``, 400 ``{"status": "invalid event", "message": "Event object is
  invalid", "errors": [...]}`` (dedup key over 255 characters, missing fields), and 429 beyond
  a number of events per window per routing key; it keeps the incidents it opened and resolved.
- ``tests.receivers.FakeServer``: any behaviour from a function (redirects, HTML from a proxy,
  slow or endless replies, a Standard Webhooks verifier).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque

from tests.receivers import FakeServer, Received, Reply


def _json(status: int, data: dict, **headers: str) -> Reply:
    return Reply(status, json.dumps(data).encode(), dict(headers))


class FakeSlack(FakeServer):
    """``POST /api/chat.postMessage`` as Slack answers it."""

    SECTION_LIMIT = 3000

    def __init__(
        self, *, token: str = "xoxb-test-token", per_channel_interval: float = 1.0
    ) -> None:
        self.token = token
        self.interval = per_channel_interval
        self.unknown_channels: set[str] = set()
        # errors to answer next, in order: (HTTP status, Slack error, extra headers, and the
        # text prefix of the messages it applies to, "" for any)
        self.failures: deque[tuple[int, str, dict, str]] = deque()
        self.accepted: list[dict] = []
        self.rate_limited = 0
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._ts = 0
        super().__init__(self._answer)

    def fail_next(
        self, error: str, status: int = 200, *, text_prefix: str = "", **headers: str
    ) -> FakeSlack:
        """Answer the next message (whose text starts with ``text_prefix``) with this error:
        ``fail_next("ratelimited", 429, **{"Retry-After": "1"})``, ``fail_next("fatal_error")``,
        ``fail_next("service_unavailable", 503)``."""
        self.failures.append((status, error, headers, text_prefix))
        return self

    def _answer(self, request: Received) -> Reply:
        if request.path != "/api/chat.postMessage":
            return _json(404, {"ok": False, "error": "unknown_method"})
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json(200, {"ok": False, "error": "not_authed"})
        try:
            message = json.loads(request.body)
        except ValueError:
            return _json(200, {"ok": False, "error": "invalid_json"})
        with self._lock:
            text = str(message.get("text", ""))
            failure = next((f for f in self.failures if text.startswith(f[3])), None)
            if failure is not None:
                self.failures.remove(failure)
                status, error, headers, _ = failure
                return _json(status, {"ok": False, "error": error}, **headers)
            channel = message.get("channel", "")
            if not channel or channel in self.unknown_channels:
                return _json(200, {"ok": False, "error": "channel_not_found"})
            for block in message.get("blocks") or []:
                text = (block.get("text") or {}).get("text", "")
                if block.get("type") == "section" and len(text) > self.SECTION_LIMIT:
                    return _json(200, {"ok": False, "error": "invalid_blocks"})
            if len(message.get("text", "")) > 40000:
                return _json(200, {"ok": False, "error": "msg_too_long"})
            now = time.monotonic()
            last = self._last.get(channel)
            if self.interval and last is not None and now - last < self.interval:
                self.rate_limited += 1
                wait = max(1, round(self.interval - (now - last) + 0.5))
                return _json(
                    429, {"ok": False, "error": "ratelimited"}, **{"Retry-After": str(wait)}
                )
            self._last[channel] = now
            self._ts += 1
            ts = f"{int(time.time())}.{self._ts:06d}"
            self.accepted.append(message)
        echoed = {
            "type": "message",
            "subtype": "bot_message",
            "text": message.get("text", ""),
            "ts": ts,
            "bot_id": "B0MEDIC",
            "blocks": message.get("blocks", []),
            "app_id": "A0MEDIC",
        }
        return _json(200, {"ok": True, "channel": channel, "ts": ts, "message": echoed})


class FakePagerDuty(FakeServer):
    """``POST /v2/enqueue`` as the Events API v2 answers it."""

    def __init__(self, *, limit: int = 0, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self.failures: deque[Reply] = deque()
        self.accepted: list[dict] = []
        self.incidents: dict[str, str] = {}  # dedup key -> "triggered" / "resolved"
        self.rate_limited = 0
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        super().__init__(self._answer)

    def open_incidents(self) -> list[str]:
        return [k for k, state in self.incidents.items() if state == "triggered"]

    def _invalid(self, *errors: str) -> Reply:
        body = {"status": "invalid event", "message": "Event object is invalid"}
        return _json(400, {**body, "errors": list(errors)})

    def _answer(self, request: Received) -> Reply:
        if request.path != "/v2/enqueue":
            return _json(404, {"status": "not found"})
        try:
            event = json.loads(request.body)
        except ValueError:
            return _json(400, {"status": "invalid event", "message": "Invalid JSON"})
        errors = []
        if len(event.get("routing_key") or "") != 32:
            errors.append("'routing_key' must be 32 characters")
        action = event.get("event_action")
        if action not in {"trigger", "acknowledge", "resolve"}:
            errors.append("'event_action' is invalid")
        key = event.get("dedup_key") or ""
        if len(key) > 255:
            errors.append("'dedup_key' must be at most 255 characters")
        if action != "trigger" and not key:
            errors.append("'dedup_key' is required for " + str(action))
        if action == "trigger":
            payload = event.get("payload") or {}
            for name in ("summary", "source", "severity"):
                if not payload.get(name):
                    errors.append(f"'payload.{name}' is missing or blank")
            if payload.get("severity") not in {"critical", "error", "warning", "info"}:
                errors.append("'payload.severity' is invalid")
        if errors:
            return self._invalid(*errors)
        with self._lock:
            if self.failures:
                return self.failures.popleft()
            if self.limit:
                seen = self._seen[event["routing_key"]]
                now = time.monotonic()
                while seen and now - seen[0] > self.window:
                    seen.popleft()
                if len(seen) >= self.limit:
                    self.rate_limited += 1
                    return _json(
                        429,
                        {
                            "status": "throttle exceeded",
                            "message": "Requests for this service "
                            "are arriving too quickly. Please retry later.",
                        },
                    )
                seen.append(now)
            key = key or f"generated-{len(self.accepted)}"
            self.accepted.append(event)
            if action == "trigger":
                self.incidents.setdefault(key, "triggered")
                if self.incidents[key] == "resolved":  # PagerDuty opens a new incident
                    self.incidents[key] = "triggered"
            elif action == "resolve" and key in self.incidents:
                self.incidents[key] = "resolved"
        return _json(202, {"status": "success", "message": "Event processed", "dedup_key": key})
