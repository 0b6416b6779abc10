"""Container health checks for the processes that serve no HTTP: the Celery worker and beat.

``python manage.py medic_healthcheck worker`` asks this host's worker to answer a broker ping
(it is connected and consuming); ``... beat`` passes while the sweep that beat schedules has
finished a pass within ``--max-age`` seconds (any worker, recorded in the shared cache). The
web service and the agent gateway are checked on ``/health/ready`` instead.
"""

from __future__ import annotations

import logging
import socket
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)
SWEEP_KEY = "medic:sweep:last-run"


def sweep_ran(at: float | None = None) -> None:
    """Record a finished sweep pass (never fails the sweep: a cache outage only shows here)."""
    try:
        cache.set(SWEEP_KEY, at if at is not None else time.time(), timeout=None)
    except Exception as exc:
        logger.warning("could not record the sweep's last run: %s", exc)


def check_beat(max_age: float) -> tuple[bool, str]:
    last = cache.get(SWEEP_KEY)
    if last is None:
        return False, "no sweep pass recorded yet"
    age = time.time() - float(last)
    if age > max_age:
        return False, f"the last sweep pass finished {age:.0f} s ago (limit {max_age:.0f} s)"
    return True, f"the last sweep pass finished {age:.0f} s ago"


def check_worker(timeout: float, node: str | None = None) -> tuple[bool, str]:
    from medic.celery import app

    node = node or f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=timeout)
    if any(node in reply for reply in replies):
        return True, f"{node} answered"
    return False, f"{node} did not answer a broker ping within {timeout:g} s"
