"""Rate limits and sign-in lock-outs: sliding windows shared by every process that serves Medic.

A limit of N per window means: at most N counted requests in *any* window-long period (a
sliding-window log: each counted request is a timestamp, those older than the window drop out).
Fixed windows let twice the limit through across a boundary and make headers depend on where
the wall clock is; here the answer depends only on the hits and the clock.

Classes (per minute):

- ``heartbeat``: heartbeat ingestion (v1 ``POST /heartbeat``, v2 ``POST /v2/heartbeat/...``);
- ``management``: everything else an API key calls;
- ``unauthenticated``: failed authentications per source address, checked before any key work,
  so a flood of bad keys cannot make Medic hash;
- ``anonymous``: per source address, v1 heartbeats accepted without a key during a migration.

Sign-in lock-outs (``failures_*``: the portal and the Django admin) use the same windows: N
failures within the window lock the username (or address) until the oldest of them leaves it.

Where the counters live (never in process memory: the embedded mode runs several web processes
too, and a per-process counter multiplies every limit by their number):

- ``RedisStore`` (``MEDIC_RATE_LIMIT_REDIS_URL``, production): a sorted set per subject, updated
  by one Lua script, so a check and its hit are one atomic step on the server;
- ``FileStore`` (no Redis, the embedded mode): a SQLite file in the var directory
  (``MEDIC_RATE_LIMIT_FILE``), updated in ``BEGIN IMMEDIATE`` transactions, shared by every
  process on the host.

Limits come from settings (``MEDIC_RATE_LIMIT_*``) and can be raised or lowered per key
(``ApiKey.rate_limits``). If the store fails, requests are let through and the failure is
counted: a monitoring service that drops heartbeats because its rate limiter is down would cause
the outage it exists to catch.

The clock is injected (``configure(clock=...)``): tests and the ingest contract check run on a
controlled clock, so nothing they assert depends on when they run.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings

from medic import refusals
from medic.errors import Throttled
from medic.metrics import RATE_LIMIT_BACKEND_ERRORS

logger = logging.getLogger(__name__)
WINDOW = 60
CLASSES = ("heartbeat", "management", "unauthenticated", "anonymous")
PREFIX = "medic:rl:"


@dataclass(frozen=True)
class Window:
    """A subject's window after a check: hits counted in it, and when the oldest one leaves."""

    allowed: bool
    count: int
    oldest: float | None  # time of the oldest counted hit; None when there is none


class Store(Protocol):
    def hit(self, key: str, limit: int, window: float, now: float) -> Window:
        """Atomically: drop hits older than ``window``; if fewer than ``limit`` remain, count
        one at ``now``."""

    def peek(self, key: str, window: float, now: float) -> Window: ...

    def delete(self, key: str) -> None: ...

    def clear(self) -> None: ...


_HIT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
  count = count + 1
  allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {allowed, count, oldest[2] or ''}
"""

_PEEK = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, redis.call('ZCARD', KEYS[1]), oldest[2] or ''}
"""


class RedisStore:
    """A sorted set of hit times per subject; each check is one Lua script (atomic)."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=0.5, health_check_interval=30
        )
        self._hit = self._client.register_script(_HIT)
        self._peek = self._client.register_script(_PEEK)

    @staticmethod
    def _window(reply) -> Window:
        allowed, count, oldest = reply
        return Window(bool(allowed), int(count), float(oldest) if oldest else None)

    def hit(self, key: str, limit: int, window: float, now: float) -> Window:
        member = f"{now!r}:{uuid.uuid4().hex[:12]}"
        return self._window(self._hit(keys=[key], args=[repr(now), window, limit, member]))

    def peek(self, key: str, window: float, now: float) -> Window:
        return self._window(self._peek(keys=[key], args=[repr(now), window]))

    def delete(self, key: str) -> None:
        self._client.delete(key)

    def clear(self) -> None:
        for key in self._client.scan_iter(f"{PREFIX}*"):
            self._client.delete(key)


class FileStore:
    """Hit times in a SQLite file, shared by every process on the host (the embedded mode).

    Each check is one ``BEGIN IMMEDIATE`` transaction: SQLite serialises writers across
    processes, so two web workers cannot both take the last slot. Connections are per thread
    and per process (a connection must not cross a fork).
    """

    GC_EVERY = 1000  # checks per process between sweeps of rows whose window has passed

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._checks = 0

    def _db(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, at REAL NOT NULL, "
                "expires REAL NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS hits_key_at ON hits (key, at)")
            db.execute("CREATE INDEX IF NOT EXISTS hits_expires ON hits (expires)")
            local.db, local.pid = db, os.getpid()
        return local.db

    def _check(self, key: str, limit: int | None, window: float, now: float) -> Window:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM hits WHERE key = ? AND at <= ?", (key, now - window))
            count, oldest = db.execute(
                "SELECT count(*), min(at) FROM hits WHERE key = ?", (key,)
            ).fetchone()
            allowed = limit is not None and count < limit
            if allowed:
                db.execute("INSERT INTO hits VALUES (?, ?, ?)", (key, now, now + window))
                count += 1
                oldest = now if oldest is None else oldest
            self._checks += 1
            if self._checks % self.GC_EVERY == 0:
                db.execute("DELETE FROM hits WHERE expires <= ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Window(allowed, count, oldest)

    def hit(self, key: str, limit: int, window: float, now: float) -> Window:
        return self._check(key, limit, window, now)

    def peek(self, key: str, window: float, now: float) -> Window:
        return self._check(key, None, window, now)

    def delete(self, key: str) -> None:
        self._db().execute("DELETE FROM hits WHERE key = ?", (key,))

    def clear(self) -> None:
        self._db().execute("DELETE FROM hits")


_store: Store | None = None
_clock: Callable[[], float] = time.time
_store_lock = threading.Lock()


def store() -> Store:
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                url = settings.MEDIC_RATE_LIMIT_REDIS_URL
                _store = RedisStore(url) if url else FileStore(settings.MEDIC_RATE_LIMIT_FILE)
    return _store


backend = store  # the name callers used before stores were pluggable


def configure(*, store: Store | None = None, clock: Callable[[], float] | None = None) -> None:
    """Install a store and/or a clock (tests, tools); ``configure()`` restores the defaults
    (the store from settings, the wall clock)."""
    global _store, _clock
    _store = store
    _clock = clock or time.time


def now() -> float:
    return _clock()


@dataclass(frozen=True)
class Decision:
    limit: int
    remaining: int
    reset: int  # unix time at which the oldest counted request leaves the window

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset),
        }


def default_limit(kind: str) -> int:
    return {
        "heartbeat": settings.MEDIC_RATE_LIMIT_HEARTBEAT,
        "management": settings.MEDIC_RATE_LIMIT_MANAGEMENT,
        "unauthenticated": settings.MEDIC_RATE_LIMIT_UNAUTHENTICATED,
        "anonymous": settings.MEDIC_RATE_LIMIT_ANONYMOUS,
    }[kind]


def _wait(found: Window, window: float, at: float) -> int:
    """Whole seconds until the oldest counted hit leaves the window (at least 1)."""
    oldest = at if found.oldest is None else found.oldest
    return max(1, math.ceil(oldest + window - at))


def _decision(limit: int, found: Window, at: float) -> Decision:
    oldest = at if found.oldest is None else found.oldest
    return Decision(limit=limit, remaining=limit - found.count, reset=math.ceil(oldest + WINDOW))


def _refuse(kind: str, decision: Decision, retry_after: int) -> Throttled:
    refusals.rate_limited(kind)
    return Throttled(
        f"Rate limit of {decision.limit} {kind} requests per minute exceeded; retry in "
        f"{retry_after} s.",
        headers={**decision.headers(), "Retry-After": str(retry_after)},
    )


def _unavailable(exc: Exception, what: str) -> None:
    RATE_LIMIT_BACKEND_ERRORS.inc()
    logger.warning("rate limiter unavailable, %s: %s", what, exc)


def hit(kind: str, subject: str, limit: int | None = None) -> Decision:
    """Count one request of ``kind`` for ``subject`` (a key id or an address); raise Throttled
    (429 with Retry-After and X-RateLimit-* headers) when the window is full."""
    limit = default_limit(kind) if limit is None else limit
    at = now()
    if limit <= 0:  # 0 disables the limit for this class or key
        return Decision(limit=0, remaining=0, reset=math.ceil(at + WINDOW))
    try:
        found = store().hit(f"{PREFIX}{kind}:{subject}", limit, WINDOW, at)
    except Exception as exc:
        _unavailable(exc, "letting the request through")
        return Decision(limit=limit, remaining=limit, reset=math.ceil(at + WINDOW))
    decision = _decision(limit, found, at)
    if not found.allowed:
        raise _refuse(kind, decision, _wait(found, WINDOW, at))
    return decision


def check_address(address: str) -> None:
    """Before any key work: refuse an address whose unauthenticated budget is spent."""
    limit = default_limit("unauthenticated")
    if limit <= 0:
        return
    at = now()
    try:
        found = store().peek(f"{PREFIX}unauthenticated:{address}", WINDOW, at)
    except Exception as exc:
        _unavailable(exc, "letting the request through")
        return
    if found.count >= limit:
        decision = _decision(limit, found, at)
        raise _refuse("unauthenticated", decision, _wait(found, WINDOW, at))


def record_failure(address: str) -> None:
    """Charge a failed authentication to its source address."""
    limit = default_limit("unauthenticated")
    if limit <= 0:
        return
    try:
        store().hit(f"{PREFIX}unauthenticated:{address}", limit, WINDOW, now())
    except Exception as exc:
        _unavailable(exc, "failure not counted")


def failures_record(subject: str, limit: int, window: int) -> None:
    """Count one failure of ``subject`` (e.g. ``login-user:alice``) in its sliding window."""
    if limit <= 0:
        return
    try:
        store().hit(f"{PREFIX}fail:{subject}", limit, window, now())
    except Exception as exc:
        _unavailable(exc, "failure not counted")


def failures_wait(subject: str, limit: int, window: int) -> int:
    """Seconds until ``subject`` may try again: 0 while it has fewer than ``limit`` failures in
    the window (or the store is unavailable: counted, nothing refused)."""
    if limit <= 0:
        return 0
    at = now()
    try:
        found = store().peek(f"{PREFIX}fail:{subject}", window, at)
    except Exception as exc:
        _unavailable(exc, "letting the request through")
        return 0
    return _wait(found, window, at) if found.count >= limit else 0


def failures_clear(subject: str) -> None:
    try:
        store().delete(f"{PREFIX}fail:{subject}")
    except Exception as exc:
        _unavailable(exc, "count not cleared")


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
