"""v1 ``GET /heartbeat``: newest first, filters, maxCount rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from heartbeats.models import Heartbeat, HeartbeatSource
from tests.factories import HeartbeatFactory, ServiceFactory
from tests.v1.conftest import envelope, iso

pytestmark = pytest.mark.django_db


def _row(heartbeat: Heartbeat) -> dict:
    service = heartbeat.service
    return {
        "heartbeat_id": heartbeat.pk,
        "heartbeat_name": service.heartbeat_name,
        "service_name": service.service_name,
        "time": iso(heartbeat.time),
        "status": heartbeat.status,
        "team": service.team,
        "priority": service.priority,
    }


def _many(service, n: int) -> None:
    start = timezone.now() - timedelta(hours=1)
    Heartbeat.objects.bulk_create(
        Heartbeat(service=service, time=start + timedelta(seconds=i), status="UP", source="v1")
        for i in range(n)
    )


def test_rows_newest_first_with_v1_keys(reader):
    now = timezone.now()
    api = ServiceFactory(heartbeat_name="api", service_name="API", team="payments", priority="p2")
    old = HeartbeatFactory(service=api, time=now - timedelta(minutes=2), status="UP")
    new = HeartbeatFactory(service=api, time=now - timedelta(minutes=1), status="DEGRADED")
    response = reader.get("/heartbeat")
    assert response.status_code == 200
    assert response.json() == envelope(True, "", [_row(new), _row(old)])
    assert response.json()["results"][0]["time"].endswith("Z")


def test_empty_is_an_empty_list(reader):
    assert reader.get("/heartbeat").json() == envelope(True, "", [])


def test_filter_by_heartbeat_name_ignores_case(reader):
    now = timezone.now()
    api = ServiceFactory(heartbeat_name="Api-Worker")
    other = ServiceFactory(heartbeat_name="other")
    mine = HeartbeatFactory(service=api, time=now)
    HeartbeatFactory(service=other, time=now)
    response = reader.get("/heartbeat", {"heartbeat_name": "api-WORKER"})
    assert response.json() == envelope(True, "", [_row(mine)])
    assert reader.get("/heartbeat", {"heartbeat_name": "ghost"}).json() == envelope(True, "", [])


def test_filter_by_service_name_and_both(reader):
    now = timezone.now()
    a = ServiceFactory(heartbeat_name="a", service_name="billing")
    b = ServiceFactory(heartbeat_name="b", service_name="billing")
    c = ServiceFactory(heartbeat_name="c", service_name="search")
    ha = HeartbeatFactory(service=a, time=now - timedelta(seconds=3))
    hb = HeartbeatFactory(service=b, time=now - timedelta(seconds=2))
    HeartbeatFactory(service=c, time=now - timedelta(seconds=1))
    by_service = reader.get("/heartbeat", {"service_name": "billing"}).json()
    assert by_service == envelope(True, "", [_row(hb), _row(ha)])
    both = reader.get("/heartbeat", {"service_name": "billing", "heartbeat_name": "A"}).json()
    assert both == envelope(True, "", [_row(ha)])


@pytest.mark.parametrize(
    ("max_count", "expected"),
    [
        (None, 250),
        ("1000", 250),
        ("250", 250),
        ("3", 3),
        ("0", 0),
        ("lots", 250),
        ("2.5", 250),
        ("-4", 250),
        ("", 250),
    ],
)
def test_max_count_default_cap_and_non_numeric(reader, max_count, expected):
    _many(ServiceFactory(), 260)
    params = {} if max_count is None else {"maxCount": max_count}
    response = reader.get("/heartbeat", params)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == expected
    if expected:
        newest = Heartbeat.objects.order_by("-time").first()
        assert results[0]["heartbeat_id"] == newest.pk


def test_imported_and_v2_heartbeats_are_listed_too(reader):
    service = ServiceFactory()
    hb = Heartbeat.objects.create(service=service, status="UP", source=HeartbeatSource.IMPORT)
    assert reader.get("/heartbeat").json() == envelope(True, "", [_row(hb)])


def test_without_a_key_is_401(outsider):
    response = outsider.get("/heartbeat")
    assert response.status_code == 401
    assert response.json() == envelope(
        False, "An API key is required: send 'Authorization: Bearer mdk_...'."
    )


def test_write_scope_cannot_read_403(writer):
    response = writer.get("/heartbeat")
    assert response.status_code == 403
    assert response.json() == envelope(
        False, "This API key has scopes [write]; this action needs 'read'."
    )
