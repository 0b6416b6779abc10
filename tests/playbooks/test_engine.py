"""The engine in-process on a controlled clock, against a real HTTP receiver: triggers from the
domain-event outbox, steps, retries, escalation, shadow mode, circuit breaker, cancel, the stop
switch, signatures, outcome scoring and demotion."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from alerting.delivery import delivery_attempt
from alerting.models import Alert, AlertReason, AlertState, Delivery
from alerting.services import alert_open, alert_renotify
from heartbeats.models import Heartbeat, Service
from heartbeats.services import service_create
from medic.events.consumers import events_dispatch
from medic.events.services import event_record
from remediation.playbooks import engine, scoring, services
from remediation.playbooks.models import (
    CircuitBreaker,
    Execution,
    ExecutionState,
    Playbook,
    TriggerRecord,
)
from remediation.playbooks.triggers import trigger_service
from tests.fakes import FakePagerDuty
from tests.playbooks.conftest import playbook_yaml
from tests.receivers import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    with Receiver(default_body=b'{"ok": true}') as r:
        yield r


def _service(name="worker-1", failures=1) -> Service:
    service = service_create(heartbeat_name=name, alert_interval=1, priority="p2")
    Service.objects.filter(pk=service.pk).update(status="down", consecutive_failures=failures)
    service.refresh_from_db()
    return service


def _alert(service: Service) -> Alert:
    with transaction.atomic():
        return alert_open(service=service)


def _save(text: str) -> Playbook:
    return services.playbook_save(document=text, actor="tests").playbook


def _event(service: Service, kind="alert.opened", **payload):
    with transaction.atomic():
        event_record(
            kind=kind, service_id=service.pk, service_name=service.heartbeat_name, payload=payload
        )
    events_dispatch()


def run(execution: Execution, clock, *, until=None, limit=50) -> Execution:
    """Drive an execution like the worker would, moving the clock to each due time."""
    for _ in range(limit):
        execution.refresh_from_db()
        if execution.state not in (ExecutionState.RUNNING, ExecutionState.WAITING):
            return execution
        if until and until(execution):
            return execution
        clock[0] = max(clock[0], execution.due_at)
        engine.execution_advance(
            execution_id=execution.pk,
            step_index=execution.step_index,
            attempt=execution.attempt,
            now=clock[0],
        )
    raise AssertionError("execution did not finish")


def test_alert_triggers_restart_wait_heartbeat_and_completes(receiver):
    service = _service()
    alert = _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url))
    _event(service, "alert.opened", alert_id=alert.pk, consecutive_failures=1)
    execution = Execution.objects.get()
    assert execution.state == ExecutionState.RUNNING
    assert execution.alert_id == alert.pk
    clock = [timezone.now()]

    def waiting_on_verify(e):
        return e.step_index == 2 and e.state == ExecutionState.WAITING

    run(execution, clock, until=waiting_on_verify)
    request = receiver.requests[0]
    assert request.path == "/restart"
    assert request.json() == {"service": "worker-1", "alert": str(alert.pk)}
    assert request.headers["Idempotency-Key"] == f"medic-{execution.pk}-restart"
    Heartbeat.objects.create(
        service=service, status="UP", source="v2", time=clock[0] + timedelta(seconds=1)
    )
    execution = run(execution, clock)
    assert execution.state == ExecutionState.COMPLETED
    assert [s.state for s in execution.steps.order_by("position")] == ["succeeded"] * 3
    kinds = list(execution.events.values_list("kind", flat=True))
    assert kinds[0] == "created" and kinds[-1] == "completed"
    assert "waiting" in kinds and "step_succeeded" in kinds
    assert len(receiver.requests) == 1


def test_no_heartbeat_escalates_the_alert_and_fails(receiver, pagerduty):
    service = _service()
    alert = _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url, timeout="5s"))
    trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    execution = run(Execution.objects.get(), [timezone.now()])
    assert execution.state == ExecutionState.FAILED
    assert execution.steps.get(name="verify").state == "failed"
    alert.refresh_from_db()
    assert alert.details["remediation"]["execution_id"] == execution.pk
    assert "verify (condition): failed" in alert.details["remediation"]["story"]
    assert alert.notify_count == 2
    assert execution.events.filter(kind="escalated").exists()


def _deliver() -> list[Delivery]:
    """Send what is due, as the worker would."""
    pending = list(Delivery.objects.filter(status="pending").order_by("id"))
    for delivery in pending:
        delivery_attempt(delivery_id=delivery.pk)
    return pending


def test_escalation_pages_pagerduty_once_with_the_story(receiver, settings):
    """PagerDuty is never re-notified, but an escalation reaches it: a trigger for the open
    incident's dedup key, the story in custom_details, the severity one step higher."""
    with FakePagerDuty() as pagerduty:
        settings.PAGERDUTY_ROUTING_KEY = "R0UTINGKEY000000000000000000abcd"  # 32 characters
        settings.PAGERDUTY_EVENTS_URL = pagerduty.url
        settings.SLACK_BOT_TOKEN = ""
        service = _service()
        alert = _alert(service)
        _deliver()
        [opened] = pagerduty.accepted
        _save(playbook_yaml("restart-worker", receiver.url, timeout="5s"))
        trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
        execution = run(Execution.objects.get(), [timezone.now()])
        assert execution.state == ExecutionState.FAILED
        assert [d.channel for d in _deliver()] == ["pagerduty"]
        escalation = pagerduty.accepted[1]
        assert escalation["event_action"] == "trigger"
        assert escalation["dedup_key"] == opened["dedup_key"] == alert.dedup_key
        assert pagerduty.open_incidents() == [alert.dedup_key]  # the same incident, updated
        payload = escalation["payload"]
        assert opened["payload"]["severity"] == "error" and payload["severity"] == "critical"
        assert payload["summary"].startswith("Remediation escalated: ")
        story = payload["custom_details"]["remediation_story"]
        assert f"Playbook restart-worker v1 (execution {execution.pk})" in story
        assert "verify (condition): failed" in story
        assert payload["custom_details"]["remediation"]["execution_id"] == execution.pk
        # A later "still down" repeat does not page again.
        alert_renotify(alert=Alert.objects.get(pk=alert.pk))
        _deliver()
        assert len(pagerduty.accepted) == 2


def test_webhook_retries_with_the_same_idempotency_key_then_fails_without_escalating(receiver):
    receiver.respond(503).respond(503).respond(503)
    service = _service()
    _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url))
    trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    execution = run(Execution.objects.get(), [timezone.now()])
    assert execution.state == ExecutionState.FAILED
    keys = {r.headers["Idempotency-Key"] for r in receiver.requests}
    assert len(receiver.requests) == 3 and keys == {f"medic-{execution.pk}-restart"}
    assert execution.events.filter(kind="step_retry").count() == 2
    step = execution.steps.get(name="restart")
    assert step.result["status_code"] == 503 and step.attempts == 3


def test_a_repeated_event_is_recorded_not_started_again_and_recovery_never_triggers(receiver):
    service = _service()
    _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url))
    _event(service, "alert.opened", consecutive_failures=1)
    _event(service, "service.still_down", consecutive_failures=2)
    _event(service, "service.recovered")
    assert Execution.objects.count() == 1
    decisions = list(TriggerRecord.objects.order_by("id").values_list("decision", flat=True))
    # alerting records its own alert.opened too: every event after the first is recorded only
    assert decisions[0] == "started" and len(decisions) >= 2
    assert set(decisions[1:]) == {"already_running"}


def test_consecutive_failures_threshold_and_pattern(receiver):
    other = _service("db-1", failures=5)
    _alert(other)
    service = _service(failures=2)
    _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url, failures=3))
    trigger_service(service=service, kind="service.still_down", event_id=None, payload={})
    trigger_service(service=other, kind="service.still_down", event_id=None, payload={})
    assert not Execution.objects.exists()
    trigger_service(
        service=service,
        kind="service.still_down",
        event_id=None,
        payload={"consecutive_failures": 3},
    )
    assert Execution.objects.get().service_name == "worker-1"


def test_no_open_alert_no_execution(receiver):
    service = _service(failures=5)
    _save(playbook_yaml("restart-worker", receiver.url))
    assert trigger_service(service=service, kind="service.down", event_id=None, payload={}) == []


def test_exit_code_signature_picks_the_right_playbook(receiver):
    service = _service("worker-batch")
    _alert(service)
    _save(playbook_yaml("disk-full", receiver.url, extra_trigger="  exit_codes: [28]"))
    _save(
        playbook_yaml(
            "oom", receiver.url, extra_trigger="  exit_codes: [137]\n  output_regex: 'Killed'"
        )
    )
    _event(
        service,
        "job.failed",
        exit_code=137,
        output_tail="Killed process 4242",
        consecutive_failures=1,
    )
    assert list(Execution.objects.values_list("playbook__name", flat=True)) == ["oom"]
    assert Execution.objects.get().trigger["exit_code"] == 137


def test_shadow_mode_records_everything_and_does_nothing(receiver):
    service = _service()
    _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url, mode="shadow"))
    trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    execution = run(Execution.objects.get(), [timezone.now()])
    assert execution.state == ExecutionState.COMPLETED and execution.mode == "shadow"
    assert receiver.requests == []
    steps = list(execution.steps.order_by("position"))
    assert [s.state for s in steps] == ["shadowed"] * 3
    assert steps[0].request["url"] == f"{receiver.url}/restart"
    assert steps[0].request["body"]["service"] == "worker-1"
    assert steps[0].request["headers"]["Idempotency-Key"] == f"medic-{execution.pk}-restart"


def test_circuit_breaker_stops_the_fourth_automatic_run_in_an_hour(receiver, settings):
    settings.MEDIC_PLAYBOOK_BREAKER_MAX_RUNS = 3
    service = _service()
    alert = _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url))
    start = timezone.now()
    for i in range(3):
        at = start + timedelta(minutes=10 * i)
        [execution] = trigger_service(
            service=service, kind="alert.opened", event_id=None, payload={}, now=at
        )
        engine.execution_cancel(execution_id=execution.pk, actor="tests")
        Execution.objects.filter(pk=execution.pk).update(created_at=at)
    fourth = start + timedelta(minutes=40)
    assert (
        trigger_service(service=service, kind="alert.opened", event_id=None, payload={}, now=fourth)
        == []
    )
    assert TriggerRecord.objects.filter(decision="circuit_open").count() == 1
    breaker = CircuitBreaker.objects.get(scope="playbook", key="restart-worker")
    assert breaker.opened_at is not None
    notice = Alert.objects.get(reason=AlertReason.REMEDIATION_CIRCUIT_OPEN)
    assert notice.state == AlertState.RESOLVED and "restart-worker" in notice.summary
    # still open an hour later: only an admin resets it
    later = start + timedelta(hours=3)
    assert (
        trigger_service(service=service, kind="alert.opened", event_id=None, payload={}, now=later)
        == []
    )
    services.breaker_reset(scope="playbook", key="restart-worker", actor="tests")
    services.breaker_reset(scope="service", key="worker-1", actor="tests")
    assert (
        len(trigger_service(service=service, kind="alert.opened", event_id=None, payload={})) == 1
    )
    assert alert.pk


def test_stop_switch_stops_new_runs_and_holds_running_ones(receiver):
    service = _service()
    _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url))
    [execution] = trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    services.remediation_switch_set(stopped=True, actor="tests", reason="incident review")
    clock = [timezone.now()]
    engine.execution_advance(execution_id=execution.pk, step_index=0, attempt=1, now=clock[0])
    assert receiver.requests == []
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING and execution.due_at > clock[0]
    engine.execution_cancel(execution_id=execution.pk, actor="tests")
    assert trigger_service(service=service, kind="alert.opened", event_id=None, payload={}) == []
    assert TriggerRecord.objects.filter(decision="remediation_stopped").exists()
    services.remediation_switch_set(stopped=False, actor="tests")
    assert (
        len(trigger_service(service=service, kind="alert.opened", event_id=None, payload={})) == 1
    )


def test_execution_pins_its_version(receiver):
    service = _service()
    _alert(service)
    _save(playbook_yaml("restart-worker", receiver.url))
    [execution] = trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    _save(playbook_yaml("restart-worker", receiver.url + "/v2"))
    run(execution, [timezone.now()], until=lambda e: e.step_index == 1)
    assert receiver.requests[0].path == "/restart"
    assert execution.version.version == 1


def test_approval_required_parks_the_execution(receiver):
    service = _service()
    _alert(service)
    text = playbook_yaml("restart-worker", receiver.url).replace(
        "mode: active\n", "mode: active\napproval: required\n"
    )
    _save(text)
    [execution] = trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    assert execution.state == ExecutionState.PENDING_APPROVAL and execution.due_at is None
    engine.execution_cancel(execution_id=execution.pk, actor="tests", reason="not now")
    execution.refresh_from_db()
    assert execution.state == ExecutionState.CANCELLED


def test_outcome_scoring_and_demotion(receiver, settings):
    settings.MEDIC_PLAYBOOK_DEMOTION_MIN_RUNS = 2
    settings.MEDIC_PLAYBOOK_BREAKER_MAX_RUNS = 100
    service = _service()
    _alert(service)
    playbook = _save(
        textwrap.dedent(
            f"""\
            name: poke
            verify_window: 1m
            trigger: {{service_pattern: "worker-*"}}
            steps:
              - {{name: poke, type: webhook, url: "{receiver.url}/poke"}}
            """
        )
    )
    for _ in range(2):
        [execution] = trigger_service(
            service=service, kind="alert.opened", event_id=None, payload={}
        )
        clock = [timezone.now()]
        execution = run(execution, clock)
        assert execution.state == ExecutionState.COMPLETED
        scoring.outcomes_score(now=execution.verify_until + timedelta(seconds=1))
        execution.refresh_from_db()
        assert execution.outcome == "not_recovered"
    playbook.refresh_from_db()
    assert playbook.demoted_at is not None
    assert Alert.objects.filter(reason=AlertReason.PLAYBOOK_DEMOTED).exists()
    [parked] = trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    assert parked.state == ExecutionState.PENDING_APPROVAL


def test_secrets_reach_the_receiver_and_are_masked_everywhere_recorded(receiver):
    import json

    from remediation.audit.models import AuditEntry
    from remediation.secrets.services import secret_set

    token = "s3cr3t-Tok3n-value"
    secret_set(name="restart_token", value=token, actor="tests")
    # The receiver echoes the token back, as careless APIs do.
    receiver.respond(200, json.dumps({"ok": True, "seen": token}).encode())
    service = _service()
    _alert(service)
    text = playbook_yaml("restart-worker", receiver.url).replace(
        "    timeout: 5s\n",
        '    timeout: 5s\n    headers:\n      Authorization: "Bearer ${SECRET.restart_token}"\n',
        1,
    )
    _save(text)
    trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    execution = run(Execution.objects.get(), [timezone.now()], until=lambda e: e.step_index == 1)
    assert receiver.requests[0].headers["Authorization"] == f"Bearer {token}"
    step = execution.steps.get(name="restart")
    assert step.request["headers"]["Authorization"] == "Bearer ••••••"
    assert token not in json.dumps(step.result) and "••••••" in step.result["body"]
    recorded = json.dumps(
        [list(execution.events.values()), list(AuditEntry.objects.values("details"))],
        default=str,
    )
    assert token not in recorded
    assert AuditEntry.objects.filter(event="webhook.called", execution_id=execution.pk).exists()


def test_unknown_secret_is_refused_at_save_time(admin):
    from medic.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc:
        _save(playbook_yaml("x", "http://127.0.0.1:9").replace("${ALERT_ID}", "${SECRET.nope}"))
    assert "nope" in str(exc.value.fields)


def test_script_step_runs_a_registered_script_once_in_the_sandbox():
    from remediation.jobs import job_run_local
    from remediation.models import Job
    from remediation.services import script_create

    script_create(
        name="clean-tmp",
        actor="tests",
        body='#!/bin/sh\necho "cleaned $*"\nexit 3\n',
        args_schema={
            "type": "object",
            "properties": {"target": {"type": "string", "pattern": "^[a-z0-9-]+$"}},
            "required": ["target"],
            "additionalProperties": False,
        },
        run_local=True,
    )
    service = _service()
    _alert(service)
    _save(
        textwrap.dedent(
            """\
            name: clean
            trigger: {service_pattern: "worker-*"}
            steps:
              - name: clean
                type: script
                script: clean-tmp
                args: {target: "${HEARTBEAT_NAME}"}
                success_exit_codes: [0, 3]
              - name: check
                type: condition
                check: step
                step: clean
                field: output
                matches: "cleaned --target=worker-1"
            """
        )
    )
    [execution] = trigger_service(service=service, kind="alert.opened", event_id=None, payload={})
    clock = [timezone.now()]
    engine.execution_advance(execution_id=execution.pk, step_index=0, attempt=1, now=clock[0])
    job = Job.objects.get()
    assert job.args == {"target": "worker-1"}
    assert job.requested_by == f"playbook:clean#{execution.pk}"
    # A resumed claim (the lease ran out) watches the same job instead of queueing another.
    execution.refresh_from_db()
    assert execution.state == ExecutionState.WAITING
    job_run_local(job_id=str(job.pk))
    execution = run(execution, clock)
    assert Job.objects.count() == 1
    assert execution.state == ExecutionState.COMPLETED, list(
        execution.events.values_list("message")
    )
    step = execution.steps.get(name="clean")
    assert step.result["exit_code"] == 3 and "cleaned" in step.result["output"]
