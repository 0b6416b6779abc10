"""The whole loop with real processes: a service stops beating, the real sweep marks it down and
opens its alert, monitoring records the domain events, the worker's "remediation" consumer starts
the matching playbook, which restarts the service through a webhook (a real HTTP receiver),
waits, and either sees the heartbeat come back (completed; the alert resolves) or not (the alert
is escalated with the execution's story, the execution fails).
"""

from __future__ import annotations

import pytest

from alerting.models import Alert, AlertState
from heartbeats.services import heartbeat_record, service_create
from remediation.playbooks import services
from remediation.playbooks.models import Execution, ExecutionState
from tests.playbooks.conftest import playbook_yaml
from tests.playbooks.test_durability_e2e import FAST, _broker, _ensure_beat_schedule, _wait  # noqa: F401
from tests.receivers import Receiver

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]


def _setup(receiver: Receiver, timeout: str):
    services.playbook_save(
        document=playbook_yaml(
            "restart-flow", receiver.url, pattern="flow-*", wait="1s", timeout=timeout
        ),
        actor="tests",
    )
    service = service_create(heartbeat_name="flow-worker", alert_interval=0.05, priority="p2")
    heartbeat_record(service_ref=service.pk)
    return service


def test_service_stops_beating_playbook_restarts_it_and_the_alert_resolves(start_worker):
    _ensure_beat_schedule()
    with Receiver() as receiver:
        service = _setup(receiver, "60s")
        worker = start_worker(beat=True, **FAST)
        receiver.wait_for(1, timeout=90)  # the restart call: the service comes back
        execution = Execution.objects.get()
        assert execution.alert_id == Alert.objects.get(service=service).pk

        def completed():
            heartbeat_record(service_ref=service.pk)
            return Execution.objects.filter(state=ExecutionState.COMPLETED).exists()

        _wait(completed, 90, "the execution to complete", [worker])
        assert receiver.requests[0].json()["service"] == "flow-worker"
        assert [r.headers["Idempotency-Key"] for r in receiver.requests] == [
            f"medic-{execution.pk}-restart"
        ]
        _wait(
            lambda: Alert.objects.filter(service=service, state=AlertState.RESOLVED).exists(),
            60,
            "the alert to resolve",
            [worker],
        )


def test_no_heartbeat_after_the_restart_escalates(start_worker, slack, pagerduty):
    _ensure_beat_schedule()
    with Receiver() as receiver:
        service = _setup(receiver, "3s")
        worker = start_worker(beat=True, **FAST)
        execution = _wait(
            lambda: Execution.objects.filter(state=ExecutionState.FAILED).first(),
            120,
            "the execution to fail",
            [worker],
        )
        alert = Alert.objects.get(service=service)
        assert alert.state == AlertState.OPEN
        assert alert.details["remediation"]["execution_id"] == execution.pk
        assert execution.events.filter(kind="escalated").exists()
        # Slack heard the alert, then the escalation with the story.
        messages = [r.json()["text"] for r in slack.wait_for(2, timeout=60)]
        story = next(m for m in messages if "*Remediation:*" in m)
        assert "Playbook restart-flow v1" in story and "verify (condition): failed" in story
        # PagerDuty is never sent "still down" repeats, but the escalation reaches it: a trigger
        # for the same incident, with the story.
        opened, escalated = [r.json() for r in pagerduty.wait_for(2, timeout=60)][:2]
        assert opened["event_action"] == escalated["event_action"] == "trigger"
        assert opened["dedup_key"] == escalated["dedup_key"] == alert.dedup_key
        details = escalated["payload"]["custom_details"]
        assert "verify (condition): failed" in details["remediation_story"]
        assert details["remediation"]["execution_id"] == execution.pk
