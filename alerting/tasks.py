from __future__ import annotations

from celery import shared_task

from alerting.delivery import delivery_attempt


@shared_task(
    name="alerting.deliver", acks_late=True, ignore_result=True, time_limit=60, soft_time_limit=50
)
def deliver(delivery_id: int) -> None:
    """Send one delivery attempt; schedule the next one on a transient failure.

    Retries are new messages with a countdown (no sleeping in the worker), so a worker restart
    loses nothing: the Delivery row keeps the schedule and the sweep re-enqueues overdue ones.
    """
    retry_in = delivery_attempt(delivery_id=delivery_id)
    if retry_in is not None:
        deliver.apply_async(args=[delivery_id], countdown=retry_in)
