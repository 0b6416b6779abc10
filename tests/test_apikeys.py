"""SRE-7: API keys — creation, scopes, rotation, revocation, expiry, caching."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from medic.apikeys import api_key_create, key_cache
from medic.metrics import API_KEY_HASH_VERIFICATIONS, AUTH_FAILURES
from medic.models import ApiKey, AuditEvent
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


def _failures(reason: str) -> float:
    return AUTH_FAILURES.labels(reason=reason)._value.get()


def test_create_returns_secret_once_and_stores_only_a_hash(admin):
    response = admin.post("/v2/api-keys", {"name": "ci", "scopes": ["write"]})
    assert response.status_code == 201
    body = response.json()
    secret = body["key"]
    assert secret.startswith("mdk_") and len(secret) == 52
    assert body["scopes"] == ["write"] and body["active"] is True
    row = ApiKey.objects.get(pk=body["id"])
    assert secret not in row.hashed_key and row.hashed_key.startswith("$argon2id$")
    listed = admin.get("/v2/api-keys").json()["results"]
    assert all("key" not in item for item in listed)
    assert {item["name"] for item in listed} >= {"ci"}
    assert AuditEvent.objects.filter(event="api_key.created", object_id=str(row.pk)).exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["root"]}, "scopes[0]"),
        ({"name": "x", "scopes": ["read"], "expires_in_days": -1}, "expires_in_days"),
    ],
)
def test_create_rejects_bad_input_with_envelope(admin, payload, field):
    response = admin.post("/v2/api-keys", payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert any(k.startswith(field.split("[")[0]) for k in error["fields"]), error


def test_malformed_json_is_400_in_envelope(admin):
    response = admin.post("/v2/api-keys", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"


def test_key_endpoints_need_admin_scope(writer, reader):
    for client in (writer, reader):
        response = client.get("/v2/api-keys")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"
    assert writer.post("/v2/api-keys", {"name": "x", "scopes": ["read"]}).status_code == 403


def test_read_scope_cannot_write_and_write_scope_cannot_read(reader, writer):
    assert reader.get("/v2/services").status_code == 200
    denied = reader.post("/v2/services", {"heartbeat_name": "a", "alert_interval": 5})
    assert denied.status_code == 403
    assert (
        writer.post("/v2/services", {"heartbeat_name": "a", "alert_interval": 5}).status_code == 201
    )
    assert writer.get("/v2/services").status_code == 403


def test_missing_malformed_unknown_keys_are_401_and_counted(outsider):
    before = {r: _failures(r) for r in ("missing", "malformed", "unknown")}
    response = outsider.get("/v2/services")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"
    assert outsider.get("/v2/services", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    unknown = "mdk_" + "A" * 48
    assert outsider.get("/v2/services", HTTP_AUTHORIZATION=f"Bearer {unknown}").status_code == 401
    assert _failures("missing") == before["missing"] + 1
    assert _failures("malformed") == before["malformed"] + 1
    assert _failures("unknown") == before["unknown"] + 1


def test_x_api_key_header_is_accepted(reader_key):
    client = ApiClient(None)
    assert client.get("/v2/services", HTTP_X_API_KEY=reader_key).status_code == 200


def test_wrong_secret_with_valid_prefix_is_rejected(reader_key):
    forged = reader_key[:12] + "x" * 40
    response = ApiClient(forged).get("/v2/services")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_invalid"


def test_argon2_runs_once_across_100_requests(reader_key):
    key_cache.clear()
    before = API_KEY_HASH_VERIFICATIONS._value.get()
    client = ApiClient(reader_key)
    for _ in range(100):
        assert client.get("/v2/services").status_code == 200
    assert API_KEY_HASH_VERIFICATIONS._value.get() - before == 1


def test_revocation_applies_after_recheck_interval_without_hashing(admin, reader_key, settings):
    settings.MEDIC_API_KEY_RECHECK_SECONDS = 0
    client = ApiClient(reader_key)
    assert client.get("/v2/services").status_code == 200
    key_id = ApiKey.objects.get(name="reader persona").pk
    assert admin.delete(f"/v2/api-keys/{key_id}").status_code == 204
    response = client.get("/v2/services")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"


def test_rotation_replaces_the_secret(admin, reader_key, settings):
    settings.MEDIC_API_KEY_RECHECK_SECONDS = 0
    key_id = ApiKey.objects.get(name="reader persona").pk
    assert ApiClient(reader_key).get("/v2/services").status_code == 200
    rotated = admin.post(f"/v2/api-keys/{key_id}/rotate")
    assert rotated.status_code == 200
    new_secret = rotated.json()["key"]
    assert new_secret != reader_key and rotated.json()["id"] == key_id
    assert ApiClient(reader_key).get("/v2/services").status_code == 401
    assert ApiClient(new_secret).get("/v2/services").status_code == 200


def test_rotate_or_revoke_unknown_key_is_404(admin):
    assert admin.post("/v2/api-keys/999999/rotate").status_code == 404
    assert admin.delete("/v2/api-keys/999999").json()["error"]["code"] == "not_found"


def test_expired_key_is_refused(db):
    issued = api_key_create(name="short", scopes=["read"], expires_in_days=1)
    ApiKey.objects.filter(pk=issued.key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = ApiClient(issued.secret).get("/v2/services")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_expired"


def test_last_used_is_recorded(reader_key):
    ApiClient(reader_key).get("/v2/services")
    assert ApiKey.objects.get(name="reader persona").last_used_at is not None


def test_create_api_key_command_prints_key_alone_on_last_line(capsys):
    call_command(
        "create_api_key", "--name", "deploy", "--scopes", "read,write", "--expires-in", "30"
    )
    out = capsys.readouterr().out.strip().splitlines()
    secret = out[-1]
    assert secret.startswith("mdk_") and len(secret) == 52
    key = ApiKey.objects.get(name="deploy")
    assert key.scopes == ["read", "write"] and key.expires_at is not None
    assert ApiClient(secret).get("/v2/services").status_code == 200


def test_create_api_key_command_rejects_unknown_scope():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", "--name", "x", "--scopes", "superuser")
