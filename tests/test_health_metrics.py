"""Health endpoints, /metrics (read key), and metrics served by the worker's own endpoint."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from medic import worker_metrics
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_health_reports_components(outsider, slack):
    response = outsider.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy" and body["version"] == "2.0.0"
    components = body["components"]
    assert components["database"]["status"] == "healthy"
    assert components["broker"] == {**components["broker"], "status": "healthy", "kind": "redis"}
    assert components["slack"]["status"] == "configured"
    assert components["pagerduty"]["status"] == "not_configured"


def test_live_and_ready(outsider):
    assert outsider.get("/health/live").json()["status"] == "alive"
    ready = outsider.get("/health/ready").json()
    assert ready["status"] == "ready" and ready["database"] == "healthy"


def test_ready_is_503_when_the_broker_is_unreachable(outsider, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = outsider.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["broker"] == "unhealthy"
    assert outsider.get("/health").status_code == 503


def test_network_check_is_204_empty(outsider):
    response = outsider.get("/v1/healthcheck/network")
    assert response.status_code == 204 and response.content == b""


def test_metrics_needs_a_read_key_and_exports_medic_metrics(reader, writer, admin):
    admin.post("/v2/services", {"heartbeat_name": "m", "alert_interval": 5})
    ApiClient(None).get("/v2/services")  # one auth failure
    writer.post("/v2/heartbeat/m")
    assert ApiClient(None).get("/metrics").status_code == 401
    assert writer.get("/metrics").status_code == 403
    response = reader.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    for name in (
        'medic_heartbeats_total{status="UP"}',
        'medic_services{state="up"} 1.0',
        "medic_alerts_open 0.0",
        'medic_auth_failures_total{reason="missing"}',
        "medic_sweep_duration_seconds",
        "medic_sweep_lag_seconds",
        "medic_notifications_total",
    ):
        assert name in text, name


@pytest.mark.django_db(transaction=True)
def test_worker_endpoint_serves_the_registry_with_a_read_key(reader_key):
    from medic.metrics import SWEEP_DURATION

    SWEEP_DURATION.observe(0.01)
    server = worker_metrics.start("127.0.0.1:0", require_key=True)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {reader_key}"})
        body = urllib.request.urlopen(request, timeout=5).read().decode()
        assert "medic_sweep_duration_seconds_count" in body
    finally:
        server.shutdown()
        server.server_close()
        worker_metrics._server = None


def test_json_logs(capsys):
    import json
    import logging

    from medic.logging import JsonFormatter

    record = logging.makeLogRecord(
        {
            "name": "medic.test",
            "levelname": "WARNING",
            "msg": "hello %s",
            "args": ("x",),
            "service": "etl",
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello x" and line["service"] == "etl" and line["level"] == "WARNING"
