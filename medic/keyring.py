"""Stored secrets and the configured encryption keys (MEDIC_ENCRYPTION_KEYS).

Secrets at rest are ``enc:v1:<key id>:...`` tokens (medic/crypto.py) kept by the apps: the
notification targets' secrets (alerting), the playbooks' named secrets (remediation). Each app
registers its store here from its ``AppConfig.ready`` (``sealed_store_register``): the core knows
no domain model.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.checks import Error, Tags, register
from django.db import DatabaseError

from medic import crypto

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealedStore:
    """One kind of row holding sealed secrets.

    ``tokens()`` yields ``(owner, secret name, token)`` for every stored secret; ``reseal(newest,
    actor)`` re-seals every row not entirely under key ``newest`` (one row per transaction, under a
    row lock, with an audit row) and returns a ``Rotation`` for its rows.
    """

    label: str  # "notification target", "secret"
    tokens: Callable[[], Iterable[tuple[str, str, str]]]
    reseal: Callable[[str, str], Rotation]


_stores: dict[str, SealedStore] = {}


def sealed_store_register(store: SealedStore) -> None:
    """Register (or replace: ready() may run twice in tests) a store of sealed secrets."""
    _stores[store.label] = store


@dataclass
class Unreadable:
    store: str
    owner: str
    secret: str
    key_id: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.store} '{self.owner}': secret '{self.secret}' (encryption key "
            f"'{self.key_id}'): {self.reason}"
        )


@dataclass
class Rotation:
    key_id: str
    resealed: int = 0
    current: int = 0
    owners: list[str] = field(default_factory=list)


def secrets_unreadable() -> list[Unreadable]:
    found = []
    for store in _stores.values():
        for owner, name, token in store.tokens():
            try:
                crypto.decrypt(token)
            except crypto.DecryptionError as exc:
                found.append(Unreadable(store.label, owner, name, crypto.key_id(token), str(exc)))
    return found


def secrets_by_key() -> Counter:
    """How many stored secrets each key id seals."""
    counts: Counter = Counter()
    for store in _stores.values():
        counts.update(crypto.key_id(token) for _, _, token in store.tokens())
    return counts


def secrets_rotate(*, actor: str = "cli:rotate_encryption_key") -> Rotation:
    """Re-seal every stored secret not sealed with the newest key. Raises DecryptionError (and
    changes nothing in that row) when a secret cannot be opened with the configured keys."""
    newest = crypto.newest_key_id()
    result = Rotation(key_id=newest)
    for store in _stores.values():
        part = store.reseal(newest, actor)
        result.resealed += part.resealed
        result.current += part.current
        result.owners += [f"{store.label} '{owner}'" for owner in part.owners]
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
