"""Cross-cutting v1 shape: unprefixed paths, methods, and v1's envelope on every refusal."""

from __future__ import annotations

import pytest

from tests.conftest import ApiClient
from tests.v1.conftest import envelope

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("delete", "/heartbeat", "GET, POST"),
        ("patch", "/service", "GET, POST"),
        ("delete", "/service/api", "GET, POST"),
        ("post", "/alerts", "GET"),
        ("post", "/docs/swagger.json", "GET"),
    ],
)
def test_other_methods_are_405_in_the_envelope(admin, method, path, allow):
    response = getattr(admin, method)(path)
    assert response.status_code == 405
    assert response.json() == envelope(False, "Method not allowed.")
    assert response["Allow"] == allow


@pytest.mark.parametrize("path", ["/heartbeat/", "/service/", "/alerts/", "/v1/heartbeat"])
def test_unknown_v1_paths_are_404_in_the_envelope(admin, path):
    response = admin.get(path)
    assert response.status_code == 404
    if path.startswith(("/heartbeat", "/service", "/alerts")):
        assert response.json() == envelope(False, "Not found.")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/heartbeat"),
        ("get", "/heartbeat"),
        ("post", "/service"),
        ("get", "/service"),
        ("get", "/service/api"),
        ("post", "/service/api"),
        ("get", "/alerts"),
        ("get", "/docs/swagger.json"),
    ],
)
def test_a_malformed_authorization_header_is_401_in_the_envelope(method, path):
    client = ApiClient(None)
    response = getattr(client, method)(path, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response.json() == envelope(
        False, "Use 'Authorization: Bearer mdk_...' or 'X-API-Key: mdk_...'."
    )


def test_admin_scope_may_do_everything(admin):
    assert (
        admin.post(
            "/service", {"heartbeat_name": "api", "service_name": "api", "alert_interval": 1}
        ).status_code
        == 201
    )
    assert admin.post("/heartbeat", {"heartbeat_name": "api", "status": "UP"}).status_code == 201
    assert admin.get("/heartbeat").json()["results"][0]["heartbeat_name"] == "api"
    assert admin.get("/service/api").json()["results"][0]["down"] == 0
