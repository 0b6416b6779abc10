from __future__ import annotations

from celery import shared_task

from heartbeats import sweep as sweep_module
from heartbeats.services import heartbeats_prune
from medic.metrics import HEARTBEATS_PRUNED


@shared_task(name="heartbeats.sweep", ignore_result=True, time_limit=120, soft_time_limit=100)
def sweep() -> None:
    sweep_module.sweep()


@shared_task(name="heartbeats.prune", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def prune() -> None:
    HEARTBEATS_PRUNED.inc(heartbeats_prune())
