"""One call for what celery-beat runs every few seconds: the heartbeats sweep, the domain-event
dispatch (the safety net of the eager task) and alerting's periodic pass, on one clock."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from types import SimpleNamespace

from django.utils import timezone

from alerting.sweep import alerting_sweep
from heartbeats.sweep import sweep as heartbeats_sweep
from medic.events.consumers import events_dispatch


def sweep(*, now: datetime | None = None) -> SimpleNamespace:
    now = now or timezone.now()
    detected = heartbeats_sweep(now=now)
    events_dispatch()
    alerting = alerting_sweep(now=now)
    return SimpleNamespace(
        **(asdict(detected) | asdict(alerting) | {"errors": detected.errors + alerting.errors})
    )
