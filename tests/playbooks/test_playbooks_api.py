"""POST/PUT/GET /v2/playbooks: YAML in, versions with author, reason and diff, 422 with lines."""

from __future__ import annotations

import json

import pytest

from remediation.playbooks.models import Playbook, PlaybookVersion
from remediation.services import script_create
from tests.playbooks.conftest import PRD_EXAMPLE, post_yaml

pytestmark = pytest.mark.django_db


def test_the_prd_example_is_accepted_as_written(admin):
    response = post_yaml(admin, "/v2/playbooks", PRD_EXAMPLE)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "restart-worker"
    assert body["version"] == 1
    assert body["mode"] == "active"
    assert isinstance(body["id"], int)
    version = PlaybookVersion.objects.get(playbook__name="restart-worker")
    assert version.source == PRD_EXAMPLE
    steps = version.spec["steps"]
    assert [s["type"] for s in steps] == ["webhook", "wait", "condition"]
    assert steps[1]["duration_seconds"] == 30
    assert steps[2]["on_failure"] == {"action": "escalate"}


def test_json_with_the_same_structure_is_accepted(admin):
    import yaml

    document = yaml.safe_load(PRD_EXAMPLE)
    response = admin.post("/v2/playbooks", json.dumps(document), content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 1


def test_invalid_document_answers_422_with_lines_and_paths(admin):
    bad = PRD_EXAMPLE.replace("duration: 30s", "duration: soon")
    response = post_yaml(admin, "/v2/playbooks", bad)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "playbook_invalid"
    fields = error["fields"]
    assert fields["steps[1].duration"][0]["line"] == 16
    assert not Playbook.objects.exists()
    typo = post_yaml(admin, "/v2/playbooks", PRD_EXAMPLE.replace("SERVICE_NAME", "SERVICE_NAM"))
    body_error = typo.json()["error"]["fields"]["steps[0].body"][0]
    assert body_error["line"] == 12 and "SERVICE_NAM" in body_error["message"]


@pytest.mark.parametrize(
    ("change", "path", "needle"),
    [
        (("on_failure: escalate", "on_failure: {goto: nowhere}"), "steps[2].on_failure", "nowhere"),
        (
            ("on_failure: escalate", "on_failure: {goto: restart-service}"),
            "steps[2].on_failure",
            "loop",
        ),
        (('"${SERVICE_NAME}"', '"${SECRET.api_token}"'), "steps[0].body", "api_token"),
        (
            ('"${SERVICE_NAME}"', '"${STEPS.verify-heartbeat.status}"'),
            "steps[0].body",
            "not a step before",
        ),
        (("type: wait", "type: sleep"), "steps[1].type", "sleep"),
        (("timeout: 60s", "timeout: 60 years"), "steps[2].timeout", ""),
    ],
)
def test_semantic_errors_point_at_the_line(admin, change, path, needle):
    response = post_yaml(admin, "/v2/playbooks/validate", PRD_EXAMPLE.replace(*change))
    assert response.status_code == 422, response.content
    fields = response.json()["error"]["fields"]
    assert path in fields, fields
    assert fields[path][0]["line"] is not None
    assert needle in fields[path][0]["message"]


def test_unknown_script_and_bad_arguments_are_refused(admin):
    script_create(
        name="clear-cache",
        actor="tests",
        body="#!/bin/sh\necho cleared\n",
        args_schema={
            "type": "object",
            "properties": {"size": {"type": "integer"}},
            "required": ["size"],
            "additionalProperties": False,
        },
        run_local=True,
    )
    document = PRD_EXAMPLE.replace(
        "  - name: wait-for-recovery\n",
        "  - name: clear\n    type: script\n    script: clear-cach\n"
        "  - name: clear2\n    type: script\n    script: clear-cache\n"
        "    args: {size: big}\n"
        "  - name: wait-for-recovery\n",
    )
    response = post_yaml(admin, "/v2/playbooks/validate", document)
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert "No registered script named 'clear-cach'" in fields["steps[1].script"][0]["message"]
    assert fields["steps[2].args.size"][0]["line"] == 20


def test_yaml_syntax_error_carries_its_line(admin):
    response = post_yaml(admin, "/v2/playbooks", "name: x\nsteps: [\n  - a\n")
    assert response.status_code == 422
    assert response.json()["error"]["fields"]["$"][0]["line"] >= 2


def test_put_saves_a_new_version_with_author_reason_and_diff(admin):
    post_yaml(admin, "/v2/playbooks", PRD_EXAMPLE)
    changed = PRD_EXAMPLE.replace("duration: 30s", "duration: 45s")
    response = post_yaml(
        admin, "/v2/playbooks/restart-worker?reason=slower%20restarts", changed, method="put"
    )
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    versions = admin.get("/v2/playbooks/restart-worker/versions").json()["results"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["reason"] == "slower restarts"
    assert versions[0]["author"].startswith("key:admin persona")
    assert "-    duration: 30s\n+    duration: 45s" in versions[0]["diff"]
    diff = admin.get("/v2/playbooks/restart-worker/diff").json()
    assert diff["from"] == 1 and diff["to"] == 2 and "+    duration: 45s" in diff["diff"]
    # unchanged: no new version
    again = post_yaml(admin, "/v2/playbooks/restart-worker", changed, method="put")
    assert again.json()["version"] == 2 and again.json()["changed"] is False


def test_post_of_an_existing_name_conflicts_and_put_must_match_name(admin):
    post_yaml(admin, "/v2/playbooks", PRD_EXAMPLE)
    assert post_yaml(admin, "/v2/playbooks", PRD_EXAMPLE).status_code == 409
    response = post_yaml(admin, "/v2/playbooks/other", PRD_EXAMPLE, method="put")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "playbook_name_mismatch"


def test_scopes_and_media_types(admin, writer, reader, outsider):
    assert post_yaml(writer, "/v2/playbooks", PRD_EXAMPLE).status_code == 403
    assert post_yaml(outsider, "/v2/playbooks", PRD_EXAMPLE).status_code == 401
    response = admin.post("/v2/playbooks", PRD_EXAMPLE, content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    post_yaml(admin, "/v2/playbooks", PRD_EXAMPLE)
    listed = reader.get("/v2/playbooks").json()
    assert listed["count"] == 1 and listed["results"][0]["name"] == "restart-worker"
    detail = reader.get("/v2/playbooks/restart-worker").json()
    assert detail["current"]["source"] == PRD_EXAMPLE
    assert reader.get("/v2/playbooks/nope").status_code == 404


def test_schema_is_published(reader):
    response = reader.get("/v2/playbooks/schema")
    assert response.status_code == 200
    schema = response.json()
    assert schema["title"] == "Medic playbook"
    assert set(schema["required"]) == {"name", "trigger", "steps"}
