from __future__ import annotations

from celery import shared_task

from alerting.delivery import DELIVER_TASK, delivery_attempt
from alerting.sweep import alerting_sweep


@shared_task(
    name=DELIVER_TASK, acks_late=True, ignore_result=True, time_limit=60, soft_time_limit=50
)
def deliver(delivery_id: int) -> None:
    """Send one delivery attempt; schedule the next one on a transient failure.

    Retries are new messages with a countdown (no sleeping in the worker), so a worker restart
    loses nothing: the Delivery row keeps the schedule and the sweep re-enqueues overdue ones.
    """
    retry_in = delivery_attempt(delivery_id=delivery_id)
    if retry_in is not None:
        deliver.apply_async(args=[delivery_id], countdown=retry_in)


@shared_task(name="alerting.sweep", ignore_result=True, time_limit=120, soft_time_limit=100)
def sweep() -> None:
    """Repeat open alerts, release held ones, reconcile, re-enqueue overdue deliveries."""
    alerting_sweep()
