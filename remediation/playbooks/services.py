"""Writes for playbooks (every save an immutable version with author, reason and diff), the
stop-all switch, and circuit-breaker resets."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from medic.errors import Conflict, InvalidInput
from remediation.playbooks import compliance, selectors
from remediation.playbooks.models import (
    BreakerScope,
    CircuitBreaker,
    Playbook,
    PlaybookVersion,
    RemediationSwitch,
)
from remediation.playbooks.spec import Context, Parsed, from_data, parse_yaml, validate


def validation_context() -> Context:
    from remediation.models import Agent, Script

    scripts = {}
    for script in Script.objects.filter(enabled=True):
        version = script.versions.get(version=script.current_version)
        scripts[script.name] = {
            "run_local": version.run_local,
            "run_on_agents": version.run_on_agents,
            "args_schema": version.args_schema,
        }
    agents = list(Agent.objects.filter(enabled=True))
    labels = {label for agent in agents for label in agent.all_labels}
    return Context(
        scripts=scripts,
        agents={a.name for a in agents},
        labels=labels,
        secrets=compliance.secret_names(),
    )


def parse(document) -> Parsed:
    """A document as text (YAML or JSON: JSON is YAML) or as already-parsed data."""
    if isinstance(document, bytes):
        try:
            document = document.decode()
        except UnicodeDecodeError as exc:
            raise InvalidInput("The document is not UTF-8.", code="playbook_invalid") from exc
    if isinstance(document, str):
        return parse_yaml(document)
    return from_data(document)


def playbook_validate(*, document) -> tuple[Parsed, dict]:
    parsed = parse(document)
    return parsed, validate(parsed, validation_context())


def diff_text(old: str, new: str, *, name: str, old_version: int | None, new_version: int) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{name} v{old_version}" if old_version else "/dev/null",
            tofile=f"{name} v{new_version}",
        )
    )


@dataclass
class Saved:
    playbook: Playbook
    version: PlaybookVersion
    created: bool
    changed: bool


def playbook_save(
    *, document, actor: str, reason: str = "", name: str | None = None, create_only: bool = False
) -> Saved:
    """Create a playbook or write its next version. An unchanged document writes nothing."""
    parsed, spec = playbook_validate(document=document)
    if name is not None and spec["name"] != name:
        raise InvalidInput(
            f"The document names '{spec['name']}', not '{name}' (rename by creating a new one).",
            code="playbook_name_mismatch",
            fields={"name": [f"Must be '{name}'."]},
        )
    source = parsed.source if parsed.source.endswith("\n") else parsed.source + "\n"
    now = timezone.now()
    try:
        with transaction.atomic():
            playbook = Playbook.objects.select_for_update().filter(name=spec["name"]).first()
            if playbook is not None and create_only:
                raise Conflict(
                    f"A playbook named '{spec['name']}' exists; PUT /v2/playbooks/{spec['name']} "
                    "saves a new version.",
                    code="playbook_exists",
                )
            created = playbook is None
            if created:
                playbook = Playbook.objects.create(
                    name=spec["name"], current_version=1, created_at=now, updated_at=now
                )
                previous = None
            else:
                previous = playbook.versions.get(version=playbook.current_version)
                if previous.spec == spec and previous.source == source:
                    return Saved(playbook, previous, False, False)
            number = 1 if previous is None else previous.version + 1
            version = PlaybookVersion(
                playbook=playbook,
                version=number,
                source=source,
                spec=spec,
                mode=spec["mode"],
                author=actor[:150],
                reason=reason[:500],
                diff=diff_text(
                    previous.source if previous else "",
                    source,
                    name=playbook.name,
                    old_version=previous.version if previous else None,
                    new_version=number,
                ),
                created_at=now,
            )
            version.full_clean(exclude=["playbook"])
            version.save()
            playbook.current_version = number
            playbook.enabled = True
            playbook.updated_at = now
            # A new version is the fix a demotion asks for: it starts with a clean record.
            playbook.demoted_at = None
            playbook.demoted_reason = ""
            playbook.save(
                update_fields=[
                    "current_version",
                    "enabled",
                    "updated_at",
                    "demoted_at",
                    "demoted_reason",
                ]
            )
            compliance.audit(
                actor=actor,
                event="playbook.created" if created else "playbook.updated",
                object_type="playbook",
                object_id=playbook.name,
                details={"version": number, "reason": reason, "mode": spec["mode"]},
                playbook=playbook.name,
            )
    except IntegrityError as exc:
        raise Conflict("The playbook changed concurrently; try again.", code="conflict") from exc
    return Saved(playbook, version, created, True)


def playbook_disable(*, name: str, actor: str) -> Playbook:
    with transaction.atomic():
        playbook = selectors.playbook_get(name, for_update=True)
        if playbook.enabled:
            playbook.enabled = False
            playbook.updated_at = timezone.now()
            playbook.save(update_fields=["enabled", "updated_at"])
            compliance.audit(
                actor=actor,
                event="playbook.disabled",
                object_type="playbook",
                object_id=playbook.name,
                details={"version": playbook.current_version},
                playbook=playbook.name,
            )
    return playbook


# --- The switch and the breakers --------------------------------------------------------------


def remediation_switch_set(*, stopped: bool, actor: str, reason: str = "") -> RemediationSwitch:
    with transaction.atomic():
        switch, _ = RemediationSwitch.objects.select_for_update().get_or_create(pk=1)
        switch.stopped = stopped
        switch.reason = reason[:500]
        switch.changed_by = actor[:150]
        switch.changed_at = timezone.now()
        switch.save()
        compliance.audit(
            actor=actor,
            event="remediation.stopped" if stopped else "remediation.resumed",
            object_type="remediation",
            object_id="switch",
            details={"reason": reason},
        )
    return switch


def breaker_reset(*, scope: str, key: str, actor: str) -> CircuitBreaker:
    if scope not in BreakerScope.values:
        raise InvalidInput(fields={"scope": [f"One of {', '.join(BreakerScope.values)}."]})
    now = timezone.now()
    with transaction.atomic():
        breaker, _ = CircuitBreaker.objects.select_for_update().get_or_create(scope=scope, key=key)
        was_open = breaker.opened_at is not None
        breaker.opened_at = None
        breaker.opened_reason = ""
        # Runs before the reset no longer count: the admin looked and decided.
        breaker.counted_since = now
        breaker.reset_at = now
        breaker.reset_by = actor[:150]
        breaker.save()
        compliance.audit(
            actor=actor,
            event="circuit_breaker.reset",
            object_type="circuit_breaker",
            object_id=f"{scope}:{key}",
            details={"was_open": was_open},
            playbook=key if scope == BreakerScope.PLAYBOOK else None,
            service=key if scope == BreakerScope.SERVICE else None,
        )
    return breaker
