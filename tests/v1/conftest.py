"""Helpers shared by the v1 contract tests: v1's envelope, row builders and data factories."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from compat.v1 import anonymous_log_throttle
from heartbeats.models import Service


@pytest.fixture(autouse=True)
def _v1_defaults(settings):
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = False
    anonymous_log_throttle.clear()
    yield
    anonymous_log_throttle.clear()


def envelope(success: bool, message: str, results="") -> dict:
    return {"success": success, "message": message, "results": results}


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def service_row(service: Service) -> dict:
    """v1's service row, written out field by field from the stored service."""
    service.refresh_from_db()
    interval = service.alert_interval
    return {
        "service_id": service.pk,
        "heartbeat_name": service.heartbeat_name,
        "service_name": service.service_name,
        "active": 1 if service.active else 0,
        "alert_interval": int(interval) if interval == int(interval) else interval,
        "threshold": service.threshold,
        "team": service.team,
        "priority": service.priority,
        "muted": 1 if service.muted else 0,
        "down": 1 if service.status == "down" else 0,
        "runbook": service.runbook or None,
        "date_added": iso(service.date_added),
        "date_modified": iso(service.date_modified),
        "date_muted": iso(service.date_muted) if service.muted else None,
        "team_id": None,
        "schedule_id": None,
        "max_duration_ms": service.max_duration_seconds * 1000
        if service.max_duration_seconds
        else None,
        "grace_period_seconds": service.grace_period_seconds,
    }
