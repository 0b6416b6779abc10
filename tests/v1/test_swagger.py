"""v1 ``GET /docs/swagger.json``: a Swagger 2.0 description of the v1 endpoints."""

from __future__ import annotations

import pytest

from tests.v1.conftest import envelope

pytestmark = pytest.mark.django_db


def test_describes_every_v1_endpoint(reader):
    response = reader.get("/docs/swagger.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    spec = response.json()
    assert spec["swagger"] == "2.0"
    assert {
        path: sorted(k for k in ops if k != "parameters") for path, ops in spec["paths"].items()
    } == {
        "/heartbeat": ["get", "post"],
        "/service": ["get", "post"],
        "/service/{heartbeat_name}": ["get", "post"],
        "/alerts": ["get"],
        "/docs/swagger.json": ["get"],
    }
    assert set(spec["securityDefinitions"]) == {"bearer", "apiKey"}
    # every $ref resolves
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec["paths"])
    assert refs and refs <= set(spec["definitions"])
    service_keys = set(spec["definitions"]["Service"]["properties"])
    assert service_keys == {
        "service_id",
        "heartbeat_name",
        "service_name",
        "active",
        "alert_interval",
        "threshold",
        "team",
        "priority",
        "muted",
        "down",
        "runbook",
        "date_added",
        "date_modified",
        "date_muted",
        "team_id",
        "schedule_id",
        "max_duration_ms",
        "grace_period_seconds",
    }


def test_without_a_key_is_401(outsider):
    response = outsider.get("/docs/swagger.json")
    assert response.status_code == 401
    assert response.json() == envelope(
        False, "An API key is required: send 'Authorization: Bearer mdk_...'."
    )


def test_write_scope_cannot_read_403(writer):
    response = writer.get("/docs/swagger.json")
    assert response.status_code == 403
    assert response.json()["success"] is False
