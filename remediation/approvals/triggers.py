"""Runs asked for by a person or another system (the API, the portal, MCP, inbound webhooks):
the same checks as an automatic trigger (the stop switch, one open run per playbook and
service, circuit breakers, limits) and the playbook's approval setting."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from medic.errors import Conflict, InvalidInput, NotFound
from remediation.approvals.models import ExecuteRequest
from remediation.playbooks.models import Execution, Mode, Playbook
from remediation.playbooks.triggers import start_checked

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED = frozenset({"kind", "event_id", "alert_id", "requested_by", "dry_run"})


@dataclass(frozen=True)
class Started:
    execution: Execution
    replayed: bool  # the Idempotency-Key was seen before: this is the first execution


def playbook_find(ref: str | int) -> Playbook:
    """A playbook by id (as returned at creation) or by name."""
    ref = str(ref)
    playbook = None
    if ref.isdigit():
        playbook = Playbook.objects.filter(pk=int(ref)).first()
    if playbook is None:
        playbook = Playbook.objects.filter(name=ref).first()
    if playbook is None:
        raise NotFound(f"No playbook '{ref}'.", code="playbook_not_found")
    return playbook


def _variables(variables) -> dict:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise InvalidInput(fields={"variables": ["An object of name: value."]})
    problems = []
    for name, value in variables.items():
        if not VARIABLE_NAME.match(str(name)) or name in RESERVED:
            problems.append(f"'{name}' is not a usable variable name.")
        elif not isinstance(value, str | int | float | bool) or isinstance(value, bytes):
            problems.append(f"'{name}': values are strings, numbers or booleans.")
        elif isinstance(value, str) and len(value) > 4000:
            problems.append(f"'{name}': at most 4000 characters.")
    if problems:
        raise InvalidInput(fields={"variables": problems})
    return dict(variables)


def playbook_execute(
    *,
    playbook: str | int,
    service: str,
    actor: str,
    channel: str,
    variables: dict | None = None,
    dry_run: bool = False,
    idempotency_key: str = "",
    now: datetime | None = None,
) -> Started:
    """Start ``playbook`` for ``service`` (its heartbeat name). ``${TRIGGER.<name>}`` reads the
    variables. A dry run is a shadow run: every step is recorded, nothing is called. 409 when the
    switch, a run already open, a breaker or a limit refuses; the refusal is a trigger record."""
    from alerting.models import Alert, AlertState
    from heartbeats.models import Service

    now = now or timezone.now()
    key = (idempotency_key or "").strip()
    if len(key) > 255:
        raise InvalidInput(fields={"Idempotency-Key": ["At most 255 characters."]})
    if key:
        seen = ExecuteRequest.objects.filter(actor=actor[:150], key=key).first()
        if seen is not None:
            return Started(seen.execution, replayed=True)
    found = playbook_find(playbook)
    if not found.enabled:
        raise Conflict(f"Playbook '{found.name}' is disabled.", code="playbook_disabled")
    if not isinstance(service, str) or not service.strip():
        raise InvalidInput(fields={"service": ["The service's heartbeat name."]})
    target = Service.objects.filter(heartbeat_name__iexact=service.strip()).first()
    if target is None:
        raise NotFound(f"No service '{service}'.", code="service_not_found")
    values = _variables(variables)
    alert = Alert.objects.filter(service=target, state=AlertState.OPEN).first()
    trigger = {
        "kind": channel,
        "event_id": None,
        "alert_id": alert.pk if alert else None,
        "requested_by": actor,
        "dry_run": bool(dry_run),
        **values,
    }
    version = found.versions.get(version=found.current_version)
    mode = Mode.SHADOW if dry_run else version.mode
    try:
        with transaction.atomic():
            execution, decision, message = start_checked(
                playbook=found,
                mode=mode,
                service=target,
                alert=alert,
                trigger=trigger,
                event_id=None,
                kind=channel,
                automatic=False,
                actor=actor,
                now=now,
            )
            if execution is not None and key:
                ExecuteRequest.objects.create(
                    actor=actor[:150], key=key, execution=execution, created_at=now
                )
    except IntegrityError:
        # The same key raced us and won: its execution is the answer.
        seen = ExecuteRequest.objects.filter(actor=actor[:150], key=key).first()
        if seen is None:
            raise
        return Started(seen.execution, replayed=True)
    if execution is None:
        # Outside the transaction: the refusal's trigger record stays.
        raise Conflict(message or f"Not started: {decision.replace('_', ' ')}.", code=decision)
    return Started(execution, replayed=False)
