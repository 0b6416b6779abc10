"""End to end with real processes: a Celery worker with embedded beat on the test database and
Redis, and a real HTTP receiver standing in for the restart endpoint.

The worker is killed with SIGKILL in the middle of a webhook step and in the middle of a wait;
a new one takes over and every execution completes. The receiver sees exactly one distinct
Idempotency-Key per step (a resend after the kill carries the same key), and exactly one call
where no process died mid-request.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.db import transaction

from alerting.models import Alert, AlertState
from alerting.services import alert_open
from heartbeats.models import Service
from heartbeats.services import heartbeat_record, service_create
from medic.apikeys import api_key_create
from medic.events.services import event_record
from remediation.playbooks import services
from remediation.playbooks.models import Execution, ExecutionState
from tests.e2e.conftest import BIN, Proc, free_port, process_env
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
    return _down(f"{name}-svc")


def _down(heartbeat_name: str) -> Service:
    """A service that went down: its alert is open and alert.opened recorded (the worker's event
    consumer starts the matching playbook)."""
    service = service_create(heartbeat_name=heartbeat_name, alert_interval=60, priority="p2")
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


def test_kill_9_mid_script_never_runs_the_script_twice(start_worker):
    """A local script is killed with its worker mid-run: it is not run again (its side effect
    may have happened). The job is failed as lost after its timeout plus the result grace, the
    step fails without using its retries, and on_failure decides (here: continue)."""
    from remediation.jobs import LOST_DETAIL
    from remediation.models import Job
    from remediation.services import script_create

    _ensure_beat_schedule()
    importlib.import_module("remediation.migrations.0002_periodic_tasks").create(apps, None)
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    one, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    assert PeriodicTask.objects.filter(task="remediation.expire_jobs").update(interval=one) == 1
    # The sandbox runs scripts as an unprivileged user: a directory anyone may write to.
    shared = Path(tempfile.mkdtemp(prefix="medic-script-"))
    shared.chmod(0o777)
    effect = shared / "side-effect"
    try:
        script_create(
            name="append-once",
            actor="tests",
            body=f"#!/bin/sh\necho ran >> {effect}\nsleep 6\n",
            args_schema={"type": "object", "properties": {}, "additionalProperties": False},
            timeout_seconds=8,
            run_local=True,
        )
        with Receiver() as receiver:
            services.playbook_save(
                document=textwrap.dedent(
                    f"""\
                    name: mid-script
                    trigger: {{service_pattern: "mid-script-*"}}
                    steps:
                      - name: append
                        type: script
                        script: append-once
                        timeout: 60s
                        retries: 2
                        on_failure: continue
                      - name: report
                        type: webhook
                        url: "{receiver.url}/report"
                    """
                ),
                actor="tests",
            )
            _down("mid-script-svc")
            env = {**FAST, "MEDIC_AGENT_RESULT_GRACE_SECONDS": "1"}
            worker = start_worker(beat=True, **env)
            _wait(
                lambda: effect.exists() and effect.read_text().strip(),
                90,
                "the script to start",
                [worker],
            )
            _kill9(worker)
            execution = Execution.objects.get()
            replacement = start_worker(beat=True, **env)
            _wait(
                lambda: Execution.objects.filter(state=ExecutionState.COMPLETED).exists(),
                120,
                "the execution to complete",
                [replacement],
            )
            assert effect.read_text().splitlines().count("ran") == 1
            [job] = Job.objects.all()
            assert job.state == "failed" and job.detail == LOST_DETAIL
            step = execution.steps.get(name="append")
            assert step.state == "failed" and step.attempts == 1  # its retries were not used
            assert [r.path for r in receiver.requests] == ["/report"]
            assert execution.events.filter(kind="completed").count() == 1
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture
def procs():
    """Beat and web processes started by a test, stopped at its end."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def _beat(tmp_path, procs: list[Proc]) -> Proc:
    args = [str(BIN / "celery"), "-A", "medic", "beat", "--loglevel", "INFO"]
    args += ["--schedule", str(tmp_path / "beat-schedule")]
    proc = Proc(args, process_env(**FAST), tmp_path / f"beat-{len(procs)}.log")
    procs.append(proc)
    return proc


def _web(tmp_path, procs: list[Proc]) -> tuple[str, Proc]:
    port = free_port()
    args = [str(BIN / "gunicorn"), "medic.front:application", "--config", "deploy/gunicorn.conf.py"]
    args += ["--bind", f"127.0.0.1:{port}", "--workers", "1"]
    env = process_env(**FAST, GUNICORN_THREADS="2")
    proc = Proc(args, env, tmp_path / f"web-{len(procs)}.log")
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: _up(url) or proc.popen.poll() is not None, 60, "the web process", [proc])
    assert proc.popen.poll() is None, proc.output()
    return url, proc


def _up(url: str) -> bool:
    try:
        return urllib.request.urlopen(url + "/health/live", timeout=1).status == 200
    except OSError:
        return False


def _post(url: str, key: str, body: dict, **headers: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_kill_9_beat_mid_wait_the_restarted_beat_sweep_finishes_it(start_worker, procs, tmp_path):
    """Beat runs on its own. It is killed with SIGKILL while an execution waits, and so is the
    worker holding the wait's timer: nothing is scheduled any more except the row's due time.
    A restarted beat's sweep re-enqueues the step and the execution completes, the webhook
    called once."""
    _ensure_beat_schedule()
    with Receiver() as receiver:
        service = _start(receiver, "mid-beat", wait="8s")
        worker = start_worker(beat=False, **FAST)
        beat = _beat(tmp_path, procs)
        _wait(
            lambda: Execution.objects.filter(state=ExecutionState.WAITING, step_index=1).exists(),
            60,
            "the wait step",
            [worker, beat],
        )
        _kill9(beat)
        _kill9(worker)
        replacement = start_worker(beat=False, **FAST)
        restarted = _beat(tmp_path, procs)

        def completed():
            heartbeat_record(service_ref=service.pk)
            return Execution.objects.filter(state=ExecutionState.COMPLETED).first()

        execution = _wait(completed, 90, "the execution to complete", [replacement, restarted])
        assert _keys(receiver) == [f"medic-{execution.pk}-restart"]
        settle = execution.steps.get(name="settle")
        assert settle.state == "succeeded"
        assert settle.finished_at - settle.started_at >= timedelta(seconds=8)
        assert execution.events.filter(kind="completed").count() == 1


def test_kill_9_web_after_it_accepted_the_request_the_execution_runs_once(
    start_worker, procs, tmp_path
):
    """The web process is killed with SIGKILL right after answering (a failure report that
    triggers a playbook, an execute call). What it accepted is in PostgreSQL: each execution
    runs once. A client that lost the answer and repeats the execute call with its
    Idempotency-Key gets the same execution back."""
    _ensure_beat_schedule()
    key = api_key_create(name="web-kill", scopes=["write"]).secret
    with Receiver() as receiver:
        for document in (
            playbook_yaml("disk-full", receiver.url, pattern="batch-*", extra_trigger=DISK_FULL),
            playbook_yaml("by-hand", receiver.url, pattern="manual-*"),
        ):
            services.playbook_save(document=document, actor="tests")
        batch = service_create(heartbeat_name="batch-nightly", alert_interval=60)
        manual = service_create(heartbeat_name="manual-svc", alert_interval=60)

        url, web = _web(tmp_path, procs)
        failed = {"exit_code": 28, "output_tail": "No space left on device"}
        status, body = _post(f"{url}/v2/heartbeat/batch-nightly/fail", key, failed)
        assert status == 201, body
        _kill9(web)

        url, web = _web(tmp_path, procs)
        execute = f"{url}/v2/playbooks/by-hand/execute"
        status, first = _post(execute, key, {"service": "manual-svc"}, **{"Idempotency-Key": "k1"})
        assert status == 201, first
        _kill9(web)

        url, web = _web(tmp_path, procs)
        execute = f"{url}/v2/playbooks/by-hand/execute"
        status, again = _post(execute, key, {"service": "manual-svc"}, **{"Idempotency-Key": "k1"})
        assert status == 200 and again["id"] == first["id"]

        worker = start_worker(beat=True, **FAST)

        def completed():
            # A service beats again once its restart has been asked for: a beat before that is a
            # recovery, which cancels the alert the failure opened before the trigger sees it.
            for service in (batch, manual):
                if Execution.objects.filter(service=service).exists():
                    heartbeat_record(service_ref=service.pk)
            return Execution.objects.filter(state=ExecutionState.COMPLETED).count() == 2

        _wait(completed, 120, "both executions to complete", [worker, web])
        executions = {e.playbook.name: e for e in Execution.objects.select_related("playbook")}
        assert set(executions) == {"disk-full", "by-hand"}
        assert executions["by-hand"].pk == first["id"]
        assert sorted(_keys(receiver)) == sorted(
            f"medic-{e.pk}-restart" for e in executions.values()
        )
        for execution in executions.values():
            assert execution.events.filter(kind="completed").count() == 1


DISK_FULL = "  exit_codes: [28]"
