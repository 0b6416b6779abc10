"""The notification targets' stored secrets (routing keys, bot tokens, signing secrets, secret
headers), as a store of medic.keyring: checked at start-up, re-sealed by
``manage.py rotate_encryption_key``."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction

from alerting.models import NotificationTarget
from medic import crypto
from medic.keyring import Rotation, SealedStore
from medic.models import AuditEvent


def _tokens(secrets: dict) -> Iterator[tuple[str, str]]:
    for name, value in secrets.items():
        if name == "headers":
            for header, token in value.items():
                yield f"headers.{header}", token
        else:
            yield name, value


def _map_tokens(secrets: dict, fn) -> dict:
    out = {}
    for name, value in secrets.items():
        if name == "headers":
            out[name] = {header: fn(token) for header, token in value.items()}
        else:
            out[name] = fn(value)
    return out


def target_tokens() -> Iterator[tuple[str, str, str]]:
    for target in NotificationTarget.objects.only("name", "secrets").order_by("pk"):
        for name, token in _tokens(target.secrets):
            yield target.name, name, token


def targets_reseal(newest: str, actor: str) -> Rotation:
    result = Rotation(key_id=newest)
    for pk in NotificationTarget.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            target = NotificationTarget.objects.select_for_update().filter(pk=pk).first()
            if target is None:
                continue
            stale = [t for _, t in _tokens(target.secrets) if crypto.key_id(t) != newest]
            result.current += sum(1 for _ in _tokens(target.secrets)) - len(stale)
            if not stale:
                continue
            target.secrets = _map_tokens(target.secrets, crypto.reseal)
            target.save(update_fields=["secrets"])
            AuditEvent.objects.create(
                actor=actor,
                event="secrets.resealed",
                object_type="notificationtarget",
                object_id=str(target.pk),
                details={"key_id": newest, "secrets": len(stale)},
            )
            result.resealed += len(stale)
            result.owners.append(target.name)
    return result


STORE = SealedStore(label="notification target", tokens=target_tokens, reseal=targets_reseal)
