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


def test_after_a_burst_requests_are_paced_instead_of_reset_on_the_minute(limits, admin, clock):
    # GCRA, 3 per minute: an emission interval of 20 s. A burst of three, then one request per
    # 20 s; nothing resets on a minute boundary (a fixed window let 2x the limit through there).
    for remaining in ("2", "1", "0"):
        assert admin.get("/v2/services")["X-RateLimit-Remaining"] == remaining
    refused = admin.get("/v2/services")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "20"
    assert refused["X-RateLimit-Remaining"] == "0"
    assert int(refused["X-RateLimit-Reset"]) == int(clock() + 60)  # the whole budget back
    clock.advance(19)
    assert admin.get("/v2/services")["Retry-After"] == "1"
    clock.advance(1)  # one emission interval: one slot, not three
    answer = admin.get("/v2/services")
    assert answer.status_code == 200 and answer["X-RateLimit-Remaining"] == "0"
    assert admin.get("/v2/services").status_code == 429
    clock.advance(20)
    assert admin.get("/v2/services")["X-RateLimit-Remaining"] == "0"
    clock.advance(60)  # idle for a window: the whole budget again
    assert admin.get("/v2/services")["X-RateLimit-Remaining"] == "2"


def test_no_burst_across_a_minute_boundary(limiter_store, clock):
    # A client that sends four requests every 0.25 s for five minutes, starting just before a
    # minute turns. A fixed window let 4 + 6 through within 0.25 s there; GCRA lets the limit
    # through once, then one per emission interval (60 / 6 = 10 s): over any period L at most
    # limit + L / 10.
    start = (int(clock()) // 60 + 1) * 60 - 0.25
    clock.at = start
    limit, passed = 6, []
    for _ in range(1200):
        for _ in range(4):
            try:
                ratelimit.hit("management", "hammer", limit)
                passed.append(clock() - start)
            except Throttled:
                pass
        clock.advance(0.25)
    assert passed[:limit] == [0, 0, 0, 0, 0.25, 0.25]  # the burst, across the boundary
    assert passed[limit:] == [10.0 * n for n in range(1, 30)]  # then paced
    for first in passed:
        for span in (0.5, 1, 30, 60, 120):
            assert sum(1 for t in passed if first <= t < first + span) <= limit + span / 10


def test_refused_requests_do_not_extend_the_wait(limits, admin, clock):
    for _ in range(3):
        admin.get("/v2/services")
    for _ in range(3):
        clock.advance(5)
        assert admin.get("/v2/services").status_code == 429
    clock.advance(5)  # 20 s after the burst, whatever was refused in between
    assert admin.get("/v2/services").status_code == 200


def test_stores_agree(limiter_store, clock):
    # 2 per minute: an emission interval of 30 s.
    start = clock()
    decisions = [ratelimit.hit("management", "k", 2)]
    clock.advance(0.5)
    decisions.append(ratelimit.hit("management", "k", 2))
    assert [d.remaining for d in decisions] == [1, 0]
    assert [d.reset for d in decisions] == [int(start + 30), int(start + 60)]
    with pytest.raises(Throttled) as refused:
        ratelimit.hit("management", "k", 2)
    assert refused.value.headers["Retry-After"] == "30"  # ceil(29.5)
    assert refused.value.headers["X-RateLimit-Remaining"] == "0"
    clock.advance(29.5)
    assert ratelimit.hit("management", "k", 2).remaining == 0
    clock.advance(90)
    assert ratelimit.hit("management", "k", 2).remaining == 1
    assert ratelimit.hit("management", "other", 2).remaining == 1  # subjects are separate


def test_one_stored_value_per_subject_whatever_the_limit(limiter_store, clock):
    # The documented maximum is 1,000,000 per minute: a log of hits would keep every one.
    for _ in range(500):
        ratelimit.hit("heartbeat", "busy", 1_000_000)
        clock.advance(0.001)
    if isinstance(limiter_store, ratelimit.RedisStore):
        client = limiter_store._client
        keys = list(client.scan_iter(f"{ratelimit.PREFIX}*"))
        assert keys == [f"{ratelimit.PREFIX}heartbeat:busy".encode()]
        assert client.type(keys[0]) == b"string"
        assert client.pttl(keys[0]) > 0  # it expires once the budget is whole again
    else:
        import sqlite3

        rows = sqlite3.connect(limiter_store.path).execute("SELECT key FROM cells").fetchall()
        assert rows == [(f"{ratelimit.PREFIX}heartbeat:busy",)]


def test_many_hits_at_once_decide_as_one_at_a_time(limiter_store, clock):
    # The web front charges a batch of heartbeats with one round trip: in order, each as alone.
    hits = [("heartbeat", "a", 2), ("heartbeat", "b", 0), ("heartbeat", "a", 2)]
    hits += [("heartbeat", "a", 2), ("heartbeat", "c", None)]
    results = ratelimit.hit_many(hits)
    assert [type(r).__name__ for r in results] == [
        "Decision", "Decision", "Decision", "Throttled", "Decision",
    ]  # fmt: skip
    assert [results[0].remaining, results[2].remaining] == [1, 0]
    assert results[1].limit == 0  # 0: no limit for that key, nothing stored
    assert results[3].headers["Retry-After"] == "30"
    assert results[4].limit == ratelimit.default_limit("heartbeat")
    with pytest.raises(Throttled):  # the batch's hits were stored like any others
        ratelimit.hit("heartbeat", "a", 2)
    if isinstance(limiter_store, ratelimit.RedisStore):
        # A server that lost the script (restart, SCRIPT FLUSH) gets it again; each hit counted
        # once.
        limiter_store._client.script_flush()
        clock.advance(60)
        again = ratelimit.hit_many([("heartbeat", "d", 2)] * 3)
        assert [type(r).__name__ for r in again] == ["Decision", "Decision", "Throttled"]
