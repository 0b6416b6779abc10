"""Sending pace per destination, shared by every worker process.

A mass outage makes hundreds of deliveries to the same Slack channel or PagerDuty routing key at
once; Slack accepts about one message per second per channel and PagerDuty's Events API a limited
number of events per minute per routing key, and both answer 429 beyond that. Each delivery
therefore reserves a sending slot before it is sent, with the generic cell rate algorithm (a
token bucket expressed as one timestamp, the "theoretical arrival time"): ``reserve`` returns how
long to wait for the slot, and the delivery is scheduled for then instead of being sent now.
When it is sent, ``admit`` checks the pace of actual sends (a task queue's timers fire a little
early or late) and the worker waits the difference, at most a couple of seconds, in place.

The state lives in Redis when ``MEDIC_DELIVERY_PACE_REDIS_URL`` is set (one Lua script, atomic),
otherwise in the ``DeliveryPace`` table (one upsert, atomic): in both cases every worker process
on every host shares it and the clock is the store's, not the worker's. If Redis fails the
database is used. A 429 pushes the destination's pace back (``hold``) so that no other delivery
to it goes out before the receiver's ``Retry-After``.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connection

from alerting.models import DeliveryPace

logger = logging.getLogger(__name__)

# KEYS[1]: the state; ARGV: emission interval, burst tolerance, hold (microseconds), mode:
# "reserve" takes the next slot and returns the wait before it, "admit" takes a slot only if it is
# now (returns 0) and otherwise returns the wait without taking one, "hold" pushes the state.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local hold = tonumber(ARGV[3])
local mode = ARGV[4]
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if mode == 'hold' then
  local held = now + hold + tolerance
  if held > tat then tat = held end
  redis.call('SET', KEYS[1], tat, 'PX', math.ceil((tat - now) / 1000) + 60000)
  return 0
end
local slot = tat - tolerance
if slot < now then slot = now end
if mode == 'admit' and slot > now then
  return slot - now
end
tat = tat + interval
redis.call('SET', KEYS[1], tat, 'PX', math.ceil((tat - now) / 1000) + 60000)
return slot - now
"""

_client_lock = threading.Lock()
_client = None


def _redis():
    global _client
    url = settings.MEDIC_DELIVERY_PACE_REDIS_URL
    if not url:
        return None
    with _client_lock:
        if _client is None or _client[0] != url:
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
            _client = (url, client, client.register_script(_LUA))
        return _client[2]


def _intervals(per_second: float, burst: int) -> tuple[float, float]:
    interval = 1.0 / per_second
    return interval, interval * (max(burst, 1) - 1)


def _database(key: str, interval: float, tolerance: float, hold: float, mode: str) -> float:
    table = DeliveryPace._meta.db_table
    with connection.cursor() as cursor:
        if mode == "hold":
            cursor.execute(
                f"INSERT INTO {table} (key, tat) VALUES (%s, clock_timestamp() + "  # noqa: S608
                "make_interval(secs => %s)) ON CONFLICT (key) DO UPDATE SET tat = "
                f"GREATEST({table}.tat, EXCLUDED.tat)",
                [key, hold + tolerance],
            )
            return 0.0
        # The new theoretical arrival time is max(stored, now) + interval; the slot is that minus
        # the interval and the burst tolerance, and never before now. "admit" takes the slot
        # only when it is now (the WHERE of the upsert), else reads how long to wait.
        admit_only = (
            f" WHERE {table}.tat - clock_timestamp() <= make_interval(secs => %s)"
            if mode == "admit"
            else ""
        )
        cursor.execute(
            f"INSERT INTO {table} (key, tat) VALUES (%s, clock_timestamp() + "  # noqa: S608
            "make_interval(secs => %s)) ON CONFLICT (key) DO UPDATE SET tat = "
            f"GREATEST({table}.tat, clock_timestamp()) + make_interval(secs => %s)"
            + admit_only
            + " RETURNING EXTRACT(EPOCH FROM (tat - clock_timestamp()))",
            [key, interval, interval] + ([tolerance] if admit_only else []),
        )
        row = cursor.fetchone()
        if row is None:  # not admitted: wait until the slot
            cursor.execute(
                f"SELECT EXTRACT(EPOCH FROM (tat - clock_timestamp())) FROM {table} "  # noqa: S608
                "WHERE key = %s",
                [key],
            )
            ahead = float(cursor.fetchone()[0])
            return max(ahead - tolerance, 1e-3)
        ahead = float(row[0])
    return 0.0 if admit_only else max(0.0, ahead - interval - tolerance)


def _call(key: str, per_second: float, burst: int, hold: float, mode: str) -> float:
    interval, tolerance = _intervals(per_second, burst)
    script = _redis()
    if script is not None:
        try:
            micros = script(
                keys=[f"medic:pace:{key}"],
                args=[int(interval * 1e6), int(tolerance * 1e6), int(hold * 1e6), mode],
            )
            return int(micros) / 1e6
        except Exception as exc:  # Redis down: the database is always there
            logger.warning("delivery pace: Redis unavailable, using the database: %s", exc)
    return _database(key, interval, tolerance, hold, mode)


def reserve(key: str, *, per_second: float, burst: int) -> float:
    """Plan: reserve the destination's next sending slot; return the seconds until it (0: now).
    Deliveries are scheduled for their slots, which spreads them out."""
    if per_second <= 0:  # pacing disabled
        return 0.0
    return _call(f"plan:{key}", per_second, burst, 0.0, "reserve")


def admit(key: str, *, per_second: float, burst: int) -> float:
    """Send: 0 when a request may go to the destination now (and it is counted), else the
    seconds to wait. Planned slots are only as punctual as the task queue's timers: a task that
    wakes late would send right before the next one, so the pace of actual sends is checked
    again when sending."""
    if per_second <= 0:
        return 0.0
    return _call(f"sent:{key}", per_second, burst, 0.0, "admit")


def hold(key: str, seconds: float, *, per_second: float, burst: int) -> None:
    """Nothing goes to the destination for ``seconds`` (it answered 429 with Retry-After)."""
    if per_second <= 0 or seconds <= 0:
        return
    for state in ("plan", "sent"):
        _call(f"{state}:{key}", per_second, burst, seconds, "hold")
