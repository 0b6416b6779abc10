"""The domain-event outbox: recorded with the state change, handled once per consumer, in
order per service, retried after a failing handler, pruned after retention."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from medic.events.consumers import (
    consumer_dispatch,
    consumer_register,
    consumer_unregister,
    consumers_for,
)
from medic.events.models import DomainEvent, EventKind, EventProgress
from medic.events.retention import events_prune
from medic.events.services import event_record
from medic.models import AuditEvent


class Recorder:
    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.seen: list[int] = []
        self.fail_on = fail_on or set()

    def __call__(self, event: DomainEvent) -> None:
        # A write of the handler: committed with the progress row, or not at all.
        AuditEvent.objects.create(actor="test", event=f"handled:{event.pk}", object_type="event")
        if event.pk in self.fail_on:
            raise RuntimeError("handler broke")
        self.seen.append(event.pk)


@pytest.fixture
def consumer():
    # The apps' own consumers (the playbook engine's, ...) step aside: these tests define theirs.
    installed = {c.name: c for kind in EventKind.values for c in consumers_for(kind)}
    for name in installed:
        consumer_unregister(name)
    registered: list[str] = []

    def register(name: str, kinds: set[str], recorder: Recorder | None = None) -> Recorder:
        recorder = recorder or Recorder()
        consumer_register(name, recorder, kinds=kinds)
        registered.append(name)
        return recorder

    yield register
    for name in registered:
        consumer_unregister(name)
    for c in installed.values():
        consumer_register(c.name, c.handler, kinds=set(c.kinds))


def _record(kind=EventKind.SERVICE_DOWN, service_id=1, **payload) -> DomainEvent:
    with transaction.atomic():
        return event_record(
            kind=kind, service_id=service_id, service_name=f"svc-{service_id}", payload=payload
        )


@pytest.mark.django_db(transaction=True)
def test_an_event_is_recorded_only_inside_the_state_change_transaction():
    with pytest.raises(RuntimeError):
        event_record(kind=EventKind.SERVICE_DOWN, service_id=1)
    with pytest.raises(ValueError):
        _record(kind="service.exploded")


@pytest.mark.django_db
def test_each_consumer_handles_an_event_once_and_keeps_its_own_progress(consumer):
    first = consumer("first", {EventKind.SERVICE_DOWN})
    second = consumer("second", {EventKind.SERVICE_DOWN, EventKind.SERVICE_RECOVERED})
    down = _record(consecutive_failures=1)
    up = _record(kind=EventKind.SERVICE_RECOVERED)

    assert consumer_dispatch("first") == 1
    assert consumer_dispatch("first") == 0
    assert first.seen == [down.pk]
    assert second.seen == []  # its own progress: untouched by the first consumer
    assert consumer_dispatch("second") == 2
    assert consumer_dispatch("second") == 0
    assert second.seen == [down.pk, up.pk]
    assert EventProgress.objects.filter(consumer="first").count() == 1  # not interested in up
    assert not EventProgress.objects.filter(
        consumer__in=["first", "second"], processed_at__isnull=True
    ).exists()
    assert AuditEvent.objects.filter(event__startswith="handled:").count() == 3
    assert down.payload == {"consecutive_failures": 1}


@pytest.mark.django_db
def test_a_failing_handler_leaves_the_event_pending_and_stalls_only_its_service(consumer):
    recorder = consumer("flaky", {EventKind.SERVICE_DOWN, EventKind.SERVICE_RECOVERED})
    bad = _record(service_id=1)
    later_same_service = _record(kind=EventKind.SERVICE_RECOVERED, service_id=1)
    other_service = _record(service_id=2)
    recorder.fail_on = {bad.pk}

    assert consumer_dispatch("flaky") == 1
    assert recorder.seen == [other_service.pk]
    progress = EventProgress.objects.get(consumer="flaky", event=bad)
    assert progress.processed_at is None and progress.attempts == 1
    assert "handler broke" in progress.last_error
    assert progress.next_attempt_at > timezone.now()  # backoff, no tight loop
    # The failed handler's own writes were rolled back with it.
    assert not AuditEvent.objects.filter(event=f"handled:{bad.pk}").exists()

    recorder.fail_on = set()
    assert consumer_dispatch("flaky") == 0  # still backing off; the later event waits
    EventProgress.objects.filter(pk=progress.pk).update(next_attempt_at=timezone.now())
    assert consumer_dispatch("flaky") == 2
    assert recorder.seen == [other_service.pk, bad.pk, later_same_service.pk]
    assert AuditEvent.objects.filter(event=f"handled:{bad.pk}").count() == 1


@pytest.mark.django_db(transaction=True)
def test_events_are_dispatched_eagerly_when_the_transaction_commits(consumer):
    recorder = consumer("eager", {EventKind.JOB_FAILED})
    with transaction.atomic():
        event = event_record(kind=EventKind.JOB_FAILED, service_id=7, payload={"exit_code": 3})
        assert recorder.seen == []  # nothing before the commit
    assert recorder.seen == [event.pk]

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        event_record(kind=EventKind.JOB_FAILED, service_id=7)
        1 / 0
    assert DomainEvent.objects.count() == 1  # rolled back with the state change


@pytest.mark.django_db(transaction=True)
def test_events_of_a_service_held_by_another_worker_are_skipped_not_overtaken(consumer):
    recorder = consumer("ordered", {EventKind.SERVICE_DOWN, EventKind.SERVICE_RECOVERED})
    a_down = _record(service_id=1)
    a_up = _record(kind=EventKind.SERVICE_RECOVERED, service_id=1)
    b_down = _record(service_id=2)
    # Dispatched eagerly on commit; made pending again to play the race.
    EventProgress.objects.filter(consumer="ordered").update(processed_at=None)
    recorder.seen.clear()

    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        # Another worker has claimed service 1's first event and is still handling it.
        try:
            with transaction.atomic():
                EventProgress.objects.select_for_update().get(consumer="ordered", event=a_down)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(30)
        assert consumer_dispatch("ordered") == 1
        assert recorder.seen == [b_down.pk]  # service 1's later event did not jump the queue
    finally:
        release.set()
        thread.join()
    assert consumer_dispatch("ordered") == 2
    assert recorder.seen == [b_down.pk, a_down.pk, a_up.pk]


@pytest.mark.django_db
def test_prune_deletes_events_past_retention_with_their_progress(consumer, settings):
    consumer("pruned", {EventKind.SERVICE_DOWN})
    old, recent = _record(), _record()
    DomainEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    settings.MEDIC_EVENT_RETENTION_DAYS = 30
    assert events_prune() == 1
    assert list(DomainEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert set(EventProgress.objects.values_list("event_id", flat=True)) == {recent.pk}


@pytest.mark.django_db
def test_consumer_backlog_is_exported(consumer):
    consumer("lagging", {EventKind.SERVICE_DOWN})
    _record()
    _record()
    DomainEvent.objects.update(created_at=timezone.now() - timedelta(seconds=90))
    assert REGISTRY.get_sample_value("medic_event_consumer_pending", {"consumer": "lagging"}) == 2
    lag = REGISTRY.get_sample_value("medic_event_consumer_lag_seconds", {"consumer": "lagging"})
    assert lag >= 90
    consumer_dispatch("lagging")
    assert REGISTRY.get_sample_value("medic_event_consumer_pending", {"consumer": "lagging"}) == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_handle_an_event_once(consumer):
    """The eager task, a redelivered copy of it and the periodic sweep may all run at once."""
    recorder = consumer("raced", {EventKind.SERVICE_DOWN})
    events = [_record(service_id=n) for n in range(1, 21)]
    EventProgress.objects.filter(consumer="raced").update(processed_at=None)
    recorder.seen.clear()
    start = threading.Barrier(4)

    def dispatcher() -> None:
        try:
            start.wait(30)
            consumer_dispatch("raced")
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(recorder.seen) == [e.pk for e in events]
    handled = AuditEvent.objects.filter(event__startswith="handled:")
    # Each handler write exists once per event: the first, eager run plus the raced one.
    assert handled.count() == 2 * len(events)
    assert not EventProgress.objects.filter(consumer="raced", processed_at__isnull=True).exists()
