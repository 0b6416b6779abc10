"""Enqueueing that never fails the request that asked for it.

Everything enqueued here is also recovered by the sweep (overdue deliveries, unprocessed state
changes), so a broker outage delays work instead of turning a stored heartbeat into a 500.
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args) -> None:
    def send() -> None:
        try:
            task.delay(*args)
        except Exception:
            logger.warning(
                "could not enqueue task; the sweep will pick the work up",
                extra={"task": task.name},
                exc_info=True,
            )

    transaction.on_commit(send)
