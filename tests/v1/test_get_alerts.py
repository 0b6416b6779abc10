"""v1 ``GET /alerts``: newest first, the newest 100 by default, filter by active."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerting.models import Alert, AlertReason, AlertState
from tests.factories import AlertFactory, ServiceFactory
from tests.v1.conftest import envelope, iso

pytestmark = pytest.mark.django_db


def _row(alert: Alert) -> dict:
    return {
        "alert_id": alert.pk,
        "alert_name": alert.service.heartbeat_name,
        "service_id": alert.service_id,
        "active": 1 if alert.state == "open" else 0,
        "external_reference_id": alert.external_reference_id,
        "alert_cycle": alert.notify_count,
        "created_date": iso(alert.opened_at),
        "closed_date": iso(alert.resolved_at),
    }


@pytest.fixture
def two_alerts():
    now = timezone.now()
    api = ServiceFactory(heartbeat_name="api")
    closed = AlertFactory(service=api, opened_at=now - timedelta(hours=2), open_=False, cycle=3)
    opened = AlertFactory(service=api, opened_at=now - timedelta(minutes=5), open_=True, cycle=1)
    return opened, closed


def test_rows_newest_first_with_v1_keys(reader, two_alerts):
    opened, closed = two_alerts
    response = reader.get("/alerts")
    assert response.status_code == 200
    assert response.json() == envelope(True, "", [_row(opened), _row(closed)])
    first, second = response.json()["results"]
    assert first["active"] == 1 and first["closed_date"] is None
    assert first["alert_name"] == "api" and first["external_reference_id"] == "medic-api"
    assert second["active"] == 0 and second["closed_date"] is not None
    assert second["alert_cycle"] == 3


def test_empty_is_an_empty_list(reader):
    assert reader.get("/alerts").json() == envelope(True, "", [])


@pytest.mark.parametrize("active", ["1", "0"])
def test_filter_by_active(reader, two_alerts, active):
    opened, closed = two_alerts
    expected = opened if active == "1" else closed
    response = reader.get("/alerts", {"active": active})
    assert response.json() == envelope(True, "", [_row(expected)])


def test_an_integer_other_than_0_or_1_matches_nothing(reader, two_alerts):
    assert reader.get("/alerts", {"active": "5"}).json() == envelope(True, "", [])


@pytest.mark.parametrize("active", ["yes", "", "0.5"])
def test_non_integer_active_is_400(reader, active):
    response = reader.get("/alerts", {"active": active})
    assert response.status_code == 400
    assert response.json() == envelope(False, "Invalid 'active' parameter")


def test_default_is_the_newest_100_and_a_filter_is_not_truncated(reader):
    service = ServiceFactory()
    start = timezone.now() - timedelta(days=1)
    Alert.objects.bulk_create(
        Alert(
            service=service,
            dedup_key="medic-billing-worker",
            state=AlertState.RESOLVED,
            reason=AlertReason.MISSED_HEARTBEAT,
            priority="p3",
            summary="x",
            opened_at=start + timedelta(minutes=i),
            resolved_at=start + timedelta(minutes=i, seconds=30),
        )
        for i in range(120)
    )
    results = reader.get("/alerts").json()["results"]
    assert len(results) == 100
    newest = Alert.objects.order_by("-opened_at").first()
    assert results[0]["alert_id"] == newest.pk
    times = [r["created_date"] for r in results]
    assert times == sorted(times, reverse=True)
    assert len(reader.get("/alerts", {"active": "0"}).json()["results"]) == 120


def test_without_a_key_is_401(outsider):
    response = outsider.get("/alerts")
    assert response.status_code == 401
    assert response.json() == envelope(
        False, "An API key is required: send 'Authorization: Bearer mdk_...'."
    )


def test_write_scope_cannot_read_403(writer):
    response = writer.get("/alerts")
    assert response.status_code == 403
    assert response.json() == envelope(
        False, "This API key has scopes [write]; this action needs 'read'."
    )


def test_an_alert_without_an_incident_has_a_null_reference_like_v1(reader):
    # v1 stored NULL when it opened no PagerDuty incident (muted, or PagerDuty failed).
    alert = AlertFactory(service=ServiceFactory(heartbeat_name="quiet"), external_reference_id="")
    (row,) = reader.get("/alerts").json()["results"]
    assert row["alert_id"] == alert.pk and row["external_reference_id"] is None
