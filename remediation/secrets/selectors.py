"""Reads of named secrets, and masking of their plaintext.

Decrypted values are cached per process together with the generation token they were read
under (remediation.secrets.models.SecretsGeneration); each read costs one primary-key lookup of
that token, and a change made by any process is seen on the next read. Plaintext is never
logged: log lines name secrets, never values.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings
from django.db.models import QuerySet

from medic.crypto import DecryptionError, decrypt
from medic.errors import Conflict, NotFound
from remediation.secrets.models import Secret, SecretsGeneration

logger = logging.getLogger(__name__)
MASK = "••••••"


class SecretNotFound(NotFound):
    code = "secret_not_found"
    default_message = "No secret with this name."


class SecretUnreadable(Conflict):
    code = "secret_unreadable"
    default_message = (
        "The secret cannot be decrypted: MEDIC_ENCRYPTION_KEYS no longer holds the key it was "
        "sealed with. Set it again."
    )


@dataclass(frozen=True)
class _Snapshot:
    token: uuid.UUID | None
    keyring: str = ""
    values: dict[str, str] = field(default_factory=dict)
    unreadable: frozenset[str] = frozenset()
    pattern: re.Pattern | None = None


_cache = _Snapshot(token=None)


def _variants(value: str) -> set[str]:
    # The forms a value takes on its way into a URL, a form body or a JSON document, so that a
    # secret is masked in a captured request or response too, not only verbatim.
    return {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}


def _load(token: uuid.UUID | None, keyring: str) -> _Snapshot:
    values: dict[str, str] = {}
    unreadable = set()
    for name, ciphertext in Secret.objects.values_list("name", "ciphertext"):
        try:
            values[name] = decrypt(ciphertext)
        except DecryptionError as exc:
            unreadable.add(name)
            logger.error("secret cannot be decrypted: %s", exc, extra={"secret": name})
    forms = {form for value in values.values() for form in _variants(value) if form}
    # Longest first, so a secret that contains another is masked whole.
    ordered = sorted(forms, key=lambda s: (-len(s), s))
    pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
    return _Snapshot(
        token=token,
        keyring=keyring,
        values=values,
        unreadable=frozenset(unreadable),
        pattern=pattern,
    )


def _snapshot() -> _Snapshot:
    global _cache
    token = SecretsGeneration.objects.filter(pk=1).values_list("token", flat=True).first()
    # The keys take part too: a process reconfigured with other keys must not keep serving
    # values it could no longer decrypt.
    keyring = settings.MEDIC_ENCRYPTION_KEYS
    cached = _cache
    if token is not None and cached.token == token and cached.keyring == keyring:
        return cached
    fresh = _load(token, keyring)
    _cache = fresh
    return fresh


def secret_value(*, name: str) -> str:
    """The plaintext of a secret, for a step about to use it (never for a response)."""
    snapshot = _snapshot()
    if name in snapshot.values:
        return snapshot.values[name]
    if name in snapshot.unreadable:
        raise SecretUnreadable(fields={"name": [name]})
    raise SecretNotFound(f"No secret named '{name}'.")


def secret_names() -> set[str]:
    return set(Secret.objects.values_list("name", flat=True))


def secret_list() -> QuerySet[Secret]:
    return Secret.objects.order_by("name")


def secret_get(name: str) -> Secret:
    secret = Secret.objects.filter(name=name).first()
    if secret is None:
        raise SecretNotFound(f"No secret named '{name}'.")
    return secret


def secrets_mask(text: str) -> str:
    """``text`` with every stored secret's plaintext replaced by ``••••••``."""
    if not text:
        return text
    pattern = _snapshot().pattern
    return pattern.sub(MASK, text) if pattern is not None else text


def secrets_mask_data(data: Any) -> Any:
    """``data`` (dicts, lists, strings, scalars) with every string masked, keys included."""
    return secrets_masker()(data)


def secrets_masker() -> Callable[[Any], Any]:
    """A masking function bound to the secrets stored now: one lookup for many values (an
    export of a million rows asks the database once, not once per row)."""
    pattern = _snapshot().pattern
    if pattern is None:
        return lambda data: data
    return lambda data: _mask(data, pattern)


def _mask(data: Any, pattern: re.Pattern) -> Any:
    if isinstance(data, str):
        return pattern.sub(MASK, data)
    if isinstance(data, dict):
        return {_mask(k, pattern): _mask(v, pattern) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_mask(v, pattern) for v in data]
    return data
