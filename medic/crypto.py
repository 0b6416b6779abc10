"""Secrets at rest: AES-256-GCM with a key id, so keys can be rotated.

``MEDIC_ENCRYPTION_KEYS`` lists ``id:base64-32-byte-key`` pairs, newest first; new secrets are
sealed with the first, any listed key opens old ones. Without it, one key is derived from
``SECRET_KEY`` (HKDF, id ``sk``) — fine for a trial (the embedded mode's ``SECRET_KEY`` is random,
made on the first start in ``var/secret_key``), but set explicit keys in production so that
rotating ``SECRET_KEY`` does not make stored secrets unreadable. See docs/configuration.md.

Token format: ``enc:v1:<key id>:<base64(nonce || ciphertext+tag)>``.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "enc:v1:"


class DecryptionError(Exception):
    pass


@lru_cache(maxsize=8)
def _keys(raw: str, secret_key: str) -> tuple[tuple[str, bytes], ...]:
    if not raw.strip():
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"medic-secrets", info=b"aes-256-gcm"
        ).derive(secret_key.encode())
        return (("sk", derived),)
    keys = []
    for item in raw.split(","):
        kid, sep, b64 = item.strip().partition(":")
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError:
            key = b""
        if not sep or not kid or len(key) != 32:
            raise ImproperlyConfigured(
                "MEDIC_ENCRYPTION_KEYS must be 'id:base64key[,id:base64key...]' with 32-byte keys "
                "(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')"
            )
        keys.append((kid, key))
    return tuple(keys)


def _keyring() -> tuple[tuple[str, bytes], ...]:
    return _keys(settings.MEDIC_ENCRYPTION_KEYS, settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    kid, key = _keyring()[0]
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), kid.encode())
    return f"{PREFIX}{kid}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(token: str) -> str:
    if not token.startswith(PREFIX):
        raise DecryptionError("not an encrypted value")
    kid, _, b64 = token[len(PREFIX) :].partition(":")
    key = dict(_keyring()).get(kid)
    if key is None:
        raise DecryptionError(f"encryption key '{kid}' is not configured")
    blob = base64.b64decode(b64)
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], kid.encode()).decode()
    except InvalidTag as exc:
        raise DecryptionError("secret cannot be decrypted (wrong key or tampered)") from exc


def newest_key_id() -> str:
    return _keyring()[0][0]


def reseal(token: str) -> str:
    """The same secret sealed with the newest key (unchanged if it already is)."""
    if key_id(token) == newest_key_id():
        return token
    return encrypt(decrypt(token))


def key_id(token: str) -> str:
    return token[len(PREFIX) :].partition(":")[0] if token.startswith(PREFIX) else ""
