from __future__ import annotations

import logging

from celery import shared_task

from heartbeats import sweep as sweep_module
from heartbeats.services import heartbeats_prune
from medic.metrics import HEARTBEATS_PRUNED

logger = logging.getLogger(__name__)


@shared_task(name="heartbeats.sweep", ignore_result=True, time_limit=120, soft_time_limit=100)
def sweep() -> None:
    result = sweep_module.sweep()
    done = {name: len(value) for name, value in vars(result).items() if isinstance(value, list)}
    if any(done.values()) or result.errors:
        # What happened, not that nothing did: an empty sweep (most of them) logs nothing.
        summary = ", ".join(
            f"{count} {name.replace('_', ' ')}" for name, count in done.items() if count
        )
        logger.info("sweep: %s; %d errors", summary or "nothing done", result.errors)


@shared_task(name="heartbeats.prune", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def prune() -> None:
    HEARTBEATS_PRUNED.inc(heartbeats_prune())
