"""Keys imported from Medic v1 (medic.apikeys, "Keys imported from Medic v1"): no look-up prefix,
so a v1 key is tried once against a bounded set of imported hashes, then found by a prefix bound
to it."""

from __future__ import annotations

import secrets

import pytest
from argon2 import PasswordHasher

from medic.apikeys import api_key_import_v1, api_key_revoke, api_key_verify, key_cache
from medic.errors import InvalidInput, NotAuthenticated
from medic.metrics import API_KEY_HASH_VERIFICATIONS

pytestmark = pytest.mark.django_db
HASHER = PasswordHasher()


def _v1_key() -> str:
    return "mdk_" + secrets.token_urlsafe(32)


def _import(v1_id: int, secret: str, **extra):
    values = {
        "name": f"client-{v1_id}",
        "key_hash": HASHER.hash(secret),
        "scopes": ["read"],
        "expires_at": None,
        "created_at": None,
        "actor": "tests",
    }
    return api_key_import_v1(v1_id=v1_id, **{**values, **extra})


def _hashes() -> float:
    return API_KEY_HASH_VERIFICATIONS._value.get()


def test_only_argon2id_hashes_and_known_scopes_are_imported():
    with pytest.raises(InvalidInput):
        _import(1, _v1_key(), key_hash="$2b$12$" + "x" * 53)  # bcrypt: no verifier here
    with pytest.raises(InvalidInput):
        _import(1, _v1_key(), scopes=["superuser"])


def test_the_candidate_search_is_bounded_and_skips_revoked_keys(settings):
    keys = [_v1_key() for _ in range(3)]
    rows = [_import(i + 1, k).key for i, k in enumerate(keys)]
    settings.MEDIC_V1_API_KEY_CANDIDATES = 2
    api_key_revoke(key_id=rows[0].pk, actor="tests")

    # Revoked keys are not candidates; of the rest, at most two hashes are tried.
    before = _hashes()
    with pytest.raises(NotAuthenticated):
        api_key_verify(_v1_key())
    assert _hashes() - before == 2
    assert api_key_verify(keys[1]).name == "client-2"
    with pytest.raises(NotAuthenticated):
        api_key_verify(keys[0])

    # No candidate left but the third: the search costs one hash, then nothing (remembered).
    key_cache.clear()
    before = _hashes()
    stranger = _v1_key()
    for _ in range(3):
        with pytest.raises(NotAuthenticated):
            api_key_verify(stranger)
    assert _hashes() - before == 1


def test_a_changed_v1_hash_unbinds_the_row_and_an_unchanged_one_writes_nothing():
    secret = _v1_key()
    imported = _import(7, secret)
    assert imported.created and imported.key.prefix == "v1-7"
    assert api_key_verify(secret).name == "client-7"
    bound = type(imported.key).objects.get(pk=imported.key.pk).prefix
    assert bound.startswith("v1") and bound != "v1-7"
    same = _import(7, secret, key_hash=imported.key.hashed_key)
    assert not same.changed and same.key.prefix == bound
    # v1 re-hashes its admin key at each start: a new hash is a new candidate.
    rehashed = _import(7, secret)
    assert rehashed.changed and rehashed.key.prefix == "v1-7"
    key_cache.clear()
    assert api_key_verify(secret).name == "client-7"


def test_a_v2_key_and_a_malformed_key_are_unaffected():
    with pytest.raises(NotAuthenticated, match="malformed"):
        api_key_verify("mdk_" + "x" * 42)
    with pytest.raises(NotAuthenticated, match="malformed"):
        api_key_verify("mdk_" + "!" * 43)
