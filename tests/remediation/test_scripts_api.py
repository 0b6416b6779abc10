"""/v2/scripts: registration, immutable versions with audit rows, validation, scopes."""

from __future__ import annotations

import hashlib

import pytest

from remediation.audit.models import AuditEntry
from remediation.models import ScriptVersion
from tests.remediation.conftest import GREET_BODY, GREET_SCHEMA, GREET_SHA

pytestmark = pytest.mark.django_db

RESTART = {
    "name": "restart_nginx",
    "description": "Restart nginx",
    "command": ["/bin/systemctl", "restart", "nginx"],
    "run_local": True,
}


def test_create_returns_version_one_with_defaults_and_an_audit_row(admin):
    response = admin.post("/v2/scripts", RESTART)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "restart_nginx"
    assert body["version"] == 1
    assert body["command"] == ["/bin/systemctl", "restart", "nginx"]
    assert body["args_schema"] == {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    assert body["timeout_seconds"] == 60
    assert body["limits"] == {
        "cpu_seconds": 30,
        "memory_mb": 256,
        "open_files": 64,
        "processes": 32,
        "output_bytes": 65536,
    }
    event = AuditEntry.objects.get(event="script.created")
    assert event.object_id == "restart_nginx"
    assert event.details["version"] == 1
    assert event.actor.startswith("key:admin persona#")


def test_a_body_gets_its_sha256_and_a_wrong_one_is_refused(admin):
    ok = admin.post(
        "/v2/scripts",
        {"name": "greet", "body": GREET_BODY, "run_on_agents": True, "args_schema": GREET_SCHEMA},
    )
    assert ok.status_code == 201
    assert ok.json()["sha256"] == GREET_SHA
    bad = admin.post(
        "/v2/scripts",
        {"name": "other", "body": GREET_BODY, "sha256": "0" * 64, "run_local": True},
    )
    assert bad.status_code == 422
    assert "Does not match the body" in bad.json()["error"]["fields"]["sha256"][0]


def test_every_change_is_a_new_immutable_version(admin):
    admin.post("/v2/scripts", RESTART)
    changed = admin.patch("/v2/scripts/restart_nginx", {"timeout_seconds": 30, "processes": 4})
    assert changed.status_code == 200
    assert changed.json()["version"] == 2
    assert changed.json()["timeout_seconds"] == 30
    assert changed.json()["limits"]["processes"] == 4
    # the same values again: nothing new
    assert admin.patch("/v2/scripts/restart_nginx", {"timeout_seconds": 30}).json()["version"] == 2
    v1 = ScriptVersion.objects.get(script__name="restart_nginx", version=1)
    assert v1.timeout_seconds == 60 and v1.processes == 32
    versions = admin.get("/v2/scripts/restart_nginx/versions").json()["results"]
    assert [v["version"] for v in versions] == [2, 1]
    event = AuditEntry.objects.get(event="script.version_created")
    assert event.details["changed"] == ["processes", "timeout_seconds"]
    # switching to a body drops the command
    body = "#!/bin/sh\nexec /bin/systemctl restart nginx\n"
    v3 = admin.patch("/v2/scripts/restart_nginx", {"body": body}).json()
    assert v3["version"] == 3 and v3["command"] == []
    assert v3["sha256"] == hashlib.sha256(body.encode()).hexdigest()


def test_disable_refuses_runs_until_changed_again(admin, writer):
    admin.post("/v2/scripts", RESTART)
    assert admin.delete("/v2/scripts/restart_nginx").status_code == 204
    run = writer.post("/v2/scripts/restart_nginx/run", {"target": {"local": True}})
    assert run.status_code == 409
    assert run.json()["error"]["code"] == "script_disabled"
    assert admin.get("/v2/scripts/restart_nginx").json()["enabled"] is False
    again = admin.patch("/v2/scripts/restart_nginx", {"description": "back"})
    assert again.json()["enabled"] is True and again.json()["version"] == 2


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"command": ["systemctl", "restart"]}, "command", "absolute path"),
        ({"command": [], "body": "echo hi"}, "body", "'#!'"),
        ({"args_schema": {"type": "object"}}, "args_schema", "additionalProperties"),
        ({"args_schema": {"type": "array", "additionalProperties": False}}, "args_schema", "top"),
        (
            {
                "args_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"a-b": {}},
                }
            },
            "args_schema",
            "Argument names",
        ),
        ({"args_schema": {"type": 12}}, "args_schema", "Not a valid JSON Schema"),
        ({"run_local": False}, "run_local", "somewhere"),
        ({"run_on_agents": True}, "sha256", "agents hold"),
        ({"timeout_seconds": 0}, "timeout_seconds", ""),
        ({"memory_mb": 1}, "memory_mb", ""),
        ({"output_bytes": 10 * 1024 * 1024}, "output_bytes", ""),
    ],
)
def test_invalid_specs_are_refused_with_the_field(admin, change, field, message):
    response = admin.post("/v2/scripts", {**RESTART, **change})
    assert response.status_code == 422, response.content
    fields = response.json()["error"]["fields"]
    assert field in fields, fields
    assert message in " ".join(fields[field])


def test_duplicate_names_conflict(admin):
    admin.post("/v2/scripts", RESTART)
    response = admin.post("/v2/scripts", RESTART)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "script_exists"


def test_scripts_need_an_admin_key(writer, reader, outsider):
    for client, expected in ((writer, 403), (reader, 403), (outsider, 401)):
        assert client.get("/v2/scripts").status_code == expected
        assert client.post("/v2/scripts", RESTART).status_code == expected


def test_unknown_script_is_404(admin):
    response = admin.get("/v2/scripts/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "script_not_found"
