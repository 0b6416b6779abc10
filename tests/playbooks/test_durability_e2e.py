"""End to end with real processes: a Celery worker with embedded beat on the test database and
Redis, and a real HTTP receiver standing in for the restart endpoint.

The worker is killed with SIGKILL in the middle of a webhook step and in the middle of a wait;
a new one takes over and every execution completes. The receiver sees exactly one distinct
Idempotency-Key per step (a resend after the kill carries the same key), and exactly one call
where no process died mid-request.
"""

from __future__ import annotations

import importlib
import os
import signal
import time

import pytest
from django.apps import apps
from django.db import transaction

from alerting.models import Alert, AlertState
from alerting.services import alert_open
from heartbeats.models import Service
from heartbeats.services import heartbeat_record, service_create
from medic.events.services import event_record
from remediation.playbooks import services
from remediation.playbooks.models import Execution, ExecutionState
from tests.playbooks.conftest import playbook_yaml
from tests.receivers import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FAST = {
    # A killed worker's step is recovered after its timeout plus this margin.
    "MEDIC_PLAYBOOK_LEASE_MARGIN_SECONDS": "2",
    "MEDIC_PLAYBOOK_SWEEP_GRACE_SECONDS": "1",
}


@pytest.fixture(autouse=True)
def _broker():
    """Tasks this process enqueues go to the broker, for the real worker (not run inline)."""
    from medic.celery import app

    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


def _ensure_beat_schedule() -> None:
    # Transactional tests flush tables between tests, data-migration rows included.
    for module in (
        "heartbeats.migrations.0002_periodic_tasks",
        "medic.events.migrations.0002_periodic_tasks",
        "remediation.playbooks.migrations.0002_periodic_tasks",
    ):
        importlib.import_module(module).create(apps, None)
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    one, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.filter(task__in=["playbooks.sweep", "medic.events.sweep"]).update(
        interval=one
    )


def _wait(predicate, timeout: float, what: str, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    logs = "\n".join(
        line for p in procs for line in p.output().splitlines() if "sweep" not in line
    )[-6000:]
    story = [
        (
            e.pk,
            e.state,
            e.step_index,
            e.attempt,
            e.due_at,
            list(e.events.values_list("kind", "step", "message")),
        )
        for e in Execution.objects.all()
    ]
    raise AssertionError(f"timed out waiting for {what}\n{story}\n{logs}")


def _kill9(proc) -> None:
    os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(10)


def _start(receiver: Receiver, name: str, *, wait: str, timeout: str = "60s") -> Execution:
    """A down service with an open alert and the alert.opened event, as monitoring records
    them; the worker's event consumer starts the playbook."""
    services.playbook_save(
        document=playbook_yaml(name, receiver.url, pattern=f"{name}-*", wait=wait, timeout=timeout),
        actor="tests",
    )
    service = service_create(heartbeat_name=f"{name}-svc", alert_interval=60, priority="p2")
    with transaction.atomic():
        Service.objects.filter(pk=service.pk).update(status="down", consecutive_failures=1)
        service.refresh_from_db()
        alert = alert_open(service=service)
        event_record(
            kind="alert.opened",
            service_id=service.pk,
            service_name=service.heartbeat_name,
            payload={"alert_id": alert.pk, "consecutive_failures": 1},
        )
    return service


def _keys(receiver: Receiver) -> list[str]:
    return [r.headers.get("Idempotency-Key") for r in receiver.requests]


def test_kill_9_mid_webhook_resends_with_the_same_key_and_completes(start_worker):
    _ensure_beat_schedule()
    with Receiver() as receiver:
        # The first call hangs long enough for the worker to die while it waits for the answer.
        receiver.respond(200, b"{}", delay=30)
        service = _start(receiver, "mid-webhook", wait="1s")
        worker = start_worker(beat=True, **FAST)
        receiver.wait_for(1, timeout=60)
        _kill9(worker)
        execution = Execution.objects.get()
        assert execution.state == ExecutionState.RUNNING
        replacement = start_worker(beat=True, **FAST)
        receiver.wait_for(2, timeout=60)

        def completed():
            heartbeat_record(service_ref=service.pk)  # the restarted service beats again
            return Execution.objects.filter(state=ExecutionState.COMPLETED).exists()

        _wait(completed, 90, "the execution to complete", [replacement])
        keys = _keys(receiver)
        assert len(keys) == 2  # the interrupted call and its resend: nothing more
        assert set(keys) == {f"medic-{execution.pk}-restart"}
        execution.refresh_from_db()
        step = execution.steps.get(name="restart")
        assert step.state == "succeeded" and step.claims == 2 and step.interruptions == 1
        assert step.attempts == 1
        assert execution.events.filter(kind="completed").count() == 1


def test_kill_9_mid_wait_completes_without_repeating_the_webhook(start_worker):
    _ensure_beat_schedule()
    with Receiver() as receiver:
        service = _start(receiver, "mid-wait", wait="8s")
        worker = start_worker(beat=True, **FAST)
        _wait(
            lambda: Execution.objects.filter(state=ExecutionState.WAITING, step_index=1).exists(),
            60,
            "the wait step",
            [worker],
        )
        _kill9(worker)
        replacement = start_worker(beat=True, **FAST)

        def completed():
            heartbeat_record(service_ref=service.pk)
            return Execution.objects.filter(state=ExecutionState.COMPLETED).first()

        execution = _wait(completed, 90, "the execution to complete", [replacement])
        # No process died mid-request here: exactly one call.
        assert _keys(receiver) == [f"medic-{execution.pk}-restart"]
        settle = execution.steps.get(name="settle")
        assert settle.state == "succeeded"
        assert settle.finished_at - settle.started_at >= __import__("datetime").timedelta(seconds=8)
        _wait(
            lambda: Alert.objects.filter(state=AlertState.RESOLVED, service=service).exists(),
            60,
            "the alert to resolve",
            [replacement],
        )
