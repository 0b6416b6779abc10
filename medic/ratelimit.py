"""Rate limits per API key and class, shared by every web process through Redis.

Fixed one-minute windows: one ``INCR`` + ``EXPIRE`` round trip per request. Classes:

- ``heartbeat``: heartbeat ingestion (v1 ``POST /heartbeat``, v2 ``POST /v2/heartbeat/...``);
- ``management``: everything else an API key calls;
- ``unauthenticated``: per source address, for requests without a working key — checked before
  any key work, so a flood of bad keys cannot make Medic hash;
- ``anonymous``: per source address, v1 heartbeats accepted without a key during a migration.

Failure counters (``failures_*``) serve the dashboard's sign-in lockout: a counter lives for a
given number of seconds from its first failure and can be cleared (a successful sign-in).

Limits come from settings (``MEDIC_RATE_LIMIT_*``) and can be raised or lowered per key
(``ApiKey.rate_limits``). Without Redis (the embedded mode) counters live in process memory.
If Redis fails, requests are let through and the failure is counted: a monitoring service that
drops heartbeats because its rate limiter is down would cause the outage it exists to catch.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from medic.errors import Throttled
from medic.metrics import RATE_LIMIT_BACKEND_ERRORS, RATE_LIMITED

logger = logging.getLogger(__name__)
WINDOW = 60
CLASSES = ("heartbeat", "management", "unauthenticated", "anonymous")


@dataclass(frozen=True)
class Decision:
    limit: int
    remaining: int
    reset: int  # unix time at which the window ends

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset),
        }


class MemoryBackend:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._expiring: dict[str, tuple[float, int]] = {}  # key -> (expires at, count)
        self._lock = threading.Lock()

    def hit(self, key: str, window: int, cost: int = 1) -> int:
        with self._lock:
            start, count = self._counts.get(key, (window, 0))
            if start != window:
                count = 0
            count += cost
            self._counts[key] = (window, count)
            if len(self._counts) > 100_000:  # drop stale windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            return count

    def peek(self, key: str, window: int) -> int:
        with self._lock:
            start, count = self._counts.get(key, (window, 0))
            return count if start == window else 0

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._expiring.clear()

    def count_hit(self, key: str, ttl: int) -> tuple[int, int]:
        """Add one to a counter that expires ``ttl`` seconds after its first hit; return the
        count and the seconds it has left."""
        with self._lock:
            now = time.monotonic()
            expires, count = self._expiring.get(key, (0.0, 0))
            if expires <= now:
                expires, count = now + ttl, 0
            self._expiring[key] = (expires, count + 1)
            if len(self._expiring) > 100_000:  # drop expired counters
                self._expiring = {k: v for k, v in self._expiring.items() if v[0] > now}
            return count + 1, max(1, round(expires - now))

    def count_peek(self, key: str) -> tuple[int, int]:
        with self._lock:
            now = time.monotonic()
            expires, count = self._expiring.get(key, (0.0, 0))
            return (count, max(1, round(expires - now))) if expires > now else (0, 0)

    def count_delete(self, key: str) -> None:
        with self._lock:
            self._expiring.pop(key, None)


class RedisBackend:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=0.5, health_check_interval=30
        )

    def hit(self, key: str, window: int, cost: int = 1) -> int:
        pipe = self._client.pipeline(transaction=False)
        pipe.incrby(key, cost)
        pipe.expire(key, WINDOW + 5)
        count, _ = pipe.execute()
        return int(count)

    def peek(self, key: str, window: int) -> int:
        value = self._client.get(key)
        return int(value) if value else 0

    def clear(self) -> None:
        for key in self._client.scan_iter("medic:rl:*"):
            self._client.delete(key)

    def count_hit(self, key: str, ttl: int) -> tuple[int, int]:
        pipe = self._client.pipeline(transaction=True)
        pipe.set(key, 0, ex=ttl, nx=True)  # the first hit starts the period
        pipe.incr(key)
        pipe.ttl(key)
        _, count, left = pipe.execute()
        return int(count), max(1, int(left))

    def count_peek(self, key: str) -> tuple[int, int]:
        pipe = self._client.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        value, left = pipe.execute()
        return (int(value), max(1, int(left))) if value else (0, 0)

    def count_delete(self, key: str) -> None:
        self._client.delete(key)


_backend: MemoryBackend | RedisBackend | None = None
_backend_lock = threading.Lock()


def backend() -> MemoryBackend | RedisBackend:
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                url = settings.MEDIC_RATE_LIMIT_REDIS_URL
                _backend = RedisBackend(url) if url else MemoryBackend()
    return _backend


def default_limit(kind: str) -> int:
    return {
        "heartbeat": settings.MEDIC_RATE_LIMIT_HEARTBEAT,
        "management": settings.MEDIC_RATE_LIMIT_MANAGEMENT,
        "unauthenticated": settings.MEDIC_RATE_LIMIT_UNAUTHENTICATED,
        "anonymous": settings.MEDIC_RATE_LIMIT_ANONYMOUS,
    }[kind]


def _window() -> tuple[int, int]:
    now = int(time.time())
    start = now - now % WINDOW
    return start, start + WINDOW


def _refuse(kind: str, decision: Decision) -> Throttled:
    RATE_LIMITED.labels(**{"class": kind}).inc()
    retry_after = max(1, decision.reset - int(time.time()))
    return Throttled(
        f"Rate limit of {decision.limit} {kind} requests per minute exceeded; retry in "
        f"{retry_after} s.",
        headers={**decision.headers(), "Retry-After": str(retry_after)},
    )


def hit(kind: str, subject: str, limit: int | None = None) -> Decision:
    """Count one request of ``kind`` for ``subject`` (a key id or an address); raise Throttled
    (429 with Retry-After and X-RateLimit-* headers) when over the limit."""
    limit = default_limit(kind) if limit is None else limit
    start, reset = _window()
    if limit <= 0:  # 0 disables the limit for this class or key
        return Decision(limit=0, remaining=0, reset=reset)
    try:
        count = backend().hit(f"medic:rl:{kind}:{subject}:{start}", start)
    except Exception as exc:
        RATE_LIMIT_BACKEND_ERRORS.inc()
        logger.warning("rate limiter unavailable, letting the request through: %s", exc)
        return Decision(limit=limit, remaining=limit, reset=reset)
    decision = Decision(limit=limit, remaining=limit - count, reset=reset)
    if count > limit:
        raise _refuse(kind, decision)
    return decision


def check_address(address: str) -> None:
    """Before any key work: refuse an address whose unauthenticated budget is spent."""
    limit = default_limit("unauthenticated")
    if limit <= 0:
        return
    start, reset = _window()
    try:
        count = backend().peek(f"medic:rl:unauthenticated:{address}:{start}", start)
    except Exception:
        RATE_LIMIT_BACKEND_ERRORS.inc()
        return
    if count >= limit:
        raise _refuse("unauthenticated", Decision(limit=limit, remaining=0, reset=reset))


def record_failure(address: str) -> None:
    """Charge a failed authentication to its source address."""
    limit = default_limit("unauthenticated")
    if limit <= 0:
        return
    start, _ = _window()
    try:
        backend().hit(f"medic:rl:unauthenticated:{address}:{start}", start)
    except Exception:
        RATE_LIMIT_BACKEND_ERRORS.inc()


def failures_record(subject: str, ttl: int) -> tuple[int, int]:
    """Count one failure of ``subject`` (e.g. ``login-user:alice``) in a period of ``ttl``
    seconds from its first failure. Returns (failures, seconds left); (0, 0) when the backend
    is unavailable (counted in medic_rate_limit_backend_errors_total, nothing refused)."""
    try:
        return backend().count_hit(f"medic:rl:fail:{subject}", ttl)
    except Exception as exc:
        RATE_LIMIT_BACKEND_ERRORS.inc()
        logger.warning("rate limiter unavailable, failure not counted: %s", exc)
        return 0, 0


def failures_count(subject: str) -> tuple[int, int]:
    """(failures, seconds until the count expires) for ``subject``; (0, 0) when none."""
    try:
        return backend().count_peek(f"medic:rl:fail:{subject}")
    except Exception as exc:
        RATE_LIMIT_BACKEND_ERRORS.inc()
        logger.warning("rate limiter unavailable, letting the request through: %s", exc)
        return 0, 0


def failures_clear(subject: str) -> None:
    try:
        backend().count_delete(f"medic:rl:fail:{subject}")
    except Exception:
        RATE_LIMIT_BACKEND_ERRORS.inc()


def client_address(request) -> str:
    """The peer address; behind a proxy, the right-most untrusted X-Forwarded-For hop."""
    hops = settings.MEDIC_TRUSTED_PROXY_HOPS
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= hops:
            return chain[-hops]
    return request.META.get("REMOTE_ADDR", "unknown")


def request_class(request) -> str:
    path = request.path
    if request.method == "POST" and (path == "/heartbeat" or path.startswith("/v2/heartbeat/")):
        return "heartbeat"
    return "management"
