"""v1 ``GET /service``: every service as a v1 row, filters by service_name and active."""

from __future__ import annotations

import re

import pytest

from heartbeats.models import Service
from heartbeats.services import service_mute
from tests.factories import ServiceFactory
from tests.v1.conftest import envelope, service_row

pytestmark = pytest.mark.django_db


def test_rows_have_v1_keys_and_integer_flags(reader):
    api = ServiceFactory(
        heartbeat_name="api", service_name="API", team="payments", priority="p2", runbook="r"
    )
    search = ServiceFactory(heartbeat_name="search", alert_interval=2.5, active=False)
    service_mute(service_ref=api.pk)
    Service.objects.filter(pk=search.pk).update(status="down")
    response = reader.get("/service")
    assert response.status_code == 200
    body = response.json()
    assert body == envelope(True, "", [service_row(api), service_row(search)])
    first, second = body["results"]
    assert list(first) == [
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
        # v1 HEAD's columns (migrations 001+), in v1's order.
        "date_muted",
        "team_id",
        "schedule_id",
        "max_duration_ms",
        "grace_period_seconds",
    ]
    assert first["date_muted"] is not None and second["date_muted"] is None
    assert (first["team_id"], first["max_duration_ms"], first["grace_period_seconds"]) == (
        None,
        None,
        0,
    )
    assert (first["active"], first["muted"], first["down"], first["alert_interval"]) == (1, 1, 0, 5)
    assert isinstance(first["alert_interval"], int) and first["runbook"] == "r"
    assert (second["active"], second["muted"], second["down"]) == (0, 0, 1)
    assert second["alert_interval"] == 2.5 and second["runbook"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["date_added"])


def test_empty_is_an_empty_list(reader):
    assert reader.get("/service").json() == envelope(True, "", [])


def test_filter_by_service_name(reader):
    a = ServiceFactory(heartbeat_name="a", service_name="billing")
    ServiceFactory(heartbeat_name="b", service_name="search")
    response = reader.get("/service", {"service_name": "billing"})
    assert response.json() == envelope(True, "", [service_row(a)])


@pytest.mark.parametrize(("active", "names"), [("1", ["on"]), ("0", ["off"]), ("7", [])])
def test_filter_by_active(reader, active, names):
    ServiceFactory(heartbeat_name="on")
    ServiceFactory(heartbeat_name="off", active=False)
    results = reader.get("/service", {"active": active}).json()["results"]
    assert [r["heartbeat_name"] for r in results] == names


@pytest.mark.parametrize("active", ["yes", "", "1.0", "true"])
def test_non_integer_active_is_400(reader, active):
    response = reader.get("/service", {"active": active})
    assert response.status_code == 400
    assert response.json() == envelope(False, "Invalid 'active' parameter")


def test_without_a_key_is_401(outsider):
    response = outsider.get("/service")
    assert response.status_code == 401
    assert response.json() == envelope(
        False, "An API key is required: send 'Authorization: Bearer mdk_...'."
    )


def test_write_scope_cannot_read_403(writer):
    response = writer.get("/service")
    assert response.status_code == 403
    assert response.json() == envelope(
        False, "This API key has scopes [write]; this action needs 'read'."
    )
