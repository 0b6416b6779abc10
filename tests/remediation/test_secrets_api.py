"""/v2/secrets: write-only, admin scope, audited by name."""

from __future__ import annotations

import json
import logging

import pytest

from medic import crypto
from remediation.audit.models import AuditEntry
from remediation.secrets.services import secret_value

pytestmark = pytest.mark.django_db
VALUE = "pg-Pa55word-0f-the-night"


def _put(client, name: str, body: dict):
    return client.generic(
        "PUT",
        f"/v2/secrets/{name}",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {client.key}",
    )


def test_set_replace_list_and_delete_never_show_the_value(admin, settings, caplog):
    settings.DEBUG = True  # SQL statements are logged with their parameters
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    created = _put(admin, "db_password", {"value": VALUE})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "db_password" and body["key_id"] == crypto.newest_key_id()
    assert body["created_at"] == body["updated_at"]
    assert body["created_by"].startswith("key:admin persona#")
    replaced = _put(admin, "db_password", {"value": VALUE + "-2"})
    assert replaced.status_code == 200
    assert replaced.json()["updated_at"] > replaced.json()["created_at"]
    posted = admin.post("/v2/secrets", {"name": "api_token", "value": "tok-" + VALUE})
    assert posted.status_code == 201
    listed = admin.get("/v2/secrets")
    assert [s["name"] for s in listed.json()["results"]] == ["api_token", "db_password"]
    assert set(listed.json()["results"][0]) == {
        "name",
        "key_id",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
    }
    shown = admin.get("/v2/secrets/db_password")
    for response in (created, replaced, posted, listed, shown):
        assert VALUE not in response.content.decode()
    assert secret_value(name="db_password") == VALUE + "-2"
    assert admin.delete("/v2/secrets/db_password").status_code == 204
    gone = admin.get("/v2/secrets/db_password")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "secret_not_found"
    assert admin.delete("/v2/secrets/db_password").status_code == 404
    assert caplog.records
    for record in caplog.records:
        assert VALUE not in json.dumps(record.__dict__, default=str)
    events = list(AuditEntry.objects.order_by("id").values_list("event", "object_id"))
    assert events == [
        ("secret.created", "db_password"),
        ("secret.updated", "db_password"),
        ("secret.created", "api_token"),
        ("secret.deleted", "db_password"),
    ]


def test_invalid_input_is_refused_without_echoing_the_value(admin):
    short = _put(admin, "tiny", {"value": "abc"})
    assert short.status_code == 422
    assert short.json()["error"]["code"] == "invalid"
    assert list(short.json()["error"]["fields"]) == ["value"]
    bad_name = admin.post("/v2/secrets", {"name": "no-dashes", "value": VALUE})
    assert bad_name.status_code == 422
    assert list(bad_name.json()["error"]["fields"]) == ["name"]
    assert VALUE not in bad_name.content.decode()
    missing = _put(admin, "x_name", {})
    assert missing.status_code == 422 and list(missing.json()["error"]["fields"]) == ["value"]
    malformed = admin.post("/v2/secrets", "{not json", content_type="application/json")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed"


def test_only_admin_keys_reach_secrets(admin, writer, reader, outsider):
    _put(admin, "db_password", {"value": VALUE})
    for client in (writer, reader):
        assert client.get("/v2/secrets").status_code == 403
        assert client.get("/v2/secrets/db_password").status_code == 403
        assert client.post("/v2/secrets", {"name": "x_y", "value": VALUE}).status_code == 403
        assert _put(client, "db_password", {"value": "changed-value"}).status_code == 403
        assert client.delete("/v2/secrets/db_password").status_code == 403
    refused = outsider.get("/v2/secrets")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authenticated"
    assert secret_value(name="db_password") == VALUE
