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


@pytest.mark.parametrize(
    "field, value",
    [
        ("alert_interval", 1e12),
        ("threshold", 2**40),
        ("grace_period_seconds", 2**40),
        ("max_duration_seconds", 2**63),
        ("failure_threshold", 2**31),
        ("slow_run_factor", 1e300),
    ],
)
def test_numbers_beyond_their_documented_maximum_are_422_on_create_and_patch(admin, field, value):
    body = {"heartbeat_name": "big", "alert_interval": 5, field: value}
    response = admin.post("/v2/services", body)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]
    service_create(heartbeat_name="small", alert_interval=5)
    response = admin.patch("/v2/services/small", {field: value})
    assert response.status_code == 422 and field in response.json()["error"]["fields"]


def test_the_service_layer_enforces_the_maxima_too(db):
    from heartbeats.services import service_update
    from medic.errors import InvalidInput

    service = service_create(heartbeat_name="small", alert_interval=5)
    for field, value in (("alert_interval", 1e12), ("alert_interval", float("nan"))):
        with pytest.raises(InvalidInput) as refused:
            service_update(service_ref=service.pk, **{field: value})
        assert field in refused.value.fields


def test_a_stored_out_of_range_number_cannot_fail_later_requests(admin):
    # A value stored before the bound existed (or edited in the database) is clamped where it
    # is used: heartbeats, job signals and re-notifications keep working.
    from heartbeats.models import Service

    service_create(heartbeat_name="old", alert_interval=5, max_duration_seconds=60)
    Service.objects.filter(heartbeat_name="old").update(
        alert_interval=1e12, grace_period_seconds=2**31 - 1, max_duration_seconds=2**31 - 1
    )
    assert admin.post("/v2/heartbeat/old", {"status": "DOWN"}).status_code == 201
    assert admin.post("/v2/heartbeat/old").status_code == 201
    assert admin.post("/v2/heartbeat/old/start", {"run_id": "a"}).status_code == 201
    assert admin.get("/v2/services/old").status_code == 200


@pytest.mark.parametrize("duration", [1e308, "9999999999999d", float("inf"), 2**64, "0s", -5])
def test_mute_durations_are_bounded(admin, duration):
    service_create(heartbeat_name="job", alert_interval=5)
    body = b'{"duration": 1e999}' if duration == float("inf") else {"duration": duration}
    response = admin.post("/v2/services/job/mute", body)
    assert response.status_code in (400, 422), response.content
    assert "error" in response.json()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"run_id": "r", "duration_ms": 2**64}, "duration_ms"),
        ({"run_id": "r", "exit_code": 2**40}, "exit_code"),
    ],
)
def test_job_signal_numbers_are_bounded(admin, body, field):
    service_create(heartbeat_name="job", alert_interval=5)
    response = admin.post("/v2/heartbeat/job/complete", body)
    assert response.status_code == 422 and field in response.json()["error"]["fields"]


def test_the_job_service_enforces_its_maxima(db):
    from heartbeats import jobs
    from medic.errors import InvalidInput

    service_create(heartbeat_name="job", alert_interval=5)
    with pytest.raises(InvalidInput):
        jobs.job_end(service_ref="job", succeeded=True, duration_ms=2**64)


@pytest.mark.parametrize(
    "body", [{"expires_in_days": 1e308}, {"rate_limits": {"heartbeat": 2**64}}]
)
def test_api_key_numbers_are_bounded(admin, body):
    response = admin.post("/v2/api-keys", {"name": "x", "scopes": ["read"], **body})
    assert response.status_code == 422, response.content


@pytest.mark.parametrize(
    "header", ["Bearer mdk_" + "x" * 48, "Bearer garbage", "Basic Zm9vOmJhcg==", "Bearer revoked"]
)
@pytest.mark.parametrize("path", ["/v2/docs/", "/v2/schema/"])
def test_api_docs_with_a_bad_key_answer_401_not_500(db, path, header):
    from medic.apikeys import api_key_create, api_key_revoke
    from tests.conftest import ApiClient

    if header == "Bearer revoked":
        issued = api_key_create(name="gone", scopes=["read"])
        api_key_revoke(key_id=issued.key.pk)
        header = f"Bearer {issued.secret}"
    response = ApiClient(None).get(path, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401, response.content[:300]
    assert response.json()["error"]["code"].startswith(("not_authenticated", "api_key"))


@pytest.mark.parametrize("status", ["\ud800", "up\x00", "\udfff down"])
def test_v1_refuses_what_v2_refuses_in_a_status(writer, status):
    import json

    service_create(heartbeat_name="job", alert_interval=5)
    body = json.dumps({"heartbeat_name": "job", "status": status}).encode()  # \\ud800 escaped
    response = writer.post("/heartbeat", body)
    assert response.status_code == 400, response.content
    assert response.json()["success"] is False
    v2 = writer.post("/v2/heartbeat/job", json.dumps({"status": status}).encode())
    assert v2.status_code in (400, 422)


def test_an_agent_with_the_longest_allowed_name_is_created_and_audited(admin):
    from medic.models import AuditEvent

    name = "a" * 100
    response = admin.post("/v2/agents", {"name": name, "labels": []})
    assert response.status_code == 201, response.content
    assert AuditEvent.objects.filter(event="agent.created", object_id=name).exists()
