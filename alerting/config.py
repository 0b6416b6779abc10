"""Writes for routing configuration: teams, notification targets, rules, working hours.

Each change is one transaction with its audit row. Secrets are encrypted before they are stored
and never appear in audit details.
"""

from __future__ import annotations

import base64
import secrets as random_secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from alerting.models import (
    Channel,
    NotificationTarget,
    RoutingRule,
    RoutingRuleTarget,
    RoutingWhen,
    Team,
    WorkingHours,
)
from alerting.schedules import ScheduleError, parse_schedule
from heartbeats.models import Service
from medic.crypto import encrypt
from medic.errors import Conflict, InvalidInput, NotFound
from medic.ids import parse_id
from medic.models import AuditEvent


def _audit(actor: str, event: str, obj, details: dict | None = None) -> None:
    AuditEvent.objects.create(
        actor=actor,
        event=event,
        object_type=obj.__class__.__name__.lower(),
        object_id=str(obj.pk),
        details=details or {},
    )


def _get(model, ref: str | int, what: str):
    ref = str(ref)
    pk = parse_id(ref)
    obj = model.objects.filter(pk=pk).first() if pk is not None else None
    obj = obj or model.objects.filter(name=ref).first()
    if obj is None:
        raise NotFound(f"No {what} with id or name '{ref}'.")
    return obj


def _save_unique(obj, field: str = "name") -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise Conflict(
            f"A {obj.__class__.__name__} named '{getattr(obj, field)}' already exists.",
            fields={field: ["Already taken."]},
        ) from exc


# --- Teams ------------------------------------------------------------------------------------


def team_get(ref: str | int) -> Team:
    return _get(Team, ref, "team")


@transaction.atomic
def team_create(*, name: str, slack_channel_id: str = "", actor: str) -> Team:
    team = Team(name=name, slack_channel_id=slack_channel_id)
    _save_unique(team)
    _audit(actor, "team.created", team, {"name": name, "slack_channel_id": slack_channel_id})
    return team


@transaction.atomic
def team_update(*, ref: str | int, actor: str, **changes: Any) -> Team:
    team = team_get(ref)
    old_name = team.name
    for field, value in changes.items():
        setattr(team, field, value)
    team.updated_at = timezone.now()
    _save_unique(team)
    if team.name != old_name:
        # Services and rules name their team: a rename carries them along.
        Service.objects.filter(team=old_name).update(team=team.name)
        RoutingRule.objects.filter(team=old_name).update(team=team.name)
    _audit(actor, "team.updated", team, {"changed": sorted(changes)})
    return team


@transaction.atomic
def team_delete(*, ref: str | int, actor: str) -> None:
    team = team_get(ref)
    _audit(actor, "team.deleted", team, {"name": team.name})
    team.delete()


# --- Working hours ----------------------------------------------------------------------------


def working_hours_get(ref: str | int) -> WorkingHours:
    return _get(WorkingHours, ref, "working-hours schedule")


def validate_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        raise InvalidInput(fields={"spec": ["Must be an object (see docs/working-hours.md)."]})
    try:
        parse_schedule(spec)
    except ScheduleError as exc:
        raise InvalidInput(fields={f"spec.{k}": v for k, v in exc.fields.items()}) from exc


@transaction.atomic
def working_hours_create(*, name: str, spec: dict, actor: str) -> WorkingHours:
    validate_spec(spec)
    schedule = WorkingHours(name=name, spec=spec)
    _save_unique(schedule)
    _audit(actor, "working_hours.created", schedule, {"spec": spec})
    return schedule


@transaction.atomic
def working_hours_update(*, ref: str | int, actor: str, **changes: Any) -> WorkingHours:
    schedule = working_hours_get(ref)
    if "spec" in changes:
        validate_spec(changes["spec"])
    for field, value in changes.items():
        setattr(schedule, field, value)
    schedule.updated_at = timezone.now()
    _save_unique(schedule)
    _audit(actor, "working_hours.updated", schedule, {"changed": sorted(changes)})
    return schedule


@transaction.atomic
def working_hours_delete(*, ref: str | int, actor: str) -> None:
    schedule = working_hours_get(ref)
    try:
        schedule.delete()
    except ProtectedError as exc:
        names = ", ".join(r.name for r in schedule.rules.all())
        raise Conflict(f"The schedule is used by routing rules: {names}.") from exc
    _audit(actor, "working_hours.deleted", schedule, {"name": schedule.name})


# --- Notification targets ---------------------------------------------------------------------

SECRET_FIELDS = {
    Channel.SLACK: ("bot_token",),
    Channel.PAGERDUTY: ("routing_key",),
    Channel.WEBHOOK: ("signing_secret",),
}


def target_get(ref: str | int) -> NotificationTarget:
    return _get(NotificationTarget, ref, "notification target")


def secret_names(target: NotificationTarget) -> list[str]:
    names = [k for k in target.secrets if k != "headers"]
    names += [f"headers.{h}" for h in target.secrets.get("headers", {})]
    return sorted(names)


def _apply_secrets(target: NotificationTarget, plain: dict[str, Any]) -> None:
    stored = dict(target.secrets)
    for name in SECRET_FIELDS[target.kind]:
        if name in plain:
            if plain[name]:
                stored[name] = encrypt(plain[name])
            else:
                stored.pop(name, None)
    if "secret_headers" in plain:
        headers = dict(stored.get("headers", {}))
        for header, value in plain["secret_headers"].items():
            if value:
                headers[header] = encrypt(value)
            else:
                headers.pop(header, None)
        stored["headers"] = headers
    target.secrets = stored


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the standard base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(random_secrets.token_bytes(32)).decode()


def _rotate_signing_secret(target: NotificationTarget, plain: dict[str, Any]) -> None:
    """A new signing secret does not replace the old one at once: bodies are signed with both
    for MEDIC_WEBHOOK_SECRET_ROTATION_HOURS, so receivers can switch at their own pace."""
    current = target.secrets.get("signing_secret")
    if "signing_secret" not in plain or not current:
        return
    until = timezone.now() + timedelta(hours=settings.MEDIC_WEBHOOK_SECRET_ROTATION_HOURS)
    target.secrets = {**target.secrets, "previous_signing_secret": current}
    target.config = {**target.config, "previous_signing_secret_until": until.isoformat()}


@transaction.atomic
def target_create(
    *, name: str, kind: str, config: dict, secrets: dict, enabled: bool = True, actor: str
) -> tuple[NotificationTarget, str | None]:
    """Returns the target and, for a webhook without a given signing secret, the generated one
    (shown to the caller once)."""
    generated = None
    if kind == Channel.WEBHOOK and not secrets.get("signing_secret"):
        generated = new_signing_secret()
        secrets = {**secrets, "signing_secret": generated}
    target = NotificationTarget(name=name, kind=kind, config=config, enabled=enabled)
    _apply_secrets(target, secrets)
    _save_unique(target)
    _audit(
        actor,
        "notification_target.created",
        target,
        {"kind": kind, "config": config, "secrets": secret_names(target)},
    )
    return target, generated


@transaction.atomic
def target_update(
    *,
    ref: str | int,
    actor: str,
    config: dict | None = None,
    secrets: dict | None = None,
    **changes: Any,
) -> NotificationTarget:
    target = target_get(ref)
    if "kind" in changes and changes["kind"] != target.kind:
        raise InvalidInput(fields={"kind": ["The kind of a target cannot change."]})
    changes.pop("kind", None)
    for field, value in changes.items():
        setattr(target, field, value)
    if config is not None:
        target.config = {**target.config, **config}
    if secrets:
        if target.kind == Channel.WEBHOOK:
            _rotate_signing_secret(target, secrets)
        _apply_secrets(target, secrets)
    target.updated_at = timezone.now()
    _save_unique(target)
    _audit(
        actor,
        "notification_target.updated",
        target,
        {
            "changed": sorted([*changes, *(config or {}), *(secrets or {})]),
        },
    )
    return target


@transaction.atomic
def target_delete(*, ref: str | int, actor: str) -> None:
    target = target_get(ref)
    try:
        target.delete()
    except ProtectedError as exc:
        names = ", ".join(r.name for r in target.rules.all())
        raise Conflict(f"The target is used by routing rules: {names}.") from exc
    _audit(actor, "notification_target.deleted", target, {"name": target.name})


# --- Routing rules ----------------------------------------------------------------------------


def rule_get(ref: str | int) -> RoutingRule:
    return _get(RoutingRule, ref, "routing rule")


def _check_rule(rule: RoutingRule) -> None:
    if rule.when != RoutingWhen.ALWAYS and rule.schedule is None:
        raise InvalidInput(
            fields={
                "schedule": [f"Required when 'when' is {rule.when}: name a working-hours schedule."]
            }
        )


def _set_targets(rule: RoutingRule, targets: list[NotificationTarget]) -> None:
    RoutingRuleTarget.objects.filter(rule=rule).delete()
    RoutingRuleTarget.objects.bulk_create(
        RoutingRuleTarget(rule=rule, target=t, position=i) for i, t in enumerate(targets)
    )


@transaction.atomic
def rule_create(*, targets: list[NotificationTarget], actor: str, **fields: Any) -> RoutingRule:
    rule = RoutingRule(**fields)
    _check_rule(rule)
    _save_unique(rule)
    _set_targets(rule, targets)
    _audit(actor, "routing_rule.created", rule, {"targets": [t.name for t in targets]})
    return rule


@transaction.atomic
def rule_update(
    *, ref: str | int, actor: str, targets: list[NotificationTarget] | None = None, **changes: Any
) -> RoutingRule:
    rule = rule_get(ref)
    for field, value in changes.items():
        setattr(rule, field, value)
    _check_rule(rule)
    rule.updated_at = timezone.now()
    _save_unique(rule)
    if targets is not None:
        _set_targets(rule, targets)
    _audit(
        actor,
        "routing_rule.updated",
        rule,
        {"changed": sorted([*changes, *(["targets"] if targets is not None else [])])},
    )
    return rule


@transaction.atomic
def rule_delete(*, ref: str | int, actor: str) -> None:
    rule = rule_get(ref)
    _audit(actor, "routing_rule.deleted", rule, {"name": rule.name})
    rule.delete()
