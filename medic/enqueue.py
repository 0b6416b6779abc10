"""Enqueueing that never fails the request that asked for it.

Everything enqueued here is also recovered by the sweep (overdue deliveries, unprocessed state
changes), so a broker outage delays work instead of turning a stored heartbeat into a 500.
"""

from __future__ import annotations

import logging

from celery import signature
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args) -> None:
    """Enqueue ``task`` (a task, or a task's registered name) once the transaction commits.

    By name, the module that enqueues need not import the tasks module that calls it back
    (no import cycle between a service and its task)."""
    name = task if isinstance(task, str) else task.name

    def send() -> None:
        try:
            (signature(task) if isinstance(task, str) else task).delay(*args)
        except Exception:
            logger.warning(
                "could not enqueue task; the sweep will pick the work up",
                extra={"task": name},
                exc_info=True,
            )

    transaction.on_commit(send)
