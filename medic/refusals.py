"""Refused requests, counted where they are refused: the Prometheus counters of this process
(``medic_auth_failures_total{reason}``, ``medic_rate_limited_total{class}``) and a tally per UTC
day and reason kept in Redis beside the rate-limit windows (``MEDIC_RATE_LIMIT_REDIS_URL``), so
the outcomes report can chart refusals over time across every process and restart
(docs/outcomes.md, "Refused requests").

A tally is one pipelined HINCRBY + EXPIRE on the refusal path, which already writes the
address's failure to the same store. Redis errors never change an answer: the refusal stands
and the counter is counted; the tally is lost (logged at most once a minute). Without Redis
(the embedded mode) there is no tally and the report says so.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from medic.metrics import AUTH_FAILURES, RATE_LIMITED

logger = logging.getLogger(__name__)
KEY = "medic:refused:{day}"
RATE_LIMITED_REASON = "rate_limited"
# Long enough for a year's report; each day is one small hash.
TTL_SECONDS = 400 * 86400
_client = None
_client_url = None
_lock = threading.Lock()
_last_warning = 0.0


def _redis():
    global _client, _client_url
    url = settings.MEDIC_RATE_LIMIT_REDIS_URL
    if not url:
        return None
    with _lock:
        if _client is None or _client_url != url:
            import redis

            _client = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)
            _client_url = url
        return _client


def _day(at: datetime) -> str:
    return at.astimezone(UTC).date().isoformat()


def _tally(reason: str, now: datetime | None) -> None:
    global _last_warning
    client = _redis()
    if client is None:
        return
    key = KEY.format(day=_day(now or timezone.now()))
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hincrby(key, reason, 1)
        pipe.expire(key, TTL_SECONDS)
        pipe.execute()
    except Exception:
        if time.monotonic() - _last_warning > 60:
            _last_warning = time.monotonic()
            logger.warning("refusal tally not recorded", exc_info=True)


def refused(reason: str, *, now: datetime | None = None) -> None:
    """An authentication or authorization refusal (``missing``, ``invalid``, ``login_locked``,
    ...: the reasons of medic_auth_failures_total)."""
    AUTH_FAILURES.labels(reason=reason).inc()
    _tally(reason, now)


def rate_limited(kind: str, *, now: datetime | None = None) -> None:
    """A 429 of rate-limit class ``kind``; tallied as ``rate_limited``."""
    RATE_LIMITED.labels(**{"class": kind}).inc()
    _tally(RATE_LIMITED_REASON, now)


def refused_by_day(first: date, last: date) -> dict[date, dict[str, int]] | None:
    """{day: {reason: count}} for the UTC days first..last (inclusive; days without a refusal
    are left out), or None without Redis or when it cannot be read."""
    client = _redis()
    if client is None:
        return None
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    try:
        pipe = client.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(KEY.format(day=day.isoformat()))
        replies = pipe.execute()
    except Exception:
        logger.warning("refusal tallies not readable", exc_info=True)
        return None
    return {
        day: {k.decode(): int(v) for k, v in sorted(reply.items())}
        for day, reply in zip(days, replies, strict=True)
        if reply
    }
