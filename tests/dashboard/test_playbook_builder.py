"""The playbook editor's form view and the preview against a service: the form's document
round-trips through the API's parser and validation (fields the form does not show are kept,
problems carry their YAML line), and the preview resolves each step with the engine's own
variables (secrets masked) and tells which of the service's failures of the last 7 days the
trigger would have fired for. Viewers may preview; they may not use the editor."""

from __future__ import annotations

import html
import json

import pytest
import yaml

from heartbeats.jobs import job_end
from heartbeats.services import service_create
from medic.events.consumers import events_dispatch
from remediation.playbooks import services
from remediation.playbooks.compliance import MASK
from remediation.playbooks.examples import PRD_EXAMPLE
from remediation.secrets.services import secret_set
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9"


def _document(client, **fields):
    response = client.post("/ui/playbooks/document", fields)
    assert response.status_code == 200
    return response.json()


def test_yaml_to_form_and_back_keeps_every_field(operator):
    source = PRD_EXAMPLE.replace("approval: none\n", "approval: none\nfour_eyes: false\n")
    as_data = _document(operator, source=source)
    assert as_data["valid"] is True and as_data["problems"] == []
    document = as_data["document"]
    assert document["four_eyes"] is False  # a field the form does not show is carried along
    document["steps"].insert(1, {"name": "page-oncall", "type": "escalate", "message": "hi"})
    back = _document(operator, document=json.dumps(document))
    assert back["valid"] is True
    assert yaml.safe_load(back["source"]) == document
    assert "  - name: page-oncall\n    type: escalate\n" in back["source"]


def test_form_problems_point_at_the_line_of_the_yaml_shown(operator):
    document = yaml.safe_load(PRD_EXAMPLE)
    document["steps"][2]["on_failure"] = "goto: nowhere"
    back = _document(operator, document=json.dumps(document))
    assert back["valid"] is False
    line = back["source"].splitlines().index("    on_failure: 'goto: nowhere'") + 1
    problem = back["problems"][0]
    assert problem["path"] == "steps[2].on_failure" and problem["line"] == line


def test_unreadable_yaml_gives_no_form_document(operator):
    result = _document(operator, source="name: [unclosed\n")
    assert result["document"] is None and result["problems"][0]["line"] == 2
    response = operator.post("/ui/playbooks/document", {"document": "[1, 2]"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


def test_viewer_cannot_use_the_editor_endpoints(viewer):
    assert viewer.post("/ui/playbooks/document", {"source": PRD_EXAMPLE}).status_code == 403
    assert viewer.get("/ui/playbooks/new").status_code == 403


@pytest.fixture
def failing_batch(db):
    """worker-batch failed with exit code 137: a job.failed event and the alert it opened."""
    service = service_create(heartbeat_name="worker-batch", alert_interval=60, team="payments")
    job_end(service_ref=service.pk, succeeded=False, exit_code=137, output_tail="Killed process")
    events_dispatch()
    return service


def _signature(codes: str) -> str:
    return playbook_yaml("oom", URL, extra_trigger=f"  exit_codes: [{codes}]").replace(
        'service: "${SERVICE_NAME}"',
        'service: "${SERVICE_NAME}"\n      token: "${SECRET.api_token}"',
    )


def test_preview_resolves_steps_and_tells_which_failures_would_fire(viewer, failing_batch):
    secret_set(name="api_token", value="s3cr3t-value", actor="t")
    response = viewer.post(
        "/ui/playbooks/preview",
        {"source": _signature("137"), "service": "worker-batch"},
        HTTP_X_PREVIEW="fragment",
    )
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert '"service": "worker-batch"' in body and "s3cr3t-value" not in body
    assert f'"token": "{MASK}"' in body
    assert f"{URL}/restart" in body
    assert "Would have fired since" in body and ">fires<" in body
    assert "2 of 2 trigger events" in body  # job.failed and the alert.opened it caused

    other = viewer.post(
        "/ui/playbooks/preview", {"source": _signature("28"), "service": "worker-batch"}
    )
    assert other.status_code == 200 and ">fires<" not in other.content.decode()
    assert "failure signature" in other.content.decode()


def test_preview_of_an_invalid_draft_or_unknown_service_says_why(viewer, failing_batch):
    bad = viewer.post(
        "/ui/playbooks/preview",
        {"source": PRD_EXAMPLE.replace("30s", "soon"), "service": "worker-batch"},
    )
    assert bad.status_code == 422 and "steps[1].duration" in bad.content.decode()
    missing = viewer.post("/ui/playbooks/preview", {"source": PRD_EXAMPLE, "service": "nope"})
    assert missing.status_code == 422 and "No service" in missing.content.decode()


def test_preview_api_for_a_read_key(reader, failing_batch):
    secret_set(name="api_token", value="s3cr3t-value", actor="t")
    response = reader.post(
        "/v2/playbooks/preview?service=worker-batch",
        _signature("137"),
        content_type="application/yaml",
        HTTP_AUTHORIZATION=f"Bearer {reader.key}",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["service"] == "worker-batch"
    restart = body["steps"][0]
    assert restart["would"]["body"] == {
        "service": "worker-batch",
        "token": MASK,
        "alert": str(failing_batch.alerts.get().pk),
    }
    assert "s3cr3t-value" not in response.content.decode()
    assert [(t["kind"], t["exit_code"], t["fires"]) for t in body["triggers"]] == [
        ("alert.opened", 137, True),
        ("job.failed", 137, True),
    ]
    assert body["fired"] == 2
    unknown = reader.post(
        "/v2/playbooks/preview?service=nope",
        _signature("137"),
        content_type="application/yaml",
        HTTP_AUTHORIZATION=f"Bearer {reader.key}",
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "service_not_found"
    invalid = reader.post(
        "/v2/playbooks/preview?service=worker-batch",
        PRD_EXAMPLE.replace("30s", "soon"),
        content_type="application/yaml",
        HTTP_AUTHORIZATION=f"Bearer {reader.key}",
    )
    assert invalid.status_code == 422
    line = PRD_EXAMPLE.splitlines().index("    duration: 30s") + 1
    assert invalid.json()["error"]["fields"]["steps[1].duration"][0]["line"] == line


def test_a_viewer_previews_a_saved_playbook_by_get(viewer, failing_batch):
    secret_set(name="api_token", value="s3cr3t-value", actor="t")
    services.playbook_save(document=_signature("137"), actor="t")
    page = viewer.get("/ui/playbooks/oom/preview", {"service": "worker-batch"})
    assert page.status_code == 200
    body = html.unescape(page.content.decode())
    assert "Steps against worker-batch" in body and "2 of 2 trigger events" in body
    assert "<html" in body  # a page of its own without the script's header
    fragment = viewer.get(
        "/ui/playbooks/oom/preview", {"service": "worker-batch"}, HTTP_X_PREVIEW="fragment"
    )
    assert "<html" not in fragment.content.decode()
    ask = viewer.get("/ui/playbooks/oom/preview")
    assert ask.status_code == 200 and "Choose a service" in ask.content.decode()
    assert viewer.get("/ui/playbooks/nope/preview", {"service": "x"}).status_code == 404
