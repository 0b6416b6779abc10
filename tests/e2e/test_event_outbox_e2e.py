"""The outbox across a killed worker, with real processes: a Celery worker is SIGKILLed while it
handles the event of a committed state change; after a restart the periodic sweep hands the
event to alerting again, and the alert is opened and delivered exactly once."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from alerting.models import Alert, Delivery
from heartbeats.models import Service
from heartbeats.services import heartbeat_record, service_create
from heartbeats.sweep import sweep as heartbeats_sweep
from medic.celery import app as celery_app
from medic.events.models import DomainEvent, EventKind, EventProgress
from tests.e2e.test_processes import _ensure_beat_schedule, _wait

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def broker_mode():
    """The test process enqueues to the real broker (Redis) instead of running tasks inline."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def test_worker_killed_mid_event_loses_nothing_and_delivers_once(start_worker, slack, broker_mode):
    _ensure_beat_schedule()
    service = service_create(heartbeat_name="outbox-e2e", alert_interval=5, priority="p3")
    heartbeat_record(service_ref=service.pk)
    Service.objects.filter(pk=service.pk).update(
        next_deadline_at=timezone.now() - timedelta(seconds=1)
    )

    # The state change commits (service down + service.down event); its dispatch task waits in
    # Redis, no worker is running yet.
    assert heartbeats_sweep().marked_down == [service.pk]
    event = DomainEvent.objects.get(kind=EventKind.SERVICE_DOWN)
    progress = EventProgress.objects.get(consumer="alerting", event=event)
    assert progress.processed_at is None

    # Hold the service row so that the worker's handler blocks inside its transaction.
    locked, release = threading.Event(), threading.Event()

    def hold_service_row() -> None:
        try:
            with transaction.atomic():
                Service.objects.select_for_update().get(pk=service.pk)
                locked.set()
                release.wait(120)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_service_row)
    holder.start()
    try:
        assert locked.wait(30)
        worker = start_worker(beat=False, MEDIC_RENOTIFY_MINUTES="60")
        _wait(lambda: _lock_waiters() >= 1, 60, "the worker to block in the handler", worker)
        os.killpg(worker.popen.pid, signal.SIGKILL)
        worker.popen.wait(10)
    finally:
        release.set()
        holder.join()

    # The crash rolled the handler back: nothing was opened, nothing sent, the event is pending.
    progress.refresh_from_db()
    assert progress.processed_at is None
    assert Alert.objects.count() == 0 and Delivery.objects.count() == 0
    assert slack.requests == []

    # A new worker (with beat): the outbox sweep hands the event over again.
    worker = start_worker(beat=True, MEDIC_RENOTIFY_MINUTES="60")
    _wait(lambda: Alert.objects.filter(state="open").exists(), 60, "the alert", worker)
    first = slack.wait_for(1, timeout=30)
    assert "outbox-e2e" in first[0].json()["text"]
    # Several more sweeps of every kind run; nothing is handled or sent twice.
    time.sleep(12)
    progress.refresh_from_db()
    assert progress.processed_at is not None
    assert Alert.objects.count() == 1
    assert Alert.objects.get().details == {} and Delivery.objects.count() == 1
    assert len(slack.requests) == 1
    assert DomainEvent.objects.filter(kind=EventKind.ALERT_OPENED).count() == 1
