"""A draft playbook against a real service, before anything runs: each step as the engine would
send it (variables resolved by the engine's own scope, secrets masked, as a shadow run records
it), and which of the service's failures of the last days its trigger would have fired for.

Nothing here writes: the execution and steps it hands the step code are never saved. The
trigger decision is the consumer's own (``triggers.trigger_misses``) asked about the stored
domain events, so "would have fired" means what the consumer would have decided then: an alert
open at the time, enough consecutive failures, a matching failure signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from remediation.playbooks import steps as step_code
from remediation.playbooks.engine import scope_for
from remediation.playbooks.models import Execution, ExecutionStep, Playbook
from remediation.playbooks.triggers import TRIGGER_KINDS, trigger_failures, trigger_misses
from remediation.playbooks.variables import UnresolvedVariable

PREVIEW_DAYS = 7
MAX_EVENTS = 200


@dataclass
class Preview:
    service: str
    since: datetime
    steps: list[dict] = field(default_factory=list)
    triggers: list[dict] = field(default_factory=list)

    @property
    def fired(self) -> int:
        return sum(1 for t in self.triggers if t["fires"])


def _open_alert(service):
    from alerting.models import Alert, AlertState

    return Alert.objects.filter(service=service, state=AlertState.OPEN).first()


def _alert_at(service, event, alerts: dict[int, object]):
    """The alert open for ``service`` when ``event`` happened (the consumer needs one)."""
    alert_id = (event.payload or {}).get("alert_id")
    if alert_id in alerts:
        return alerts[alert_id]
    for alert in alerts.values():
        if alert.opened_at <= event.occurred_at and (
            alert.resolved_at is None or alert.resolved_at > event.occurred_at
        ):
            return alert
    return None


def trigger_history(spec: dict, service, *, now: datetime, days: int = PREVIEW_DAYS) -> list[dict]:
    """The service's trigger events since ``now - days``, newest first, each with whether this
    trigger fires for it and, if not, why."""
    from alerting.models import Alert
    from medic.events.models import DomainEvent

    since = now - timedelta(days=days)
    events = list(
        DomainEvent.objects.filter(
            service_id=service.pk, kind__in=TRIGGER_KINDS, occurred_at__gte=since
        ).order_by("-occurred_at", "-id")[:MAX_EVENTS]
    )
    alerts = {
        a.pk: a
        for a in Alert.objects.filter(service=service, opened_at__lte=now).exclude(
            resolved_at__lt=since
        )
    }
    out = []
    for event in events:
        payload = event.payload or {}
        alert = _alert_at(service, event, alerts)
        if alert is None:
            why = "no alert was open (the alert.opened event that follows is the trigger)"
        else:
            failures = trigger_failures(event.kind, payload)
            why = trigger_misses(spec["trigger"], service, failures, payload, alert.details or {})
        out.append(
            {
                "event_id": event.pk,
                "kind": event.kind,
                "at": event.occurred_at,
                "alert_id": alert.pk if alert else None,
                "exit_code": payload.get("exit_code"),
                "fires": not why,
                "why_not": why,
            }
        )
    return out


def playbook_preview(*, spec: dict, service, now: datetime | None = None) -> Preview:
    """``spec`` is a validated (normalised) playbook; ``service`` a heartbeats Service."""
    now = now or timezone.now()
    alert = _open_alert(service)
    trigger = {
        "kind": "preview",
        "alert_id": alert.pk if alert else None,
        "consecutive_failures": service.consecutive_failures,
        "priority": alert.priority if alert else service.priority,
        "team": service.team,
        **{
            k: v
            for k, v in ((alert.details if alert else None) or {}).items()
            if isinstance(v, str | int | float | bool)
        },
    }
    scope = scope_for(
        service=service,
        service_name=service.heartbeat_name,
        playbook=spec["name"],
        execution_id="(new)",
        alert_id=alert.pk if alert else None,
        trigger=trigger,
    )
    # Unsaved stand-ins: the step code reads names and ids from them, never the database.
    execution = Execution(
        playbook=Playbook(name=spec["name"]), service=service, service_name=service.heartbeat_name
    )
    result = Preview(service=service.heartbeat_name, since=now - timedelta(days=PREVIEW_DAYS))
    for position, step in enumerate(spec["steps"]):
        ctx = step_code.StepContext(
            execution=execution,
            step=ExecutionStep(position=position, name=step["name"], type=step["type"]),
            spec=step,
            scope=scope,
            now=now,
        )
        row = {"name": step["name"], "type": step["type"], "would": None, "error": ""}
        try:
            row["would"] = step_code.describe(ctx)
        except UnresolvedVariable as exc:
            row["error"] = f"${{{exc}}} cannot be resolved for this service"
        if row["would"] and "headers" in row["would"]:
            row["would"]["headers"]["Idempotency-Key"] = step_code.idempotency_key(
                "<execution>", step["name"]
            )
        result.steps.append(row)
    result.triggers = trigger_history(spec, service, now=now)
    return result
