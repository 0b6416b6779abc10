"""v1 ``GET /service/{heartbeat_name}``: one row in a list, any case; unknown is an empty list."""

from __future__ import annotations

import pytest

from heartbeats.models import Service
from tests.factories import ServiceFactory
from tests.v1.conftest import envelope, service_row

pytestmark = pytest.mark.django_db


def test_one_service_as_a_list_of_one_row(reader):
    service = ServiceFactory(heartbeat_name="billing-worker", service_name="billing")
    ServiceFactory(heartbeat_name="other")
    response = reader.get("/service/billing-worker")
    assert response.status_code == 200
    assert response.json() == envelope(True, "", [service_row(service)])


def test_name_lookup_ignores_case(reader):
    service = ServiceFactory(heartbeat_name="Billing-Worker")
    response = reader.get("/service/BILLING-worker")
    assert response.json() == envelope(True, "", [service_row(service)])


def test_unknown_name_is_200_with_empty_results(reader):
    response = reader.get("/service/ghost")
    assert response.status_code == 200
    assert response.json() == envelope(True, "", [])


def test_an_all_digit_path_is_a_name_not_an_id(reader):
    decoy = ServiceFactory(heartbeat_name="decoy")
    assert reader.get(f"/service/{decoy.pk}").json() == envelope(True, "", [])
    named = Service.objects.create(heartbeat_name=str(decoy.pk), alert_interval=5)
    assert reader.get(f"/service/{decoy.pk}").json() == envelope(True, "", [service_row(named)])


def test_a_trailing_slash_is_v1s_404(reader):
    ServiceFactory()
    response = reader.get("/service/billing-worker/")
    assert response.status_code == 404
    assert response.json() == envelope(False, "Not found.")


def test_without_a_key_is_401(outsider):
    ServiceFactory()
    response = outsider.get("/service/billing-worker")
    assert response.status_code == 401
    assert response.json() == envelope(
        False, "An API key is required: send 'Authorization: Bearer mdk_...'."
    )


def test_write_scope_cannot_read_403(writer):
    ServiceFactory()
    response = writer.get("/service/billing-worker")
    assert response.status_code == 403
    assert response.json() == envelope(
        False, "This API key has scopes [write]; this action needs 'read'."
    )
