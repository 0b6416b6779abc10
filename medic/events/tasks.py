from __future__ import annotations

from celery import shared_task

from medic.events.consumers import events_dispatch
from medic.events.retention import events_prune


@shared_task(name="medic.events.dispatch", ignore_result=True, time_limit=120, soft_time_limit=100)
def dispatch() -> None:
    """Eager path: enqueued when a transaction that recorded events commits."""
    events_dispatch()


@shared_task(name="medic.events.sweep", ignore_result=True, time_limit=120, soft_time_limit=100)
def sweep() -> None:
    """Safety net in beat: whatever the eager task missed (lost message, killed worker) or a
    handler failed on and is due for a retry."""
    events_dispatch()


@shared_task(name="medic.events.prune", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def prune() -> None:
    events_prune()
