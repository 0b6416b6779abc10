"""Writes for playbooks (every save an immutable version with author, reason and diff), the
stop-all switch, and circuit-breaker resets."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from medic.errors import Conflict, InvalidInput
from remediation.playbooks import compliance, selectors
from remediation.playbooks.models import (
    FINAL_STATES,
    HISTORY_KIND,
    BreakerScope,
    CircuitBreaker,
    Execution,
    ExecutionStep,
    Mode,
    Playbook,
    PlaybookVersion,
    RemediationSwitch,
)
from remediation.playbooks.spec import Context, Parsed, from_data, parse_yaml, validate


def validation_context(*, disabled_scripts: bool = False) -> Context:
    """What the checks know of this installation. ``disabled_scripts`` also lets steps name
    scripts that are disabled (an import in shadow mode: nothing runs until they are enabled)."""
    from remediation.models import Agent, Script

    scripts = {}
    found = Script.objects.all() if disabled_scripts else Script.objects.filter(enabled=True)
    for script in found:
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


def playbook_validate(*, document, disabled_scripts: bool = False) -> tuple[Parsed, dict]:
    parsed = parse(document)
    return parsed, validate(parsed, validation_context(disabled_scripts=disabled_scripts))


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
    *,
    document,
    actor: str,
    reason: str = "",
    name: str | None = None,
    create_only: bool = False,
    disabled_scripts: bool = False,
) -> Saved:
    """Create a playbook or write its next version. An unchanged document writes nothing.
    ``disabled_scripts``: see ``validation_context`` (the v1 import, whose scripts arrive
    disabled)."""
    parsed, spec = playbook_validate(document=document, disabled_scripts=disabled_scripts)
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


# --- Version shortcuts (each one is a new version through playbook_save) ----------------------

_MODE_LINE = re.compile(r"^mode:[ \t]*\S+[ \t]*(#[^\r\n]*)?(?=\r?$)", re.MULTILINE)


def playbook_mode_set(*, name: str, mode: str, actor: str, reason: str = "") -> Saved:
    """Switch shadow <-> active by saving the current document with its ``mode`` line changed
    (added after ``name`` when the document has none): the rest of the source stays as written."""
    if mode not in Mode.values:
        raise InvalidInput(fields={"mode": [f"One of {', '.join(Mode.values)}."]})
    playbook = selectors.playbook_get(name)
    source = selectors.version_get(playbook).source
    if _MODE_LINE.search(source):
        changed = _MODE_LINE.sub(f"mode: {mode}", source, count=1)
    else:
        changed = re.sub(r"^(name:.*)$", rf"\1\nmode: {mode}", source, count=1, flags=re.MULTILINE)
    return playbook_save(
        document=changed, actor=actor, reason=reason or f"mode: {mode}", name=playbook.name
    )


def playbook_restore(*, name: str, version: int, actor: str, reason: str = "") -> Saved:
    """Restore an old version's document as the next version (history is never rewritten)."""
    playbook = selectors.playbook_get(name)
    old = selectors.version_get(playbook, version)
    return playbook_save(
        document=old.source,
        actor=actor,
        reason=reason or f"restored version {old.version}",
        name=playbook.name,
    )


# --- History from another system (the Medic v1 import) ----------------------------------------


def execution_history_record(
    *,
    playbook: Playbook,
    key: str,
    state: str,
    service,
    service_name: str,
    created_at,
    finished_at,
    error: str = "",
    steps: list[dict] | None = None,
    source: dict | None = None,
) -> tuple[Execution, bool]:
    """Record (or bring up to date) a finished execution that ran elsewhere: a read-only row in a
    final state, against the playbook's current version, never automatic (it counts for no
    demotion), never due (the engine never looks at it) and never scored. ``key`` identifies it
    in ``source`` (``trigger``: ``{"kind": "history.import", "key": ..., **source}``), so a second
    call with the same data writes nothing. ``steps``: ``{"name", "type", "state",
    "started_at", "finished_at", "result"}`` in order. Returns the execution and whether it
    was written."""
    if state not in FINAL_STATES:
        raise InvalidInput(fields={"state": [f"One of {', '.join(FINAL_STATES)}."]})
    trigger = {"kind": HISTORY_KIND, "key": key, **(source or {})}
    steps = steps or []
    with transaction.atomic():
        execution = (
            Execution.objects.select_for_update()
            .filter(trigger__kind=HISTORY_KIND, trigger__key=key)
            .first()
        )
        wanted = {
            "state": state,
            "error": error[:1000],
            "finished_at": finished_at,
            "trigger": trigger,
            "service_name": service_name[:255],
        }
        if execution is not None:
            changed = [f for f, v in wanted.items() if getattr(execution, f) != v]
            same_steps = [
                (s.name, s.state, s.started_at, s.finished_at, s.result)
                for s in execution.steps.all()
            ] == [
                (s["name"][:100], s["state"], s["started_at"], s["finished_at"], s["result"])
                for s in steps
            ]
            if not changed and same_steps:
                return execution, False
            for field_name in changed:
                setattr(execution, field_name, wanted[field_name])
            execution.save(update_fields=changed)
            execution.steps.all().delete()
        else:
            execution = Execution.objects.create(
                playbook=playbook,
                version=selectors.version_get(playbook),
                mode=Mode.ACTIVE,
                service=service,
                alert=None,
                automatic=False,
                requested_by="history",
                created_at=created_at,
                started_at=created_at,
                due_at=None,
                **wanted,
            )
            execution.events.create(
                at=created_at, kind="imported", to_state=state, message="recorded as history"
            )
        ExecutionStep.objects.bulk_create(
            ExecutionStep(
                execution=execution,
                position=index,
                name=step["name"][:100],
                type=step["type"][:16],
                state=step["state"],
                started_at=step["started_at"],
                finished_at=step["finished_at"],
                result=step["result"],
            )
            for index, step in enumerate(steps)
        )
    return execution, True
