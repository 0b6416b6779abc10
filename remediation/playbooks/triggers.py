"""From monitoring facts to executions: which playbook fires for which event, and why not.

A playbook fires for a service whose heartbeat name (or display name) matches its
``service_pattern`` when an alert is open for the service, its consecutive failures reached the
trigger's ``consecutive_failures``, and, if the playbook has a failure signature, the failure's
exit code / output tail match it. A recovery never starts anything (it only tells waiting
condition steps to look now). Everything that matched but did not start is a ``TriggerRecord``:
already running, breaker open, a limit, remediation stopped.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from remediation.playbooks import compliance, engine, hooks, metrics
from remediation.playbooks.models import (
    OPEN_STATES,
    BreakerScope,
    CircuitBreaker,
    Execution,
    ExecutionState,
    Mode,
    Playbook,
    TriggerRecord,
)
from remediation.playbooks.switch import remediation_stopped

logger = logging.getLogger(__name__)
CONSUMER = "remediation"
TRIGGER_KINDS = frozenset(
    {
        "service.down",
        "service.still_down",
        "job.failed",
        "job.hung",
        "job.not_completed",
        "alert.opened",
    }
)
RECOVERY_KINDS = frozenset({"service.recovered", "alert.resolved"})
KINDS = TRIGGER_KINDS | RECOVERY_KINDS


def on_event(event) -> None:
    """The "remediation" consumer of the domain-event outbox (runs in its transaction)."""
    if not event.service_id:
        return
    if event.kind in RECOVERY_KINDS:
        engine.executions_nudge(service_id=event.service_id)
        if event.kind == "service.recovered":
            for recovered in hooks.recovered:
                recovered(service_id=event.service_id)
        return
    if event.kind not in TRIGGER_KINDS:
        return
    from heartbeats.models import Service

    service = Service.objects.filter(pk=event.service_id).first()
    if service is None:
        return
    trigger_service(
        service=service, kind=event.kind, event_id=event.pk, payload=event.payload or {}
    )


def register() -> None:
    from medic.events.consumers import consumer_register

    consumer_register(CONSUMER, on_event, kinds=set(KINDS))


def service_matches(pattern: str, service) -> bool:
    """Whether a trigger's service_pattern names ``service`` (heartbeat or display name)."""
    return name_matches(pattern, service.heartbeat_name) or name_matches(
        pattern, service.service_name
    )


def name_matches(pattern: str, name: str) -> bool:
    """A glob (``*``, ``?``, ``[...]``), case-sensitive."""
    return fnmatch.fnmatchcase(name, pattern)


def literal_prefix(pattern: str) -> str:
    """What every name ``pattern`` matches starts with: a necessary condition, for narrowing a
    sorted list of names before ``name_matches`` decides."""
    return re.split(r"[*?\[]", pattern, maxsplit=1)[0]


def signature_matches(trigger: dict, payload: dict, alert_details: dict) -> bool:
    exit_codes = trigger.get("exit_codes")
    regex = trigger.get("output_regex")
    if exit_codes:
        code = payload.get("exit_code", alert_details.get("exit_code"))
        if code is None or int(code) not in exit_codes:
            return False
    if regex:
        output = payload.get("output_tail", alert_details.get("output_tail")) or ""
        if not re.search(regex, output):
            return False
    return True


def trigger_misses(
    trigger: dict, service, failures: int, payload: dict, alert_details: dict
) -> str:
    """'' when a (normalised) trigger fires for this failure of ``service``, else why not. The
    consumer and the portal's preview ("would it have fired?") both ask this one function."""
    if not service_matches(trigger["service_pattern"], service):
        return f"{service.heartbeat_name} does not match {trigger['service_pattern']}"
    needed = trigger.get("consecutive_failures", 1)
    if failures < needed:
        return f"{failures} consecutive failure(s), the trigger needs {needed}"
    if not signature_matches(trigger, payload, alert_details):
        return "the failure signature (exit code / output) does not match"
    return ""


def trigger_failures(kind: str, payload: dict, current: int = 0) -> int:
    """The consecutive failures an event stands for (the service's ``current`` count when it
    is higher; an opened alert is at least one)."""
    failures = max(int(payload.get("consecutive_failures") or 0), current)
    if kind == "alert.opened" and not failures:
        failures = 1
    return failures


def trigger_service(
    *, service, kind: str, event_id: int | None, payload: dict, now: datetime | None = None
) -> list[Execution]:
    from alerting.models import Alert, AlertState

    now = now or timezone.now()
    alert = Alert.objects.filter(service=service, state=AlertState.OPEN).first()
    if alert is None:
        return []  # the alert.opened event that follows is the trigger
    failures = trigger_failures(kind, payload, service.consecutive_failures)
    started = []
    for playbook in Playbook.objects.filter(enabled=True).order_by("name"):
        version = playbook.versions.get(version=playbook.current_version)
        spec = version.spec["trigger"]
        if trigger_misses(spec, service, failures, payload, alert.details or {}):
            continue
        trigger = {
            "kind": kind,
            "event_id": event_id,
            "alert_id": alert.pk,
            "consecutive_failures": failures,
            "priority": alert.priority,
            "team": service.team,
            **{k: v for k, v in payload.items() if isinstance(v, str | int | float | bool)},
        }
        execution = _start(playbook, version.mode, service, alert, trigger, event_id, kind, now)
        if execution is not None:
            started.append(execution)
    return started


def _record(playbook, service, event_id, kind, decision, message="", execution=None, now=None):
    TriggerRecord.objects.create(
        playbook=playbook,
        service_name=service.heartbeat_name,
        event_id=event_id,
        event_kind=kind,
        decision=decision,
        execution=execution,
        message=message[:500],
        at=now or timezone.now(),
    )
    metrics.TRIGGERS.labels(playbook=playbook.name, decision=decision).inc()


def _start(playbook, mode, service, alert, trigger, event_id, kind, now) -> Execution | None:
    execution, _, _ = start_checked(
        playbook=playbook,
        mode=mode,
        service=service,
        alert=alert,
        trigger=trigger,
        event_id=event_id,
        kind=kind,
        automatic=True,
        actor=f"trigger:{kind}",
        now=now,
    )
    return execution


def start_checked(
    *,
    playbook,
    mode,
    service,
    alert,
    trigger,
    event_id,
    kind,
    automatic: bool,
    actor: str,
    now: datetime,
) -> tuple[Execution | None, str, str]:
    """Start unless the switch, a run already open, a breaker or a limit says no; every answer
    is a ``TriggerRecord``. Returns (execution or None, decision, message)."""
    with transaction.atomic():
        execution, decision, message = None, "started", ""
        running = Execution.objects.filter(
            playbook=playbook, service=service, state__in=OPEN_STATES
        ).first()
        active = [ExecutionState.RUNNING, ExecutionState.WAITING]
        limit = playbook.versions.get(version=playbook.current_version).spec["max_concurrent"]
        cap = settings.MEDIC_REMEDIATION_MAX_RUNNING
        stopped = remediation_stopped()
        if stopped:
            decision, message = "remediation_stopped", stopped
        elif running is not None:
            decision, message = "already_running", f"execution {running.pk} is {running.state}"
            execution = running
        elif mode == Mode.ACTIVE and (why := _breakers_block(playbook, service, now)):
            decision, message = "circuit_open", why
        elif Execution.objects.filter(playbook=playbook, state__in=active).count() >= limit:
            decision, message = "playbook_limit", f"{limit} executions of this playbook are running"
        elif Execution.objects.filter(state__in=active).count() >= cap:
            decision = "global_limit"
            message = f"{cap} executions are running (MEDIC_REMEDIATION_MAX_RUNNING)"
        else:
            execution = engine.execution_create(
                playbook=playbook,
                service=service,
                alert_id=alert.pk if alert else None,
                trigger=trigger,
                automatic=automatic,
                actor=actor,
                now=now,
                mode=mode,
            )
            if execution is None:
                decision = "already_running"
        _record(playbook, service, event_id, kind, decision, message, execution, now)
        return (execution if decision == "started" else None), decision, message


# --- Circuit breakers -------------------------------------------------------------------------


def _breakers_block(playbook: Playbook, service, now: datetime) -> str:
    """'' when both breakers allow an automatic run; otherwise why not (tripping one if this
    run would exceed its cap)."""
    window_start = now - timedelta(minutes=settings.MEDIC_PLAYBOOK_BREAKER_WINDOW_MINUTES)
    cap = settings.MEDIC_PLAYBOOK_BREAKER_MAX_RUNS
    scopes = (
        (BreakerScope.PLAYBOOK, playbook.name, {"playbook": playbook}),
        (BreakerScope.SERVICE, service.heartbeat_name, {"service": service}),
    )
    for scope, key, filters in scopes:
        CircuitBreaker.objects.get_or_create(scope=scope, key=key)
        breaker = CircuitBreaker.objects.select_for_update().get(scope=scope, key=key)
        if breaker.opened_at is not None:
            return f"the {scope} circuit breaker for {key} is open: {breaker.opened_reason}"
        since = max(window_start, breaker.counted_since or window_start)
        count = (
            Execution.objects.filter(automatic=True, mode=Mode.ACTIVE, created_at__gte=since)
            .filter(**filters)
            .count()
        )
        if count >= cap:
            reason = (
                f"{count} automatic runs for {scope} {key} within "
                f"{settings.MEDIC_PLAYBOOK_BREAKER_WINDOW_MINUTES:g} minutes (cap {cap})"
            )
            breaker.opened_at = now
            breaker.opened_reason = reason
            breaker.save(update_fields=["opened_at", "opened_reason"])
            _breaker_notice(breaker, service, playbook, reason)
            return f"the {scope} circuit breaker for {key} tripped: {reason}"
    return ""


def _breaker_notice(breaker: CircuitBreaker, service, playbook: Playbook, reason: str) -> None:
    from alerting.models import AlertReason
    from alerting.services import alert_notice

    alert_notice(
        service=service,
        reason=AlertReason.REMEDIATION_CIRCUIT_OPEN,
        summary=(
            f"Automatic remediation stopped for {breaker.scope} {breaker.key}: {reason}. "
            f"An admin resets it: POST /v2/circuit-breakers/{breaker.scope}/{breaker.key}/reset"
        ),
        dedup_key=f"medic-breaker-{breaker.scope}-{breaker.key}",
        details={"playbook": playbook.name, "scope": breaker.scope, "key": breaker.key},
        dedup_window=timedelta(minutes=settings.MEDIC_PLAYBOOK_BREAKER_WINDOW_MINUTES),
    )
    compliance.audit(
        actor=engine.SYSTEM,
        event="circuit_breaker.opened",
        object_type="circuit_breaker",
        object_id=f"{breaker.scope}:{breaker.key}",
        details={"reason": reason},
        playbook=playbook.name,
        service=service.heartbeat_name,
    )
    metrics.BREAKER_TRIPS.labels(scope=breaker.scope).inc()


def trigger_records_prune(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Forget trigger decisions older than MEDIC_EVENT_RETENTION_DAYS (a long outage records an
    ``already_running`` row per missed deadline), a batch per call."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.MEDIC_EVENT_RETENTION_DAYS)
    ids = list(TriggerRecord.objects.filter(at__lt=cutoff).values_list("pk", flat=True)[:batch])
    return TriggerRecord.objects.filter(pk__in=ids).delete()[0] if ids else 0
