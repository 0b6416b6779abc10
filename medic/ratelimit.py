"""Rate limits and sign-in lock-outs: GCRA, shared by every process that serves Medic.

A limit of N per window is enforced with the generic cell rate algorithm (GCRA): each subject has
one stored time, its *theoretical arrival time* (TAT). Every counted request moves it
``window / N`` (the emission interval) later; a request is refused when that would put the TAT
more than one window ahead of now. So a subject can send N requests at once, and after that one
per emission interval: in any period of length L at most ``N + L * N / window`` requests pass.
There is no boundary at which the budget resets (a fixed window let 2N through in an instant
across a minute boundary): a burst spent just before a minute turns is still spent after it, and
the answer depends only on the hits and the clock. One stored number per subject, whatever N is
(the documented maximum is 1,000,000 per minute): a log of hits would cost O(N) per subject.

Classes (per minute):

- ``heartbeat``: heartbeat ingestion (v1 ``POST /heartbeat``, v2 ``POST /v2/heartbeat/...``);
- ``management``: everything else an API key calls;
- ``unauthenticated``: failed authentications per source address, checked before any key work,
  so a flood of bad keys cannot make Medic hash;
- ``anonymous``: per source address, v1 heartbeats accepted without a key during a migration.

Sign-in lock-outs (``failures_*``: the portal and the Django admin) use the same store with an
emission interval of a whole window: N failures in a row lock the username (or address) for a
window, and each earlier failure is forgotten one window after the one before it, so a locked
subject gets one more try per window until it stops failing.

Where the TATs live (never in process memory: the embedded mode runs several web processes too,
and a per-process counter multiplies every limit by their number):

- ``RedisStore`` (``MEDIC_RATE_LIMIT_REDIS_URL``, production): one string per subject with an
  expiry, read and moved by one Lua script, so a check and its hit are one atomic round trip;
- ``FileStore`` (no Redis, the embedded mode): one row per subject in a SQLite file in the var
  directory (``MEDIC_RATE_LIMIT_FILE``), updated in ``BEGIN IMMEDIATE`` transactions, shared by
  every process on the host.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings
from redis.exceptions import NoScriptError

from medic import refusals
from medic.errors import Throttled
from medic.metrics import RATE_LIMIT_BACKEND_ERRORS

logger = logging.getLogger(__name__)
WINDOW = 60
CLASSES = ("heartbeat", "management", "unauthenticated", "anonymous")
# "gcra": one stored time per key. The keys of the earlier sliding-window log (sorted sets under
# "medic:rl:") are never read, so an upgrade starts with full budgets instead of wrong-type errors;
# they expire on their own within a window.
PREFIX = "medic:gcra:"
# Float slack when comparing a TAT with the window: N emission intervals of window / N must fit
# in the window although their float sum can exceed it by a few ulps.
EPSILON = 1e-6


@dataclass(frozen=True)
class Cell:
    """A subject's state after a check: whether the request was (or would be) counted, and its
    theoretical arrival time (never before ``now``; ``now`` when nothing is outstanding)."""

    allowed: bool
    tat: float


class Store(Protocol):
    def hit(self, key: str, limit: int, window: float, now: float) -> Cell:
        """Atomically: if one more request fits (TAT + window/limit - now <= window), move the
        TAT one emission interval later and answer allowed; otherwise leave it."""

    def hit_many(self, cells: Sequence[tuple[str, int, float]], now: float) -> list[Cell]:
        """``hit`` for each (key, limit, window), in order; one round trip where the store
        has round trips."""

    def peek(self, key: str, limit: int, window: float, now: float) -> Cell:
        """Whether a request would be counted now, changing nothing."""

    def delete(self, key: str) -> None: ...

    def clear(self) -> None: ...


def gcra(stored: float | None, limit: int, window: float, now: float) -> tuple[bool, float]:
    """The rule both stores apply (the Lua script repeats it): (allowed, TAT after the check)."""
    tat = now if stored is None or stored < now else stored
    moved = tat + window / limit
    if moved - now <= window + EPSILON:
        return True, moved
    return False, tat


# The same rule as gcra() above, on the Redis server: one round trip, atomic. Times travel as
# strings ('%.17g'): a Lua number returned to Redis is truncated to an integer.
_GCRA = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
local moved = tat + window / limit
if moved - now <= window + tonumber(ARGV[5]) then
  if ARGV[4] == '1' then
    redis.call('SET', KEYS[1], string.format('%.17g', moved), 'PX',
      math.ceil((moved - now) * 1000) + 1000)
    return {1, string.format('%.17g', moved)}
  end
  return {1, string.format('%.17g', tat)}
end
return {0, string.format('%.17g', tat)}
"""


class RedisStore:
    """One TAT per subject (a string with an expiry); each check is one Lua script (atomic)."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=0.5, health_check_interval=30
        )
        self._script = self._client.register_script(_GCRA)

    def _run(self, key: str, limit: int, window: float, now: float, count: bool) -> Cell:
        allowed, tat = self._script(
            keys=[key], args=[repr(now), repr(float(window)), limit, int(count), EPSILON]
        )
        return Cell(bool(allowed), float(tat))

    def hit(self, key: str, limit: int, window: float, now: float) -> Cell:
        return self._run(key, limit, window, now, True)

    def hit_many(self, cells: Sequence[tuple[str, int, float]], now: float) -> list[Cell]:
        # One pipeline of EVALSHA: the scripts run one after another on the server, as separate
        # calls would. (A pipeline of redis-py Script calls first asks the server whether the
        # script exists, a second round trip every time.) A server that lost the script (a
        # restart, SCRIPT FLUSH) answers NOSCRIPT for the calls it did not run: the script is
        # loaded again and only those calls are repeated.
        replies: list = [None] * len(cells)
        todo = list(range(len(cells)))
        for attempt in range(2):
            pipeline = self._client.pipeline(transaction=False)
            for n in todo:
                key, limit, window = cells[n]
                args = [repr(now), repr(float(window)), limit, 1, EPSILON]
                pipeline.evalsha(self._script.sha, 1, key, *args)
            answers = pipeline.execute(raise_on_error=False)
            missing = []
            for n, answer in zip(todo, answers, strict=True):
                if isinstance(answer, NoScriptError) and attempt == 0:
                    missing.append(n)
                elif isinstance(answer, Exception):
                    raise answer
                else:
                    replies[n] = answer
            if not missing:
                break
            self._client.script_load(_GCRA)
            todo = missing
        return [Cell(bool(allowed), float(tat)) for allowed, tat in replies]

    def peek(self, key: str, limit: int, window: float, now: float) -> Cell:
        return self._run(key, limit, window, now, False)

    def delete(self, key: str) -> None:
        self._client.delete(key)

    def clear(self) -> None:
        for key in self._client.scan_iter(f"{PREFIX}*"):
            self._client.delete(key)


class FileStore:
    """One TAT per subject in a SQLite file, shared by every process on the host (the embedded
    mode).

    Each check is one ``BEGIN IMMEDIATE`` transaction: SQLite serialises writers across
    processes, so two web workers cannot both take the last slot. Connections are per thread
    and per process (a connection must not cross a fork).
    """

    GC_EVERY = 1000  # checks per process between sweeps of rows whose TAT has passed

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
            db.execute("DROP TABLE IF EXISTS hits")  # the sliding-window log of earlier versions
            db.execute("CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, tat REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS cells_tat ON cells (tat)")
            local.db, local.pid = db, os.getpid()
        return local.db

    def _check(self, key: str, limit: int, window: float, now: float, count: bool) -> Cell:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT tat FROM cells WHERE key = ?", (key,)).fetchone()
            stored = row[0] if row else None
            allowed, tat = gcra(stored, limit, window, now)
            if not count:
                tat = max(stored or now, now)
            elif allowed:
                db.execute(
                    "INSERT INTO cells VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET tat = ?",
                    (key, tat, tat),
                )
            self._checks += 1
            if self._checks % self.GC_EVERY == 0:
                db.execute("DELETE FROM cells WHERE tat <= ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Cell(allowed, tat)

    def hit(self, key: str, limit: int, window: float, now: float) -> Cell:
        return self._check(key, limit, window, now, True)

    def hit_many(self, cells: Sequence[tuple[str, int, float]], now: float) -> list[Cell]:
        return [self._check(key, limit, window, now, True) for key, limit, window in cells]

    def peek(self, key: str, limit: int, window: float, now: float) -> Cell:
        return self._check(key, limit, window, now, False)

    def delete(self, key: str) -> None:
        self._db().execute("DELETE FROM cells WHERE key = ?", (key,))

    def clear(self) -> None:
        self._db().execute("DELETE FROM cells")


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
    reset: int  # unix time at which the whole budget is back

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


def _emission(limit: int, window: float) -> float:
    return window / limit


def _wait(cell: Cell, limit: int, window: float, at: float) -> int:
    """Whole seconds until one more request fits (at least 1)."""
    return max(1, math.ceil(cell.tat + _emission(limit, window) - window - at - EPSILON))


def _decision(limit: int, cell: Cell, at: float) -> Decision:
    """Remaining: how many more requests would pass right now; reset: when the whole budget is
    back (the TAT)."""
    room = (at + WINDOW - cell.tat) / _emission(limit, WINDOW)
    remaining = math.floor(room + EPSILON) if cell.allowed else 0
    return Decision(limit=limit, remaining=remaining, reset=math.ceil(cell.tat - EPSILON))


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
    (429 with Retry-After and X-RateLimit-* headers) when it does not fit."""
    (result,) = hit_many([(kind, subject, limit)])
    if isinstance(result, Throttled):
        raise result
    return result


def hit_many(hits: Sequence[tuple[str, str, int | None]]) -> list[Decision | Throttled]:
    """``hit`` for each (kind, subject, limit), in order, at one instant and with one round trip
    to the store: per hit its Decision, or the Throttled error ``hit`` would raise."""
    at = now()
    results: list[Decision | Throttled | None] = [None] * len(hits)
    counted: list[tuple[int, str, str, int]] = []
    for n, (kind, subject, limit) in enumerate(hits):
        limit = default_limit(kind) if limit is None else limit
        if limit <= 0:  # 0 disables the limit for this class or key
            results[n] = Decision(limit=0, remaining=0, reset=math.ceil(at + WINDOW))
        else:
            counted.append((n, kind, subject, limit))
    if counted:
        cells = [(f"{PREFIX}{kind}:{who}", limit, WINDOW) for _, kind, who, limit in counted]
        try:
            judged = store().hit_many(cells, at)
        except Exception as exc:
            _unavailable(exc, "letting the requests through")
            for n, _, _, limit in counted:
                results[n] = Decision(limit=limit, remaining=limit, reset=math.ceil(at + WINDOW))
        else:
            for (n, kind, _, limit), cell in zip(counted, judged, strict=True):
                decision = _decision(limit, cell, at)
                if cell.allowed:
                    results[n] = decision
                else:
                    results[n] = _refuse(kind, decision, _wait(cell, limit, WINDOW, at))
    return results


def check_address(address: str) -> None:
    """Before any key work: refuse an address whose unauthenticated budget is spent."""
    limit = default_limit("unauthenticated")
    if limit <= 0:
        return
    at = now()
    try:
        cell = store().peek(f"{PREFIX}unauthenticated:{address}", limit, WINDOW, at)
    except Exception as exc:
        _unavailable(exc, "letting the request through")
        return
    if not cell.allowed:
        decision = _decision(limit, cell, at)
        raise _refuse("unauthenticated", decision, _wait(cell, limit, WINDOW, at))


def record_failure(address: str) -> None:
    """Charge a failed authentication to its source address."""
    limit = default_limit("unauthenticated")
    if limit <= 0:
        return
    try:
        store().hit(f"{PREFIX}unauthenticated:{address}", limit, WINDOW, now())
    except Exception as exc:
        _unavailable(exc, "failure not counted")


# Lock-outs: ``limit`` failures in a row lock for ``window``; each failure weighs a whole window
# (the cell's window is limit * window, so its emission interval is one window).


def failures_record(subject: str, limit: int, window: int) -> None:
    """Count one failure of ``subject`` (e.g. ``login-user:alice``)."""
    if limit <= 0:
        return
    try:
        store().hit(f"{PREFIX}fail:{subject}", limit, limit * window, now())
    except Exception as exc:
        _unavailable(exc, "failure not counted")


def failures_wait(subject: str, limit: int, window: int) -> int:
    """Seconds until ``subject`` may try again: 0 while one more failure would still be counted
    (or the store is unavailable: counted, nothing refused)."""
    if limit <= 0:
        return 0
    at = now()
    try:
        cell = store().peek(f"{PREFIX}fail:{subject}", limit, limit * window, at)
    except Exception as exc:
        _unavailable(exc, "letting the request through")
        return 0
    return 0 if cell.allowed else _wait(cell, limit, limit * window, at)


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
