"""SRE-8: rate limits per key and class, headers, 429 envelopes, unauthenticated traffic."""

from __future__ import annotations

import pytest

from heartbeats.services import service_create
from medic import ratelimit
from medic.apikeys import api_key_create
from medic.errors import Throttled
from medic.metrics import RATE_LIMITED
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.MEDIC_RATE_LIMIT_HEARTBEAT = 5
    settings.MEDIC_RATE_LIMIT_MANAGEMENT = 3
    settings.MEDIC_RATE_LIMIT_UNAUTHENTICATED = 4
    service_create(heartbeat_name="job", alert_interval=5)
    return settings


def _refused(kind: str) -> float:
    return RATE_LIMITED.labels(**{"class": kind})._value.get()


def test_v2_heartbeats_carry_headers_and_refuse_with_429(limits, writer):
    before = _refused("heartbeat")
    for i in range(5):
        response = writer.post("/v2/heartbeat/job")
        assert response.status_code == 201
        assert response["X-RateLimit-Limit"] == "5"
        assert response["X-RateLimit-Remaining"] == str(4 - i)
        assert int(response["X-RateLimit-Reset"]) > 0
    refused = writer.post("/v2/heartbeat/job")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-RateLimit-Remaining"] == "0"
    assert _refused("heartbeat") == before + 1
    # the management budget is separate
    assert writer.post("/v2/services/job/mute").status_code == 200


def test_management_limit_is_separate_and_lower(limits, admin):
    for _ in range(3):
        assert admin.get("/v2/services").status_code == 200
    assert admin.get("/v2/services").status_code == 429
    assert admin.post("/v2/heartbeat/job").status_code == 201


def test_v1_paths_use_the_v1_envelope(limits, writer):
    body = {"heartbeat_name": "job", "status": "UP"}
    for _ in range(5):
        assert writer.post("/heartbeat", body).status_code == 201
    refused = writer.post("/heartbeat", body)
    assert refused.status_code == 429
    payload = refused.json()
    assert payload["success"] is False and payload["results"] == ""
    assert "Rate limit" in payload["message"]
    assert refused["Retry-After"] and refused["X-RateLimit-Limit"] == "5"


def test_per_key_override(limits):
    fleet = api_key_create(name="fleet", scopes=["write"], rate_limits={"heartbeat": 8}).secret
    client = ApiClient(fleet)
    statuses = [client.post("/v2/heartbeat/job").status_code for _ in range(9)]
    assert statuses == [201] * 8 + [429]
    unlimited = api_key_create(name="bulk", scopes=["write"], rate_limits={"heartbeat": 0}).secret
    assert all(ApiClient(unlimited).post("/v2/heartbeat/job").status_code == 201 for _ in range(7))


def test_per_key_override_via_api_is_validated(admin, limits):
    response = admin.post(
        "/v2/api-keys", {"name": "x", "scopes": ["write"], "rate_limits": {"heartbeats": 5}}
    )
    assert response.status_code == 422
    assert "rate_limits" in response.json()["error"]["fields"]


def test_unauthenticated_traffic_is_limited_per_address_before_key_work(limits, writer_key):
    anonymous = ApiClient(None)
    before = _refused("unauthenticated")
    statuses = [anonymous.get("/v2/services").status_code for _ in range(4)]
    assert statuses == [401] * 4
    assert anonymous.get("/v2/services").status_code == 429
    bad_key = anonymous.get("/v2/services", HTTP_AUTHORIZATION="Bearer mdk_" + "x" * 48)
    assert bad_key.status_code == 429
    assert bad_key.json()["error"]["code"] == "rate_limited"
    assert _refused("unauthenticated") == before + 2
    # another address is not affected
    assert anonymous.get("/v2/services", REMOTE_ADDR="10.0.0.9").status_code == 401


def test_anonymous_v1_heartbeats_are_limited_per_address(limits):
    limits.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = True
    limits.MEDIC_RATE_LIMIT_ANONYMOUS = 2
    client = ApiClient(None)
    body = {"heartbeat_name": "job", "status": "UP"}
    assert [client.post("/heartbeat", body).status_code for _ in range(3)] == [201, 201, 429]


def test_the_window_slides_instead_of_resetting_on_the_minute(limits, admin, clock):
    # Three requests spread over a minute: the fourth waits for the first to be 60 s old, not for
    # the wall clock's next minute (a fixed window let 2x the limit through across a boundary).
    for step in (0, 20, 20):
        clock.advance(step)
        assert admin.get("/v2/services").status_code == 200
    clock.advance(10)  # 50 s after the first request
    refused = admin.get("/v2/services")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "10"
    assert refused["X-RateLimit-Remaining"] == "0"
    assert int(refused["X-RateLimit-Reset"]) == int(clock() + 10)
    clock.advance(9)
    assert admin.get("/v2/services").status_code == 429
    clock.advance(1)  # the first request leaves the window: one slot, not three
    answer = admin.get("/v2/services")
    assert answer.status_code == 200 and answer["X-RateLimit-Remaining"] == "0"
    assert admin.get("/v2/services").status_code == 429
    clock.advance(20)
    assert admin.get("/v2/services")["X-RateLimit-Remaining"] == "0"


def test_refused_requests_do_not_extend_the_wait(limits, admin, clock):
    for _ in range(3):
        admin.get("/v2/services")
    for _ in range(10):
        clock.advance(5)
        assert admin.get("/v2/services").status_code == 429
    clock.advance(10)
    assert admin.get("/v2/services").status_code == 200


def test_stores_agree(limiter_store, clock):
    decisions = [ratelimit.hit("management", "k", 2)]
    clock.advance(0.5)
    decisions.append(ratelimit.hit("management", "k", 2))
    assert [d.remaining for d in decisions] == [1, 0]
    assert {d.reset for d in decisions} == {int(clock() - 0.5 + 60)}
    with pytest.raises(Throttled) as refused:
        ratelimit.hit("management", "k", 2)
    assert refused.value.headers["Retry-After"] == "60"  # ceil(59.5)
    clock.advance(59.5)
    assert ratelimit.hit("management", "k", 2).remaining == 0
    assert ratelimit.hit("management", "other", 2).remaining == 1  # subjects are separate
