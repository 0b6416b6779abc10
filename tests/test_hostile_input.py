"""Hostile and careless input gets a clear 4xx in the error envelope, never a 500 or a silent
misreading: oversized bodies, non-ASCII digits as ids, out-of-range numbers, odd characters."""

from __future__ import annotations

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
