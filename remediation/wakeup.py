"""Waking agents' long polls when a job is queued for them.

A process that serves polls keeps one Redis subscription (per event loop) on ``CHANNEL`` and a
map agent id → the asyncio events of its waiting polls; queueing a job publishes the agent ids
after commit. A waiting poll therefore costs an event and a dict entry, not a thread or a
connection, and a queued job reaches it in about one Redis round trip.

Nothing depends on a message arriving: every waiting poll also re-checks the database every
``MEDIC_AGENT_POLL_RECHECK_SECONDS`` (with jitter), and every poll is woken to re-check when the
subscription (re)connects, since messages published while it was down are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import weakref
from collections.abc import Iterable, Iterator

from django.conf import settings

from remediation.metrics import WAKEUP_CONNECTED

logger = logging.getLogger(__name__)
CHANNEL = "medic:agent-jobs"
_PING_EVERY = 15.0
_SILENCE_LIMIT = 45.0

_publisher = None
_publisher_lock = threading.Lock()


def _sync_client():
    global _publisher
    if _publisher is None:
        with _publisher_lock:
            if _publisher is None:
                import redis

                _publisher = redis.Redis.from_url(
                    settings.MEDIC_AGENT_WAKEUP_REDIS_URL,
                    socket_connect_timeout=0.5,
                    socket_timeout=0.5,
                    health_check_interval=30,
                )
    return _publisher


def publish(agent_ids: Iterable[int]) -> None:
    """Tell every serving process that these agents have work (call after commit)."""
    ids = sorted(set(agent_ids))
    if not ids or not settings.MEDIC_AGENT_WAKEUP_REDIS_URL:
        return
    try:
        client = _sync_client()
        # One message per 500 ids keeps messages small for label targets over large fleets.
        for start in range(0, len(ids), 500):
            client.publish(CHANNEL, ",".join(str(i) for i in ids[start : start + 500]))
    except Exception:
        logger.warning(
            "could not publish a job wake-up; polls find the job on their next re-check",
            exc_info=True,
        )


class Hub:
    """The waiting polls of one event loop and the subscription that wakes them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._task: asyncio.Task | None = None

    @property
    def waiting(self) -> int:
        return sum(len(s) for s in self._waiters.values())

    @contextlib.contextmanager
    def waiter(self, agent_id: int) -> Iterator[asyncio.Event]:
        """Register before checking the database, so a job queued in between still wakes it."""
        self._ensure_listener()
        event = asyncio.Event()
        self._waiters.setdefault(agent_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(agent_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[agent_id]

    def wake(self, agent_id: int) -> None:
        for event in self._waiters.get(agent_id, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    def _ensure_listener(self) -> None:
        if self.url and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        delay = 0.5
        while True:
            client = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=2, socket_keepalive=True
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                WAKEUP_CONNECTED.set(1)
                delay = 0.5
                # Messages published while we were not subscribed are lost: re-check all.
                self.wake_all()
                await self._pump(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                WAKEUP_CONNECTED.set(0)
                logger.warning("job wake-up subscription lost (%s); reconnecting", exc)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 30.0)
            finally:
                WAKEUP_CONNECTED.set(0)
                # Bounded: this also runs while the task is being cancelled at shutdown.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(client.aclose(), 1.0)

    async def _pump(self, pubsub) -> None:
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=_PING_EVERY)
            now = loop.time()
            if message is None:
                if now - heard > _SILENCE_LIMIT:
                    raise ConnectionError("no answer to pings from Redis")
                await pubsub.ping()
                continue
            heard = now
            if message.get("type") != "message":
                continue
            for part in bytes(message["data"]).split(b","):
                with contextlib.suppress(ValueError):
                    self.wake(int(part))


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """The hub of the running event loop (one per process under uvicorn)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub(settings.MEDIC_AGENT_WAKEUP_REDIS_URL)
    return found


def recheck_delay() -> float:
    """The next safety-net re-check, jittered so that a fleet does not re-check in step."""
    base = settings.MEDIC_AGENT_POLL_RECHECK_SECONDS
    return base * (0.75 + random.random() / 2)
