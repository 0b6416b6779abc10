"""Stored secrets and the configured encryption keys (MEDIC_ENCRYPTION_KEYS).

Secrets at rest are the values under ``NotificationTarget.secrets`` (routing keys, bot tokens,
signing secrets, secret headers), each an ``enc:v1:<key id>:...`` token (medic/crypto.py).

- ``secrets_unreadable()``: every stored secret the configured keys cannot open, with its key id.
  The ``medic.E010`` system check reports them; compose's ``migrate`` service runs it before any
  other process starts (docs/backup-restore.md).
- ``secrets_rotate()``: re-seal every stored secret under the newest key (the first listed), one
  row at a time under a row lock, so it runs beside live processes (docs/deployment.md,
  "Rotating the encryption key").
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.core.checks import Error, Tags, register
from django.db import DatabaseError, transaction

from medic import crypto

logger = logging.getLogger(__name__)


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


@dataclass
class Unreadable:
    target: str
    secret: str
    key_id: str
    reason: str

    def __str__(self) -> str:
        return (
            f"notification target '{self.target}': secret '{self.secret}' (encryption key "
            f"'{self.key_id}'): {self.reason}"
        )


def secrets_unreadable() -> list[Unreadable]:
    from alerting.models import NotificationTarget

    found = []
    for target in NotificationTarget.objects.only("name", "secrets").order_by("pk"):
        for name, token in _tokens(target.secrets):
            try:
                crypto.decrypt(token)
            except crypto.DecryptionError as exc:
                found.append(Unreadable(target.name, name, crypto.key_id(token), str(exc)))
    return found


def secrets_by_key() -> Counter:
    """How many stored secrets each key id seals."""
    from alerting.models import NotificationTarget

    counts: Counter = Counter()
    for secrets in NotificationTarget.objects.values_list("secrets", flat=True):
        counts.update(crypto.key_id(token) for _, token in _tokens(secrets))
    return counts


@dataclass
class Rotation:
    key_id: str
    resealed: int = 0
    current: int = 0
    targets: list[str] = field(default_factory=list)


def secrets_rotate(*, actor: str = "cli:rotate_encryption_key") -> Rotation:
    """Re-seal every stored secret not sealed with the newest key. Raises DecryptionError (and
    changes nothing in that row) when a secret cannot be opened with the configured keys."""
    from alerting.models import NotificationTarget
    from medic.models import AuditEvent

    newest = crypto.newest_key_id()
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
            result.targets.append(target.name)
    logger.info(
        "re-sealed %d stored secrets under key %s (%d already were)",
        result.resealed,
        newest,
        result.current,
    )
    return result


@register(Tags.database)
def check_stored_secrets(app_configs=None, databases=None, **kwargs) -> list[Error]:
    """Every stored secret opens with the configured keys (run by `migrate` and by
    `check --database default`)."""
    if not databases or "default" not in databases:
        return []
    try:
        unreadable = secrets_unreadable()
    except DatabaseError:
        return []  # not migrated yet: nothing is stored
    return [
        Error(
            str(item),
            hint=f"Add the key '{item.key_id}' to MEDIC_ENCRYPTION_KEYS (keep retired keys listed "
            "until `manage.py rotate_encryption_key` has re-sealed everything); see "
            "docs/backup-restore.md.",
            id="medic.E010",
        )
        for item in unreadable
    ]
