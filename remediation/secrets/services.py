"""Writes of named secrets. Each change is one transaction: the row, a new generation token
(every process's cache of decrypted values reloads on its next read) and an audit row naming
the secret and the actor, never the value.

The reads (``secret_value``, ``secret_names``, ``secrets_mask``) live in
remediation.secrets.selectors and are re-exported here, the one module callers import.
"""

from __future__ import annotations

import re
import uuid

from django.db import transaction
from django.utils import timezone

from medic.crypto import DecryptionError, encrypt, key_id, newest_key_id, reseal
from medic.errors import InvalidInput
from medic.keyring import Rotation, SealedStore
from remediation.audit.services import audit_record
from remediation.secrets.models import Secret, SecretsGeneration
from remediation.secrets.selectors import (
    MASK,
    SecretNotFound,
    SecretUnreadable,
    secret_get,
    secret_list,
    secret_names,
    secret_value,
    secrets_mask,
    secrets_mask_data,
    secrets_masker,
)

__all__ = [
    "MASK",
    "SecretNotFound",
    "SecretUnreadable",
    "secret_delete",
    "secret_get",
    "secret_list",
    "secret_names",
    "secret_set",
    "secret_value",
    "secrets_mask",
    "secrets_mask_data",
    "secrets_masker",
    "secrets_reencrypt",
]

# Names are used as ``${SECRET.<name>}`` in playbooks.
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Masking replaces every occurrence of a value: a value of one to three characters would blank
# out ordinary words in every audit row and output.
MIN_VALUE_LENGTH = 4
MAX_VALUE_LENGTH = 16_384


def _check(name: str, value: str) -> None:
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors["name"] = ["1 to 128 of A-Z a-z 0-9 _, not starting with a digit."]
    if not isinstance(value, str) or not MIN_VALUE_LENGTH <= len(value) <= MAX_VALUE_LENGTH:
        errors["value"] = [
            f"A string of {MIN_VALUE_LENGTH} to {MAX_VALUE_LENGTH} characters "
            "(shorter values cannot be masked in outputs)."
        ]
    elif "\x00" in value:
        errors["value"] = ["Must not contain NUL."]
    if errors:
        raise InvalidInput(fields=errors)


def _new_generation() -> None:
    # The row exists from migration secrets 0002; the fallback covers a flushed table.
    if not SecretsGeneration.objects.filter(pk=1).update(token=uuid.uuid4()):
        SecretsGeneration.objects.create(pk=1, token=uuid.uuid4())


def secret_set(*, name: str, value: str, actor: str) -> Secret:
    """Create or replace a secret. ``created_at == updated_at`` tells a new one."""
    _check(name, value)
    now = timezone.now()
    ciphertext = encrypt(value)
    with transaction.atomic():
        secret = Secret.objects.select_for_update().filter(name=name).first()
        created = secret is None
        if created:
            secret = Secret(name=name, created_at=now, created_by=actor)
        secret.ciphertext = ciphertext
        secret.key_id = key_id(ciphertext)
        secret.updated_at = now
        secret.updated_by = actor
        secret.full_clean(validate_unique=False)
        secret.save()
        _new_generation()
        audit_record(
            actor=actor,
            event="secret.created" if created else "secret.updated",
            object_type="secret",
            object_id=name,
            details={"name": name, "key_id": secret.key_id},
        )
    return secret


def secret_delete(*, name: str, actor: str) -> None:
    with transaction.atomic():
        secret = Secret.objects.select_for_update().filter(name=name).first()
        if secret is None:
            raise SecretNotFound(f"No secret named '{name}'.")
        secret.delete()
        _new_generation()
        audit_record(
            actor=actor,
            event="secret.deleted",
            object_type="secret",
            object_id=name,
            details={"name": name},
        )


def secrets_reencrypt(*, actor: str) -> list[str]:
    """Seal every secret with the first key of MEDIC_ENCRYPTION_KEYS (after prepending a new
    key); returns the names re-sealed. Afterwards the old key can be removed.

    Row by row, each in its own short transaction (the row, its audit row and a new cache
    generation), so a rotation never holds a lock over every secret and an interrupted run is
    resumed by running it again: rows already sealed with the newest key are skipped. A secret
    no key opens stops the run (SecretUnreadable, naming it); the ones before it stay done."""
    newest = newest_key_id()
    done: list[str] = []
    stale = Secret.objects.exclude(key_id=newest).order_by("name").values_list("pk", flat=True)
    for pk in list(stale):
        with transaction.atomic():
            secret = Secret.objects.select_for_update().filter(pk=pk).first()
            if secret is None or key_id(secret.ciphertext) == newest:
                continue  # deleted or re-set meanwhile
            try:
                ciphertext = reseal(secret.ciphertext)
            except DecryptionError:
                raise SecretUnreadable(fields={"name": [secret.name]}) from None
            before = secret.key_id
            secret.ciphertext = ciphertext
            secret.key_id = key_id(ciphertext)
            secret.save(update_fields=["ciphertext", "key_id"])
            _new_generation()
            audit_record(
                actor=actor,
                event="secret.reencrypted",
                object_type="secret",
                object_id=secret.name,
                details={"name": secret.name, "key_id": secret.key_id, "previous_key_id": before},
            )
        done.append(secret.name)
    return done


def _sealed_tokens():
    for name, ciphertext in Secret.objects.order_by("name").values_list("name", "ciphertext"):
        yield name, "value", ciphertext


def _sealed_reseal(newest: str, actor: str) -> Rotation:
    total = Secret.objects.count()
    done = secrets_reencrypt(actor=actor)
    return Rotation(key_id=newest, resealed=len(done), current=total - len(done), owners=done)


# Named secrets as a store of medic.keyring: checked at start-up (medic.E010) and re-sealed by
# `manage.py rotate_encryption_key` together with the notification targets' secrets.
STORE = SealedStore(label="secret", tokens=_sealed_tokens, reseal=_sealed_reseal)
