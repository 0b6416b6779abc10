"""Alerting as a consumer of domain events (registered as "alerting" in AlertingConfig.ready).

Heartbeats records what happened; this module decides what it means for incidents: open an
alert when a service goes down or a job fails, hangs or runs slow, resolve it when the service
recovers or is retired, send what a mute or a maintenance window held back, and announce windows.
Each handler runs in the transaction that marks the event processed (medic.events.consumers), so
an alert and its deliveries exist exactly once per event.
"""

from __future__ import annotations

import logging
from datetime import datetime

from alerting.models import Alert, AlertReason, AlertState
from alerting.services import (
    alert_close_for_service,
    alert_open,
    alert_release_held,
    alert_resolve,
    alert_resolve_for_service,
    window_notices_create,
)
from heartbeats.maintenance import covered_services
from heartbeats.models import MaintenanceWindow
from heartbeats.selectors import service_locked
from medic.events.models import DomainEvent, EventKind

logger = logging.getLogger(__name__)

CONSUMER = "alerting"

# Event kind -> alert reason for the events that open an incident of their own kind.
_JOB_REASONS = {
    EventKind.JOB_FAILED: AlertReason.JOB_FAILED,
    EventKind.JOB_HUNG: AlertReason.JOB_HUNG,
    EventKind.JOB_NOT_COMPLETED: AlertReason.JOB_NOT_COMPLETED,
    EventKind.JOB_SLOW: AlertReason.JOB_SLOW,
}
# Payload keys that are facts for the consumer, not details shown with the alert.
_NOT_DETAILS = frozenset({"failure_threshold"})


def _service_down(event: DomainEvent) -> None:
    service = service_locked(event.service_id)
    if service is None:
        return  # deleted since: its alerts went with it
    reason = event.payload.get("reason") or (
        AlertReason.MISSED_HEARTBEAT if service.last_heartbeat_at else AlertReason.NEVER_REPORTED
    )
    alert_open(service=service, now=event.occurred_at, reason=reason, source_event_id=event.pk)


def _job_event(event: DomainEvent) -> None:
    payload = event.payload
    if event.kind == EventKind.JOB_FAILED and payload.get("consecutive_failures", 0) < payload.get(
        "failure_threshold", 1
    ):
        return  # below the service's failure threshold: no incident yet
    service = service_locked(event.service_id)
    if service is None:
        return
    details = {k: v for k, v in payload.items() if k not in _NOT_DETAILS}
    alert_open(
        service=service,
        now=event.occurred_at,
        reason=_JOB_REASONS[event.kind],
        details=details,
        source_event_id=event.pk,
    )


def _job_completed(event: DomainEvent) -> None:
    """A run back within bounds ends a slow-run alert."""
    slow = (
        Alert.objects.select_for_update()
        .select_related("service")
        .filter(service_id=event.service_id, state=AlertState.OPEN, reason=AlertReason.JOB_SLOW)
        .first()
    )
    if slow is not None:
        alert_resolve(alert=slow, now=event.occurred_at, how="run_within_bounds")


def _recovered(event: DomainEvent) -> None:
    alert_resolve_for_service(service_id=event.service_id)


def _deactivated(event: DomainEvent) -> None:
    alert_close_for_service(service_id=event.service_id)


def _unmuted(event: DomainEvent) -> None:
    """An alert that opened while muted is notified now (it was only held back)."""
    service = service_locked(event.service_id)
    if service is not None and not service.muted:
        alert_release_held(service=service, now=event.occurred_at)


def _maintenance(event: DomainEvent) -> None:
    payload = event.payload
    window = MaintenanceWindow.objects.filter(pk=payload.get("window_id")).first()
    if window is None:
        return  # deleted since
    kind = "started" if event.kind == EventKind.MAINTENANCE_STARTED else "ended"
    start = datetime.fromisoformat(payload["starts_at"])
    end = datetime.fromisoformat(payload["ends_at"])
    window_notices_create(window=window, kind=kind, start=start, end=end)
    if kind == "ended":
        # What the window held back goes out now (unless a mute or another window still holds).
        for service in covered_services(window).filter(alerts__state=AlertState.OPEN):
            locked = service_locked(service.pk)
            if locked is not None and not locked.muted:
                alert_release_held(service=locked, now=event.occurred_at)


HANDLERS = {
    EventKind.SERVICE_DOWN: _service_down,
    EventKind.SERVICE_RECOVERED: _recovered,
    EventKind.JOB_FAILED: _job_event,
    EventKind.JOB_HUNG: _job_event,
    EventKind.JOB_NOT_COMPLETED: _job_event,
    EventKind.JOB_SLOW: _job_event,
    EventKind.JOB_COMPLETED: _job_completed,
    EventKind.SERVICE_UNMUTED: _unmuted,
    EventKind.SERVICE_DEACTIVATED: _deactivated,
    EventKind.MAINTENANCE_STARTED: _maintenance,
    EventKind.MAINTENANCE_ENDED: _maintenance,
}


def handle(event: DomainEvent) -> None:
    HANDLERS[event.kind](event)
