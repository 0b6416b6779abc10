"""Heartbeats through the production web server (gunicorn, uvicorn workers, medic/front.py),
which answers them a batch at a time: whatever shares a batch, each request gets the answer it
would get alone (201 and a row, 401, 403, 404, 409, 429, 400 for a host not allowed with nothing
stored), every 201 is a committed row, and a key's rate limit counts each request once."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import time
from collections import Counter

import pytest

from heartbeats.models import Heartbeat, Service, ServiceStatus
from heartbeats.services import heartbeat_record, service_create
from medic.apikeys import api_key_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _post(base: str, path: str, headers: dict, body: bytes = b"{}"):
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.headers, json.loads(data)


def test_mixed_heartbeats_get_their_own_answers_whatever_shares_their_batch(start_web):
    steady = []
    for i in range(6):
        service = service_create(heartbeat_name=f"front-{i}", alert_interval=5)
        heartbeat_record(service_ref=service.pk)  # new -> up: the batch statement's case
        steady.append(service)
    fresh = service_create(heartbeat_name="front-new", alert_interval=5)  # first beat: new -> up
    service_create(heartbeat_name="front-off", alert_interval=5, active=False)
    writer = api_key_create(name="w", scopes=["write"], actor="test").secret
    reader = api_key_create(name="r", scopes=["read"], actor="test").secret
    limited = api_key_create(
        name="l", scopes=["write"], rate_limits={"heartbeat": 5}, actor="test"
    ).secret
    bad = writer[:-4] + ("aaaa" if not writer.endswith("aaaa") else "bbbb")
    base = start_web(workers=2)
    before = Heartbeat.objects.count()

    bearer = {"Authorization": f"Bearer {writer}"}
    # The limited key's requests first: they go out in the first wave, well within the 12 s
    # its limit takes to earn another request back (checked below in any case).
    cases = [("limited", "/v2/heartbeat/front-3", {"Authorization": f"Bearer {limited}"})] * 10
    for i in range(120):
        cases.append(("steady", f"/v2/heartbeat/front-{i % 6}", bearer))
    cases += [("first beat", "/v2/heartbeat/front-new", bearer)]
    cases += [("by id", f"/v2/heartbeat/{steady[0].pk}", bearer)] * 4
    cases += [("wrong key", "/v2/heartbeat/front-0", {"Authorization": f"Bearer {bad}"})] * 3
    cases += [("read key", "/v2/heartbeat/front-1", {"Authorization": f"Bearer {reader}"})] * 3
    cases += [("unknown", "/v2/heartbeat/front-nope", bearer)] * 3
    cases += [("inactive", "/v2/heartbeat/front-off", bearer)] * 3
    cases += [("bad host", "/v2/heartbeat/front-2", {**bearer, "Host": "evil.example"})] * 3

    def send(case):
        return _post(base, case[1], case[2])

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, cases))
    # 5 per minute: five at once, then one more every 12 s.
    statuses = [(name, status) for (name, *_), (status, *_) in zip(cases, answers, strict=True)]
    passed = statuses.count(("limited", 201))
    assert 5 <= passed <= 5 + int((time.monotonic() - started) // 12)

    by_case: dict[str, Counter] = {}
    for name, status in statuses:
        by_case.setdefault(name, Counter())[status] += 1
    assert by_case == {
        "steady": Counter({201: 120}),
        "first beat": Counter({201: 1}),
        "by id": Counter({201: 4}),
        "wrong key": Counter({401: 3}),
        "read key": Counter({403: 3}),
        "unknown": Counter({404: 3}),
        "inactive": Counter({409: 3}),
        "bad host": Counter({400: 3}),
        # Whichever batches they were in, the key's budget decided, once per request.
        "limited": Counter({201: passed, 429: 10 - passed}),
    }
    for (name, *_), (status, headers, body) in zip(cases, answers, strict=True):
        if status == 201:
            assert set(body) == {
                "id", "service", "heartbeat_name", "status", "time", "service_status",
                "next_deadline_at",
            }  # fmt: skip
            assert headers["X-RateLimit-Limit"] in ("100000", "5")
        elif status == 429:
            assert body["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) >= 1
            assert headers["X-RateLimit-Remaining"] == "0"
        elif name != "bad host":
            assert set(body) == {"error"}, body
        if status == 401:
            assert headers["WWW-Authenticate"] == 'Bearer realm="medic"'
    # Every 201 is a row, with what its answer said; nothing else was stored.
    accepted = [body for (status, _, body) in answers if status == 201]
    rows = {b.pk: b for b in Heartbeat.objects.filter(pk__in=[a["id"] for a in accepted])}
    assert len(rows) == len(accepted) == 125 + passed
    assert Heartbeat.objects.count() == before + 125 + passed
    for answer in accepted:
        row = rows[answer["id"]]
        assert row.service_id == answer["service"] and row.status == answer["status"] == "UP"
    fresh.refresh_from_db()
    assert fresh.status == ServiceStatus.UP
    assert Service.objects.get(pk=steady[0].pk).status == ServiceStatus.UP
