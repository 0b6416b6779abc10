"""v2 services, heartbeats, mute/unmute: CRUD, lookup by id or name, validation, envelopes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from heartbeats.models import Heartbeat, Service

pytestmark = pytest.mark.django_db


def _create(client, **overrides):
    body = {"heartbeat_name": "billing-worker", "alert_interval": 5, **overrides}
    response = client.post("/v2/services", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_create_service_with_defaults(admin):
    service = _create(admin)
    assert service["status"] == "new"
    assert service["service_name"] == "billing-worker"
    assert service["threshold"] == 1 and service["priority"] == "p3"
    assert service["team"] == "site-reliability" and service["muted"] is False
    # never-reporting services are due one interval after registration
    assert service["next_deadline_at"] is not None


def test_duplicate_name_is_409_case_insensitive(admin):
    _create(admin)
    response = admin.post("/v2/services", {"heartbeat_name": "BILLING-worker", "alert_interval": 5})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "service_exists"
    assert Service.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"alert_interval": 5}, "heartbeat_name"),
        ({"heartbeat_name": "x"}, "alert_interval"),
        ({"heartbeat_name": "x", "alert_interval": 0}, "alert_interval"),
        ({"heartbeat_name": "x", "alert_interval": "soon"}, "alert_interval"),
        ({"heartbeat_name": "x", "alert_interval": 5, "priority": "p9"}, "priority"),
        ({"heartbeat_name": "x", "alert_interval": 5, "threshold": 0}, "threshold"),
        ({"heartbeat_name": "123", "alert_interval": 5}, "heartbeat_name"),
        (
            {"heartbeat_name": "x", "alert_interval": 5, "grace_period_seconds": -1},
            "grace_period_seconds",
        ),
    ],
)
def test_invalid_service_is_422_with_field(admin, body, field):
    response = admin.post("/v2/services", body)
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]
    assert Service.objects.count() == 0


def test_get_by_id_and_by_name(reader, admin):
    created = _create(admin)
    assert reader.get(f"/v2/services/{created['id']}").json()["heartbeat_name"] == "billing-worker"
    assert reader.get("/v2/services/Billing-Worker").json()["id"] == created["id"]
    missing = reader.get("/v2/services/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "service_not_found"


def test_patch_updates_and_recomputes_deadline(admin):
    created = _create(admin)
    response = admin.patch("/v2/services/billing-worker", {"alert_interval": 60, "priority": "p1"})
    assert response.status_code == 200
    body = response.json()
    assert body["priority"] == "p1" and body["alert_interval"] == 60
    assert body["next_deadline_at"] > created["next_deadline_at"]
    bad = admin.patch("/v2/services/billing-worker", {"priority": "urgent"})
    assert bad.status_code == 422
    assert Service.objects.get().priority == "p1"


def test_list_filters_and_pagination(reader, admin):
    for i in range(3):
        _create(admin, heartbeat_name=f"svc-{i}", team="payments" if i else "core")
    page = reader.get("/v2/services", {"team": "payments", "limit": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]
    assert reader.get("/v2/services", {"search": "svc-2"}).json()["count"] == 1
    assert reader.get("/v2/services", {"status": "bogus"}).status_code == 422


def test_delete(admin):
    _create(admin)
    assert admin.delete("/v2/services/billing-worker").status_code == 204
    assert admin.delete("/v2/services/billing-worker").status_code == 404


def test_heartbeat_by_name_and_id(writer, admin):
    created = _create(admin)
    first = writer.post("/v2/heartbeat/billing-worker")
    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "UP" and body["service_status"] == "up"
    second = writer.post(
        f"/v2/heartbeat/{created['id']}", {"status": "degraded", "message": "slow"}
    )
    assert second.status_code == 201
    row = Heartbeat.objects.get(pk=second.json()["id"])
    assert (row.status, row.message, row.source) == ("degraded", "slow", "v2")


def test_heartbeat_errors(writer, admin):
    _create(admin)
    assert writer.post("/v2/heartbeat/unknown").status_code == 404
    too_long = writer.post("/v2/heartbeat/billing-worker", {"status": "x" * 40})
    assert too_long.status_code == 422
    garbage = writer.post("/v2/heartbeat/billing-worker", "{", content_type="application/json")
    assert garbage.status_code == 400
    admin.patch("/v2/services/billing-worker", {"active": False})
    inactive = writer.post("/v2/heartbeat/billing-worker")
    assert inactive.status_code == 409
    assert inactive.json()["error"]["code"] == "service_inactive"
    assert Heartbeat.objects.count() == 0


def test_heartbeat_listing_with_time_filters(writer, reader, admin):
    _create(admin)
    for _ in range(3):
        writer.post("/v2/heartbeat/billing-worker")
    Heartbeat.objects.filter(pk=Heartbeat.objects.order_by("id").first().pk).update(
        time=timezone.now() - timedelta(hours=2)
    )
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    recent = reader.get("/v2/services/billing-worker/heartbeats", {"since": since}).json()
    assert len(recent["results"]) == 2
    everything = reader.get("/v2/heartbeats", {"service": "billing-worker", "limit": 2}).json()
    assert len(everything["results"]) == 2 and everything["next"]
    bad = reader.get("/v2/heartbeats", {"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.json()["error"]["fields"]


def test_mute_and_unmute(writer, admin):
    _create(admin)
    muted = writer.post("/v2/services/billing-worker/mute", {"reason": "deploy", "duration": "2h"})
    assert muted.status_code == 200
    body = muted.json()
    assert body["muted"] is True and body["mute_reason"] == "deploy"
    assert body["muted_by"] == f"key:writer persona#{writer_key_id()}"
    remaining = Service.objects.get().mute_until - timezone.now()
    assert timedelta(minutes=119) < remaining <= timedelta(hours=2)
    assert writer.post("/v2/services/billing-worker/unmute").json()["muted"] is False


def writer_key_id() -> int:
    from medic.models import ApiKey

    return ApiKey.objects.get(name="writer persona").pk


def test_mute_defaults_to_24_hours_and_validates_duration(writer, admin):
    _create(admin)
    assert writer.post("/v2/services/billing-worker/mute", {"duration": "soon"}).status_code == 422
    writer.post("/v2/services/billing-worker/mute", {})
    remaining = Service.objects.get().mute_until - timezone.now()
    assert timedelta(hours=23, minutes=59) < remaining <= timedelta(hours=24)
