"""API key services: create, rotate, revoke, verify.

Verification is the hot path of every request, so argon2 runs only on a cache miss. A verified key
is remembered per process under an HMAC digest of the secret (never the secret itself) and its row
is re-read at most every ``MEDIC_API_KEY_RECHECK_SECONDS``: that bounds how long a revoked, rotated
or expired key keeps working in any process, without a database read per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from medic.errors import InvalidInput, NotAuthenticated, NotFound
from medic.metrics import API_KEY_HASH_VERIFICATIONS
from medic.models import ApiKey, ApiKeyScope, AuditEvent
from medic.refusals import refused

KEY_PREFIX = "mdk_"
_LOOKUP_LEN = 8
_SECRET_LEN = 40
_ALPHABET = string.ascii_letters + string.digits
_KEY_LEN = len(KEY_PREFIX) + _LOOKUP_LEN + _SECRET_LEN
# argon2id with the library's RFC 9106 low-memory profile: ~20 ms per verification here.
_hasher = PasswordHasher()
# Scopes a caller may ask for. The agent scope is never requested: api_key_create(agent=True)
# issues it, alone, when an agent is created (remediation.agents.agent_create).
VALID_SCOPES = {s.value for s in ApiKeyScope} - {ApiKeyScope.AGENT.value}
_LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass
class IssuedKey:
    key: ApiKey
    secret: str


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _new_secret() -> tuple[str, str]:
    lookup = _random(_LOOKUP_LEN)
    return lookup, f"{KEY_PREFIX}{lookup}{_random(_SECRET_LEN)}"


def normalize_scopes(scopes: list[str] | str) -> list[str]:
    if isinstance(scopes, str):
        scopes = [s for s in scopes.split(",")]
    cleaned = sorted({s.strip().lower() for s in scopes if s and s.strip()})
    unknown = [s for s in cleaned if s not in VALID_SCOPES]
    if not cleaned:
        raise InvalidInput(fields={"scopes": ["At least one scope is required."]})
    if ApiKeyScope.AGENT.value in cleaned:
        raise InvalidInput(
            fields={"scopes": ["Agent keys are issued with their agent: POST /v2/agents."]}
        )
    if unknown:
        raise InvalidInput(
            fields={
                "scopes": [
                    f"Unknown scope(s) {', '.join(unknown)}; use {', '.join(sorted(VALID_SCOPES))}."
                ]
            }
        )
    return cleaned


RATE_LIMIT_CLASSES = ("heartbeat", "management")
MAX_RATE_LIMIT = 1_000_000  # requests per minute per key and class
MAX_EXPIRES_IN_DAYS = 3650


def normalize_rate_limits(limits: dict) -> dict[str, int]:
    """Per-key requests per minute by class; 0 means unlimited for that key."""
    errors = []
    for kind, value in limits.items():
        if kind not in RATE_LIMIT_CLASSES:
            errors.append(f"Unknown class '{kind}'; use {', '.join(RATE_LIMIT_CLASSES)}.")
        elif (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 <= value <= MAX_RATE_LIMIT
        ):
            errors.append(
                f"'{kind}' must be a whole number of requests per minute, at most "
                f"{MAX_RATE_LIMIT} (0: no limit)."
            )
    if errors:
        raise InvalidInput(fields={"rate_limits": errors})
    return dict(limits)


def api_key_update(
    *, key_id: int, actor: str, name: str | None = None, rate_limits: dict | None = None
) -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise NotFound("No API key with this id.")
        changed = []
        if name is not None and name.strip() and name.strip() != key.name:
            key.name = name.strip()[:100]
            changed.append("name")
        if rate_limits is not None:
            key.rate_limits = normalize_rate_limits(rate_limits)
            changed.append("rate_limits")
        if changed:
            key.save(update_fields=changed)
            AuditEvent.objects.create(
                actor=actor,
                event="api_key.updated",
                object_type="api_key",
                object_id=str(key.pk),
                details={"changed": changed, "rate_limits": key.rate_limits},
            )
    return key


def api_key_create(
    *,
    name: str,
    scopes: list[str] | str,
    expires_in_days: float | None = None,
    rate_limits: dict[str, int] | None = None,
    actor: str = "system",
    agent: bool = False,
) -> IssuedKey:
    name = (name or "").strip()
    if not name:
        raise InvalidInput(fields={"name": ["A name is required."]})
    if len(name) > 100:
        raise InvalidInput(fields={"name": ["At most 100 characters."]})
    scope_list = [ApiKeyScope.AGENT.value] if agent else normalize_scopes(scopes)
    expires_at = None
    if expires_in_days is not None:
        if not 0 < expires_in_days <= MAX_EXPIRES_IN_DAYS:
            raise InvalidInput(
                fields={"expires_in_days": [f"Must be from 0 to {MAX_EXPIRES_IN_DAYS} days."]}
            )
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    lookup, secret = _new_secret()
    with transaction.atomic():
        key = ApiKey(
            name=name,
            prefix=lookup,
            hashed_key=_hasher.hash(secret),
            scopes=scope_list,
            rate_limits=normalize_rate_limits(rate_limits or {}),
            expires_at=expires_at,
            created_by=actor,
        )
        key.full_clean()
        key.save()
        AuditEvent.objects.create(
            actor=actor,
            event="api_key.created",
            object_type="api_key",
            object_id=str(key.pk),
            details={"name": name, "scopes": scope_list, "expires_at": _iso(expires_at)},
        )
    return IssuedKey(key=key, secret=secret)


def api_key_rotate(*, key_id: int, actor: str = "system") -> IssuedKey:
    """Replace the secret of a key in place (same id, name, scopes); the old one stops working."""
    lookup, secret = _new_secret()
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id, revoked_at=None).first()
        if key is None:
            raise NotFound("No active API key with this id.")
        key.prefix = lookup
        key.hashed_key = _hasher.hash(secret)
        key.rotated_at = timezone.now()
        key.save(update_fields=["prefix", "hashed_key", "rotated_at"])
        AuditEvent.objects.create(
            actor=actor,
            event="api_key.rotated",
            object_type="api_key",
            object_id=str(key.pk),
            details={"name": key.name},
        )
    return IssuedKey(key=key, secret=secret)


def api_key_revoke(*, key_id: int, actor: str = "system") -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise NotFound("No API key with this id.")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            AuditEvent.objects.create(
                actor=actor,
                event="api_key.revoked",
                object_type="api_key",
                object_id=str(key.pk),
                details={"name": key.name},
            )
    return key


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- Verification -----------------------------------------------------------------------------


@dataclass
class _Entry:
    key_id: int
    hashed_key: str
    scopes: frozenset[str]
    expires_at: datetime | None
    name: str
    rate_limits: dict
    checked_at: float = field(default_factory=time.monotonic)
    last_used_at: datetime | None = None


class _KeyCache:
    """A bounded LRU of verified keys, plus a short negative cache for wrong secrets."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._rejected: OrderedDict[bytes, float] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries.move_to_end(digest)
            return entry

    def put(self, digest: bytes, entry: _Entry) -> None:
        with self._lock:
            self._entries[digest] = entry
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
            self._rejected.pop(digest, None)

    def drop(self, digest: bytes) -> None:
        with self._lock:
            self._entries.pop(digest, None)

    def reject(self, digest: bytes, ttl: float = 30.0) -> None:
        with self._lock:
            self._rejected[digest] = time.monotonic() + ttl
            while len(self._rejected) > self._max:
                self._rejected.popitem(last=False)

    def is_rejected(self, digest: bytes) -> bool:
        with self._lock:
            until = self._rejected.get(digest)
            if until is None:
                return False
            if until < time.monotonic():
                del self._rejected[digest]
                return False
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._rejected.clear()


key_cache = _KeyCache()


def _digest(secret: str) -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), secret.encode(), hashlib.sha256).digest()


def _fail(reason: str, message: str) -> NotAuthenticated:
    refused(reason)
    return NotAuthenticated(message, code=f"api_key_{reason}" if reason != "missing" else None)


def api_key_verify(secret: str, *, gate: Callable[[], None] | None = None) -> ApiKey:
    """Return the ApiKey (an unsaved copy) for a presented secret or raise NotAuthenticated.

    ``gate`` runs before any database or hashing work for a key that is not already trusted
    (the per-address limit on unauthenticated traffic); cached keys skip it.
    """
    if not (secret.startswith(KEY_PREFIX) and len(secret) == _KEY_LEN) and not _v1_shaped(secret):
        if gate is not None:
            gate()
        raise _fail("malformed", "The API key is malformed: Medic keys look like mdk_ + 48 chars.")
    digest = _digest(secret)
    entry = key_cache.get(digest)
    now_mono = time.monotonic()
    if entry is not None and now_mono - entry.checked_at > settings.MEDIC_API_KEY_RECHECK_SECONDS:
        entry = _recheck(digest, entry)
    if entry is None:
        if gate is not None:
            gate()
        if key_cache.is_rejected(digest):
            raise _fail("invalid", "The API key is not valid (or was revoked).")
        entry = _verify_slow(secret, digest)
    if entry.expires_at is not None and entry.expires_at <= timezone.now():
        key_cache.drop(digest)
        raise _fail("expired", "The API key has expired.")
    return ApiKey(
        pk=entry.key_id,
        name=entry.name,
        scopes=sorted(entry.scopes),
        rate_limits=entry.rate_limits,
        expires_at=entry.expires_at,
        hashed_key=entry.hashed_key,
    )


def _verify_slow(secret: str, digest: bytes) -> _Entry:
    if len(secret) == V1_KEY_LEN:
        row = _v1_row(secret, digest)
    else:
        lookup = secret[len(KEY_PREFIX) : len(KEY_PREFIX) + _LOOKUP_LEN]
        row = ApiKey.objects.filter(prefix=lookup).first()
        if row is None:
            raise _fail("unknown", "The API key is not valid.")
        API_KEY_HASH_VERIFICATIONS.inc()
        try:
            _hasher.verify(row.hashed_key, secret)
        except (VerificationError, InvalidHashError):
            key_cache.reject(digest)
            raise _fail("invalid", "The API key is not valid.") from None
    if row.revoked_at is not None:
        key_cache.reject(digest, ttl=300.0)  # a revoked key must not cost a hash per request
        raise _fail("revoked", "The API key has been revoked.")
    entry = _Entry(
        key_id=row.pk,
        hashed_key=row.hashed_key,
        scopes=frozenset(row.scopes),
        expires_at=row.expires_at,
        name=row.name,
        rate_limits=row.rate_limits,
        last_used_at=row.last_used_at,
    )
    _touch(entry)
    key_cache.put(digest, entry)
    return entry


def _recheck(digest: bytes, entry: _Entry) -> _Entry | None:
    """Re-read the key row (no hashing): revocation, rotation, scope and expiry changes apply."""
    row = (
        ApiKey.objects.filter(pk=entry.key_id)
        .values(
            "hashed_key",
            "revoked_at",
            "scopes",
            "expires_at",
            "name",
            "last_used_at",
            "rate_limits",
        )
        .first()
    )
    if row is None or row["hashed_key"] != entry.hashed_key:
        key_cache.drop(digest)
        return None  # deleted or rotated: fall through to the slow path, which will refuse it
    if row["revoked_at"] is not None:
        key_cache.drop(digest)
        key_cache.reject(digest, ttl=300.0)
        raise _fail("revoked", "The API key has been revoked.")
    entry.scopes = frozenset(row["scopes"])
    entry.expires_at = row["expires_at"]
    entry.name = row["name"]
    entry.rate_limits = row["rate_limits"]
    entry.last_used_at = row["last_used_at"]
    entry.checked_at = time.monotonic()
    _touch(entry)
    return entry


def _touch(entry: _Entry) -> None:
    now = timezone.now()
    if entry.last_used_at is None or now - entry.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=entry.key_id).update(last_used_at=now)
        entry.last_used_at = now


# --- Keys imported from Medic v1 ---------------------------------------------------------------
#
# v1 keys are ``mdk_`` + ``secrets.token_urlsafe(32)`` (43 characters), stored as an Argon2id hash
# and nothing else: no look-up prefix. v1 found a key by verifying every hash. Medic 2 does not:
#
# * ``manage.py import_v1`` copies each hash verbatim into a row whose prefix is ``v1-<v1 id>``
#   (never a Medic 2 look-up, which is 8 letters and digits) and imports at most
#   MEDIC_V1_API_KEY_CANDIDATES of them;
# * the first time a v1-shaped key is presented, it is verified against those not-yet-seen rows
#   only (at most MEDIC_V1_API_KEY_CANDIDATES hashes, after the per-address limit on
#   unauthenticated traffic), and the row that matches is bound to it: its prefix becomes
#   ``v1`` + the first 14 hex digits of the key's SHA-256 (the key holds 256 random bits, so this
#   says nothing usable about it). It then leaves the candidate set;
# * from then on that key is found by its prefix, exactly like a Medic 2 key: one hash.
#
# A wrong v1-shaped key costs at most MEDIC_V1_API_KEY_CANDIDATES hashes once, then is refused
# from the negative cache; the set shrinks as deployed clients are seen, and is empty once every
# v1 key has been used (or revoked).

V1_KEY_LEN = len(KEY_PREFIX) + 43
V1_UNBOUND_PREFIX = "v1-"
V1_CREATED_BY = "import:v1#"
_V1_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")


def _v1_shaped(secret: str) -> bool:
    return (
        len(secret) == V1_KEY_LEN
        and secret.startswith(KEY_PREFIX)
        and _V1_ALPHABET.issuperset(secret[len(KEY_PREFIX) :])
    )


def v1_bound_prefix(secret: str) -> str:
    return "v1" + hashlib.sha256(secret.encode()).hexdigest()[:14]


def _v1_candidates():
    return ApiKey.objects.filter(
        prefix__startswith=V1_UNBOUND_PREFIX, created_by__startswith=V1_CREATED_BY
    ).order_by("pk")


def _v1_row(secret: str, digest: bytes) -> ApiKey:
    """The imported v1 key row for a v1-shaped secret: by its bound prefix (one hash), else
    among the rows not yet bound (at most MEDIC_V1_API_KEY_CANDIDATES hashes), binding it."""
    bound = v1_bound_prefix(secret)
    row = ApiKey.objects.filter(prefix=bound).first()
    if row is not None:
        API_KEY_HASH_VERIFICATIONS.inc()
        try:
            _hasher.verify(row.hashed_key, secret)
        except (VerificationError, InvalidHashError):
            key_cache.reject(digest)
            raise _fail("invalid", "The API key is not valid.") from None
        return row
    limit = max(settings.MEDIC_V1_API_KEY_CANDIDATES, 0)
    for candidate in _v1_candidates().filter(revoked_at=None)[:limit]:
        API_KEY_HASH_VERIFICATIONS.inc()
        try:
            _hasher.verify(candidate.hashed_key, secret)
        except (VerificationError, InvalidHashError):
            continue
        # Bound once: a concurrent first use of the same key binds the same prefix.
        ApiKey.objects.filter(pk=candidate.pk, prefix=candidate.prefix).update(prefix=bound)
        candidate.prefix = bound
        return candidate
    key_cache.reject(digest, ttl=300.0)
    raise _fail("unknown", "The API key is not valid.")


@dataclass
class V1KeyImport:
    key: ApiKey
    created: bool
    changed: bool


def api_key_import_v1(
    *,
    v1_id: int,
    name: str,
    key_hash: str,
    scopes: list[str],
    expires_at: datetime | None,
    created_at: datetime | None,
    actor: str,
) -> V1KeyImport:
    """Create or update the row of one v1 key (see above), matched by its v1 id. The hash is
    copied verbatim; a changed hash (v1 re-hashes its ``admin`` key at each start) unbinds the
    row. Unchanged, it writes nothing."""
    if not key_hash.startswith("$argon2id$"):
        raise InvalidInput(fields={"key_hash": ["Not an Argon2id PHC string."]})
    scope_list = normalize_scopes(scopes)
    name = (name or "").strip()[:100] or f"v1 key {v1_id}"
    created_by = f"{V1_CREATED_BY}{v1_id}"
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(created_by=created_by).first()
        created = key is None
        if created:
            key = ApiKey(
                prefix=f"{V1_UNBOUND_PREFIX}{v1_id}",
                created_by=created_by,
                created_at=created_at or timezone.now(),
            )
        wanted = {"name": name, "scopes": scope_list, "expires_at": expires_at}
        changed = [f for f, v in wanted.items() if getattr(key, f) != v]
        if key.hashed_key != key_hash:
            changed += ["hashed_key", "prefix"]
            key.hashed_key = key_hash
            key.prefix = f"{V1_UNBOUND_PREFIX}{v1_id}"
        if not created and not changed:
            return V1KeyImport(key, False, False)
        for field_name, value in wanted.items():
            setattr(key, field_name, value)
        key.full_clean()
        key.save()
        AuditEvent.objects.create(
            actor=actor,
            event="api_key.imported",
            object_type="api_key",
            object_id=str(key.pk),
            details={"name": key.name, "scopes": scope_list, "v1_id": v1_id, "changed": changed},
        )
    return V1KeyImport(key, created, True)


def v1_key_candidates(*, exclude_v1_ids: set[int] | None = None) -> int:
    """How many imported v1 keys wait for their first use (the candidate set)."""
    rows = _v1_candidates().filter(revoked_at=None).values_list("created_by", flat=True)
    skip = {f"{V1_CREATED_BY}{i}" for i in exclude_v1_ids or ()}
    return sum(1 for r in rows if r not in skip)
