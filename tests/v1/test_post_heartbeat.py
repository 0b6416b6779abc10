"""v1 ``POST /heartbeat``: what deployed clients send and get back, keys, anonymous roll-out."""

from __future__ import annotations

import logging

import pytest

from compat.v1 import anonymous_log_throttle
from heartbeats.models import Heartbeat, Service
from medic.metrics import V1_ANONYMOUS_HEARTBEATS
from tests.conftest import ApiClient
from tests.factories import ServiceFactory
from tests.v1.conftest import envelope

pytestmark = pytest.mark.django_db

V1_BODY = {"heartbeat_name": "billing-worker", "service_name": "billing", "status": "UP"}
INVALID = (
    "You have provided invalid request data. Please ensure your request contains data in both "
    "`heartbeat_name` and `status` JSON fields."
)
NO_KEY = "An API key is required: send 'Authorization: Bearer mdk_...'."


def _anonymous_count() -> float:
    return V1_ANONYMOUS_HEARTBEATS._value.get()


def _v1_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "medic.v1"]


def test_a_v1_client_gets_v1s_exact_bytes(writer):
    ServiceFactory()
    response = writer.post("/heartbeat", V1_BODY)
    assert response.status_code == 201
    assert response.content == (
        b'{"success": true, "message": "Heartbeat Posted Successfully.", "results": ""}'
    )
    heartbeat = Heartbeat.objects.get()
    assert (heartbeat.status, heartbeat.source) == ("UP", "v1")
    service = Service.objects.get()
    assert service.status == "up" and service.last_heartbeat_at == heartbeat.time


def test_every_status_text_counts_as_a_heartbeat(writer):
    ServiceFactory()
    response = writer.post("/heartbeat", {**V1_BODY, "status": "DOWN"})
    assert response.status_code == 201
    assert response.json() == envelope(True, "Heartbeat Posted Successfully.")
    service = Service.objects.get()
    # v1 stored the text but never acted on it: the service is alive, the text is shown.
    assert service.status == "up" and service.last_status == "DOWN"
    assert Heartbeat.objects.get().status == "DOWN"


def test_name_lookup_ignores_case(writer):
    ServiceFactory(heartbeat_name="Billing-Worker")
    response = writer.post("/heartbeat", {"heartbeat_name": "BILLING-worker", "status": "OK"})
    assert response.status_code == 201
    assert Heartbeat.objects.get().service.heartbeat_name == "Billing-Worker"


def test_x_api_key_header_is_accepted(writer_key):
    ServiceFactory()
    response = ApiClient(None).post("/heartbeat", V1_BODY, HTTP_X_API_KEY=writer_key)
    assert response.status_code == 201


def test_an_all_digit_name_is_a_name_not_an_id(writer):
    # v1 allowed such names (v2 registration does not); imported ones must still work.
    decoy = ServiceFactory(heartbeat_name="decoy")
    named = Service.objects.create(heartbeat_name=str(decoy.pk), alert_interval=5)
    response = writer.post("/heartbeat", {"heartbeat_name": str(decoy.pk), "status": "UP"})
    assert response.status_code == 201
    assert Heartbeat.objects.get().service_id == named.pk


@pytest.mark.parametrize(
    "body",
    [
        {"service_name": "billing", "status": "UP"},
        {"heartbeat_name": "billing-worker", "service_name": "billing"},
        {"heartbeat_name": "", "status": "UP"},
        {"heartbeat_name": "billing-worker", "status": ""},
        {"heartbeat_name": "billing-worker", "status": 1},
        {"heartbeat_name": ["billing-worker"], "status": "UP"},
        {"heartbeat_name": "billing-worker", "service_name": 3, "status": "UP"},
    ],
)
def test_invalid_body_is_400(writer, body):
    ServiceFactory()
    response = writer.post("/heartbeat", body)
    assert response.status_code == 400
    assert response.json() == envelope(False, INVALID)
    assert Heartbeat.objects.count() == 0


@pytest.mark.parametrize("raw", ["[1, 2]", '"UP"', "null"])
def test_a_json_body_that_is_not_an_object_is_400(writer, raw):
    response = writer.post("/heartbeat", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == envelope(False, INVALID)


@pytest.mark.parametrize("raw", ["{not json", "", '{"heartbeat_name": NaN}'])
def test_malformed_json_is_400_not_500(writer, raw):
    response = writer.post("/heartbeat", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == envelope(False, "The request body is not valid JSON.")


def test_the_body_is_read_whatever_the_content_type(writer):
    ServiceFactory()
    response = writer.post(
        "/heartbeat",
        '{"heartbeat_name": "billing-worker", "status": "UP"}',
        content_type="text/plain",
    )
    assert response.status_code == 201


def test_unregistered_name_is_404(writer):
    response = writer.post("/heartbeat", {**V1_BODY, "heartbeat_name": "ghost"})
    assert response.status_code == 404
    assert response.json() == envelope(False, "ghost is not listed as a registered service.")


def test_inactive_service_is_400(writer):
    ServiceFactory(active=False)
    response = writer.post("/heartbeat", V1_BODY)
    assert response.status_code == 400
    assert response.json() == envelope(
        False,
        "billing-worker was located, but is marked inactive. Does this need to be re-enabled?",
    )
    assert Heartbeat.objects.count() == 0


def test_without_a_key_is_401(outsider):
    ServiceFactory()
    before = _anonymous_count()
    response = outsider.post("/heartbeat", V1_BODY)
    assert response.status_code == 401
    assert response.json() == envelope(False, NO_KEY)
    assert response["WWW-Authenticate"] == 'Bearer realm="medic"'
    assert Heartbeat.objects.count() == 0 and _anonymous_count() == before


def test_read_scope_is_403(reader):
    ServiceFactory()
    response = reader.post("/heartbeat", V1_BODY)
    assert response.status_code == 403
    assert response.json() == envelope(
        False, "This API key has scopes [read]; this action needs 'write'."
    )


def test_anonymous_heartbeats_when_allowed_are_counted_and_logged_once_a_minute(settings, caplog):
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = True
    caplog.set_level(logging.WARNING, logger="medic.v1")
    ServiceFactory()
    now = [1000.0]
    anonymous_log_throttle.clock = lambda: now[0]
    try:
        client = ApiClient(None)
        before = _anonymous_count()
        for _ in range(3):
            response = client.post("/heartbeat", V1_BODY, REMOTE_ADDR="10.0.0.7")
            assert response.status_code == 201
            assert response.json() == envelope(True, "Heartbeat Posted Successfully.")
        assert _anonymous_count() == before + 3
        assert Heartbeat.objects.count() == 3
        lines = _v1_lines(caplog)
        assert len(lines) == 1
        assert "10.0.0.7" in lines[0] and "'billing-worker'" in lines[0]
        # another source is logged at once
        client.post("/heartbeat", V1_BODY, REMOTE_ADDR="10.0.0.8")
        assert len(_v1_lines(caplog)) == 2 and "10.0.0.8" in _v1_lines(caplog)[1]
        # a minute later the first source is logged again, with what was held back
        now[0] += 61
        client.post("/heartbeat", V1_BODY, REMOTE_ADDR="10.0.0.7")
        lines = _v1_lines(caplog)
        assert len(lines) == 3 and "10.0.0.7" in lines[2] and "2 more" in lines[2]
        assert _anonymous_count() == before + 5
    finally:
        anonymous_log_throttle.clock = __import__("time").monotonic


def test_anonymous_allowance_does_not_admit_a_bad_key(settings):
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = True
    ServiceFactory()
    before = _anonymous_count()
    response = ApiClient("mdk_wrongwrongwrongwrongwrongwrongwrongwrongwrongwr").post(
        "/heartbeat", V1_BODY
    )
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert Heartbeat.objects.count() == 0 and _anonymous_count() == before


def test_anonymous_allowance_is_read_at_request_time(settings):
    ServiceFactory()
    client = ApiClient(None)
    assert client.post("/heartbeat", V1_BODY).status_code == 401
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = True
    assert client.post("/heartbeat", V1_BODY).status_code == 201
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = False
    assert client.post("/heartbeat", V1_BODY).status_code == 401


def test_anonymous_heartbeat_to_unknown_name_is_404_and_not_counted(settings, caplog):
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = True
    caplog.set_level(logging.WARNING, logger="medic.v1")
    before = _anonymous_count()
    response = ApiClient(None).post("/heartbeat", {**V1_BODY, "heartbeat_name": "ghost"})
    assert response.status_code == 404
    assert _anonymous_count() == before and _v1_lines(caplog) == []


def test_the_log_throttle_stays_bounded():
    from compat.v1 import SourceLogThrottle

    throttle = SourceLogThrottle(interval=60, max_sources=3)
    assert [throttle.hit(f"10.0.0.{i}") for i in range(5)] == [0, 0, 0, 0, 0]
    assert len(throttle._seen) == 3
    assert throttle.hit("10.0.0.4") is None  # still remembered
    assert throttle.hit("10.0.0.0") == 0  # evicted, so logged again


def test_an_oversized_body_is_refused_in_the_envelope(writer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20
    response = writer.post("/heartbeat", {**V1_BODY, "status": "UP" * 50})
    assert response.status_code == 413
    assert response.json() == envelope(False, "The request body is too large.")
