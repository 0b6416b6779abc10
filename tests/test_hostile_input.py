"""Hostile and careless input gets a clear 4xx in the error envelope, never a 500 or a silent
misreading: oversized bodies, non-ASCII digits as ids, out-of-range numbers, odd characters."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from heartbeats.services import service_create

pytestmark = pytest.mark.django_db

BIG = b'{"heartbeat_name": "' + b"a" * (50 * 1024 * 1024) + b'"}'


@pytest.mark.parametrize("path", ["/v2/services", "/v2/heartbeat/job", "/v2/teams"])
def test_a_50_mb_v2_body_gets_the_json_413_envelope(admin, path):
    service_create(heartbeat_name="job", alert_interval=60)
    response = admin.post(path, BIG)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


NOT_ASCII_DIGITS = ["%C2%B9", "%E2%91%A1", "%D9%A3", "%EF%BC%92", "99999999999999999999999"]


@pytest.mark.parametrize("ref", NOT_ASCII_DIGITS)
@pytest.mark.parametrize(
    "collection",
    [
        "services",
        "teams",
        "notification-targets",
        "routing-rules",
        "working-hours",
        "maintenance-windows",
    ],
)
def test_only_ascii_digits_are_ids(admin, ref, collection):
    for i in range(3):
        service_create(heartbeat_name=f"svc-{i}", alert_interval=60)
    response = admin.get(f"/v2/{collection}/{ref}")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] in ("not_found", "service_not_found")


def _spelled(pk: int, zero: int) -> str:
    """``pk`` in another script's digits (0x660: Arabic-Indic, 0xFF10: fullwidth), URL-quoted."""
    return quote("".join(chr(zero + int(d)) for d in str(pk)))


@pytest.mark.parametrize("zero", [0x660, 0xFF10, 0x6F0])
def test_an_id_in_other_digits_names_no_service(admin, zero):
    service = service_create(heartbeat_name="svc", alert_interval=60)
    ref = _spelled(service.pk, zero)
    assert admin.post(f"/v2/heartbeat/{ref}").status_code == 404
    assert admin.post(f"/v2/heartbeat/{ref}/start").status_code == 404
    assert admin.get(f"/v2/services/{ref}").status_code == 404
    assert admin.get(f"/v2/alerts?service={ref}").status_code == 404
    assert not service.heartbeats.exists()


@pytest.mark.parametrize("ref", NOT_ASCII_DIGITS)
@pytest.mark.parametrize("path", ["/v2/alerts", "/v2/heartbeats", "/v2/maintenance-windows"])
def test_service_filters_take_ascii_ids_only(admin, ref, path):
    for i in range(4):
        service_create(heartbeat_name=f"svc-{i}", alert_interval=60)
    response = admin.get(f"{path}?service={ref}")
    assert response.status_code in (400, 404), response.content
    assert "error" in response.json()
