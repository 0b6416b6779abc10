"""Bodies sent with ``Transfer-Encoding: chunked`` (no Content-Length) mean what they say, through
real gunicorn, on every route a heartbeat takes: the WSGI ingest handler (heartbeats/ingest.py)
and Django's own handler (route off), v2 job signals and v1."""

from __future__ import annotations

import http.client
import json

import pytest

from heartbeats.models import Heartbeat, JobRun
from heartbeats.services import service_create
from medic.apikeys import api_key_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _chunked(base: str, path: str, body: bytes, key: str, chunk: int = 7):
    """POST ``body`` in chunks of ``chunk`` bytes; return (status, parsed JSON body)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    conn.request(
        "POST",
        path,
        body=iter(parts),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    assert response.getheader("Content-Length") is not None or response.chunked
    data = response.read()
    conn.close()
    return response.status, json.loads(data)


@pytest.mark.parametrize("route", ["1", "0"])
def test_chunked_bodies_are_read_not_dropped(start_web, route):
    base = start_web(workers=1, MEDIC_HEARTBEAT_ROUTE=route)
    key = api_key_create(name="chunked", scopes=["write"]).secret
    service_create(heartbeat_name="disk", alert_interval=60)
    service_create(heartbeat_name="backup", alert_interval=60)

    down = json.dumps({"status": "DOWN", "message": "disk full"}).encode()
    status, body = _chunked(base, "/v2/heartbeat/disk", down, key)
    assert status == 201, body
    stored = Heartbeat.objects.filter(service__heartbeat_name="disk").get()
    assert (stored.status, stored.message) == ("DOWN", "disk full")

    status, body = _chunked(base, "/v2/heartbeat/disk", b'{"status": "DOWN", ', key)
    assert status == 400 and body["error"]["code"] == "malformed"
    assert Heartbeat.objects.filter(service__heartbeat_name="disk").count() == 1

    # /complete closes the run it names, with its exit code, not the latest other run
    first = _chunked(base, "/v2/heartbeat/backup/start", b'{"run_id": "r-1"}', key)
    second = _chunked(base, "/v2/heartbeat/backup/start", b'{"run_id": "r-2"}', key)
    assert first[0] == second[0] == 201
    end = json.dumps({"run_id": "r-1", "exit_code": 0}).encode()
    status, body = _chunked(base, "/v2/heartbeat/backup/complete", end, key)
    assert status == 201, body
    runs = {run.run_id: run for run in JobRun.objects.filter(service__heartbeat_name="backup")}
    assert runs["r-1"].exit_code == 0 and runs["r-1"].ended_at is not None
    assert runs["r-2"].ended_at is None

    v1 = json.dumps({"heartbeat_name": "disk", "status": "DEGRADED"}).encode()
    status, body = _chunked(base, "/heartbeat", v1, key)
    assert status == 201, body
    assert (
        Heartbeat.objects.filter(service__heartbeat_name="disk").latest("id").status == "DEGRADED"
    )

    # A chunked body over the upload limit is refused like one with a length: 413, JSON.
    big = b'{"message": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    status, body = _chunked(base, "/v2/heartbeat/disk", big, key, chunk=256 * 1024)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
