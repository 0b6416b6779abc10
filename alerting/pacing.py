"""Sending pace per destination, shared by every worker process.

A mass outage makes hundreds of deliveries to the same Slack channel or PagerDuty routing key at
once; Slack accepts about one message per second per channel and PagerDuty's Events API a limited
number of events per minute per routing key, and both answer 429 beyond that. Each delivery
therefore reserves a sending slot before it is sent, with the generic cell rate algorithm (a
token bucket expressed as one timestamp, the "theoretical arrival time"): ``reserve`` returns how
long to wait for the slot, and the delivery is scheduled for then instead of being sent now.

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

# KEYS[1]: the destination; ARGV: emission interval, burst tolerance (seconds), hold (seconds,
# 0 to reserve). Returns the wait before the reserved slot in microseconds (0 for a hold).
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local hold = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if hold > 0 then
  local held = now + hold + tolerance
  if held > tat then tat = held end
  redis.call('SET', KEYS[1], tat, 'PX', math.ceil((tat - now) / 1000) + 60000)
  return 0
end
local slot = tat - tolerance
if slot < now then slot = now end
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


def _database(key: str, interval: float, tolerance: float, hold: float) -> float:
    table = DeliveryPace._meta.db_table
    with connection.cursor() as cursor:
        if hold > 0:
            cursor.execute(
                f"INSERT INTO {table} (key, tat) VALUES (%s, clock_timestamp() + "  # noqa: S608
                "make_interval(secs => %s)) ON CONFLICT (key) DO UPDATE SET tat = "
                f"GREATEST({table}.tat, EXCLUDED.tat)",
                [key, hold + tolerance],
            )
            return 0.0
        # The new theoretical arrival time is max(stored, now) + interval; the slot is that minus
        # the interval and the burst tolerance, and never before now.
        cursor.execute(
            f"INSERT INTO {table} (key, tat) VALUES (%s, clock_timestamp() + "  # noqa: S608
            "make_interval(secs => %s)) ON CONFLICT (key) DO UPDATE SET tat = "
            f"GREATEST({table}.tat, clock_timestamp()) + make_interval(secs => %s) "
            "RETURNING EXTRACT(EPOCH FROM (tat - clock_timestamp()))",
            [key, interval, interval],
        )
        ahead = float(cursor.fetchone()[0])
    return max(0.0, ahead - interval - tolerance)


def _call(key: str, per_second: float, burst: int, hold: float) -> float:
    interval, tolerance = _intervals(per_second, burst)
    script = _redis()
    if script is not None:
        try:
            micros = script(
                keys=[f"medic:pace:{key}"],
                args=[int(interval * 1e6), int(tolerance * 1e6), int(hold * 1e6)],
            )
            return int(micros) / 1e6
        except Exception as exc:  # Redis down: the database is always there
            logger.warning("delivery pace: Redis unavailable, using the database: %s", exc)
    return _database(key, interval, tolerance, hold)


def reserve(key: str, *, per_second: float, burst: int) -> float:
    """Reserve the destination's next sending slot; return the seconds until it (0: now)."""
    if per_second <= 0:  # pacing disabled
        return 0.0
    return _call(key, per_second, burst, 0.0)


def hold(key: str, seconds: float, *, per_second: float, burst: int) -> None:
    """Nothing goes to the destination for ``seconds`` (it answered 429 with Retry-After)."""
    if per_second <= 0 or seconds <= 0:
        return
    _call(key, per_second, burst, seconds)
