"""v1 ``POST /service``: registration, defaults, environment prefix, already-registered."""

from __future__ import annotations

import pytest

from heartbeats.models import Service
from tests.factories import ServiceFactory
from tests.v1.conftest import envelope

pytestmark = pytest.mark.django_db

BODY = {"heartbeat_name": "billing-worker", "service_name": "billing", "alert_interval": 5}
INVALID = (
    "You have provided invalid request data. Please ensure your request contains the following "
    "required JSON fields - `heartbeat_name`, `service_name`, `alert_interval` & `environment`"
)


def test_register_with_v1_defaults(writer):
    response = writer.post("/service", BODY)
    assert response.status_code == 201
    assert response.content == (
        b'{"success": true, "message": "Heartbeat successfully registered.", "results": ""}'
    )
    service = Service.objects.get()
    assert service.heartbeat_name == "billing-worker" and service.service_name == "billing"
    assert service.alert_interval == 5 and service.threshold == 1
    assert service.team == "site-reliability" and service.priority == "p3"
    assert service.runbook == "" and service.active and not service.muted
    assert service.status == "new" and service.next_deadline_at is not None


def test_register_with_every_field(writer):
    body = {
        **BODY,
        "threshold": 3,
        "team": "payments",
        "priority": "P2",
        "runbook": "https://wiki/billing",
    }
    assert writer.post("/service", body).status_code == 201
    service = Service.objects.get()
    assert (service.threshold, service.team, service.priority, service.runbook) == (
        3,
        "payments",
        "p2",
        "https://wiki/billing",
    )


def test_environment_prefixes_the_stored_name(writer):
    response = writer.post("/service", {**BODY, "environment": "staging"})
    assert response.status_code == 201
    assert Service.objects.get().heartbeat_name == "staging-billing-worker"
    # an empty environment adds nothing
    writer.post("/service", {**BODY, "heartbeat_name": "search", "environment": ""})
    assert Service.objects.filter(heartbeat_name="search").exists()


def test_an_existing_name_is_200_already_registered(writer):
    ServiceFactory(heartbeat_name="Billing-Worker", alert_interval=10)
    response = writer.post("/service", BODY)
    assert response.status_code == 200
    assert response.json() == envelope(True, "Heartbeat is already registered.")
    service = Service.objects.get()
    assert service.heartbeat_name == "Billing-Worker" and service.alert_interval == 10


def test_environment_prefixed_name_that_exists_is_already_registered(writer):
    ServiceFactory(heartbeat_name="prod-billing-worker")
    response = writer.post("/service", {**BODY, "environment": "prod"})
    assert response.json() == envelope(True, "Heartbeat is already registered.")
    assert Service.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"service_name": "billing", "alert_interval": 5},
        {"heartbeat_name": "billing-worker", "alert_interval": 5},
        {"heartbeat_name": "billing-worker", "service_name": "billing"},
        {**BODY, "alert_interval": "5"},
        {**BODY, "alert_interval": 5.5},
        {**BODY, "alert_interval": True},
        {**BODY, "alert_interval": None},
        {**BODY, "threshold": "1"},
        {**BODY, "environment": 3},
        {**BODY, "team": None},
        {**BODY, "heartbeat_name": 12},
    ],
)
def test_missing_or_wrong_typed_field_is_400(writer, body):
    response = writer.post("/service", body)
    assert response.status_code == 400
    assert response.json() == envelope(False, INVALID)
    assert Service.objects.count() == 0


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"alert_interval": 0}, "alert_interval"),
        ({"alert_interval": 10**40}, "alert_interval"),
        ({"threshold": 0}, "threshold"),
        ({"heartbeat_name": "12345"}, "heartbeat_name"),
        ({"heartbeat_name": "x" * 300}, "heartbeat_name"),
    ],
)
def test_values_v2_cannot_store_are_400_naming_the_field(writer, override, field):
    response = writer.post("/service", {**BODY, **override})
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["results"] == ""
    assert body["message"].startswith(f"You have provided invalid request data: {field}: ")
    assert Service.objects.count() == 0


def test_malformed_json_is_400(writer):
    response = writer.post("/service", "{", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == envelope(False, "The request body is not valid JSON.")


def test_non_object_json_is_400(writer):
    response = writer.post("/service", "[]", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == envelope(False, INVALID)


def test_without_a_key_is_401(outsider, settings):
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = True  # opens heartbeats only
    response = outsider.post("/service", BODY)
    assert response.status_code == 401
    assert response.json() == envelope(
        False, "An API key is required: send 'Authorization: Bearer mdk_...'."
    )
    assert Service.objects.count() == 0


def test_read_scope_is_403(reader):
    response = reader.post("/service", BODY)
    assert response.status_code == 403
    assert response.json() == envelope(
        False, "This API key has scopes [read]; this action needs 'write'."
    )
