"""Every URL pattern refuses a request without a key, except the documented public ones."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

PUBLIC = {"/health", "/health/live", "/health/ready", "/v1/healthcheck/network"}
# The Django admin is a browser application with session login: without a session it
# redirects to its login form (which must itself be reachable), it never serves data.
SESSION_PREFIXES = ("/admin/",)
# So is the dashboard (/ui/, and / redirects there): every page but its sign-in and sign-out
# answers a request without a session with a redirect to the dashboard's login page.
DASHBOARD_PREFIX = "/ui/"
DASHBOARD_OPEN = {"/ui/login", "/ui/logout"}
METHODS = ("get", "post", "patch", "delete")


def _walk(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(pattern: str) -> str:
    path = re.sub(r"<int:[^>]+>", "1", pattern)
    path = re.sub(r"<(?:str:|slug:|path:)?[^>]+>", "some-name", path)
    path = re.sub(r"\(\?P<[^>]+>[^)]*\)", "x", path)
    path = path.replace("^", "").replace("$", "").replace("\\Z", "").replace("\\", "")
    return "/" + path


def _paths():
    return sorted({_concrete(p) for p in _walk(get_resolver())})


def test_the_walk_finds_the_api():
    paths = _paths()
    assert "/v2/services" in paths and "/heartbeat" in paths and "/metrics" in paths
    assert "/ui/" in paths and "/ui/api-keys" in paths and "/ui/login" in paths
    assert len(paths) > 20


@pytest.mark.parametrize("path", _paths())
def test_every_pattern_requires_a_key(path, settings):
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = False
    client = ApiClient(None)
    for method in METHODS:
        response = getattr(client, method)(path)
        if path in PUBLIC:
            assert response.status_code in (200, 204, 405), (method, path)
        elif path == "/":
            assert response.status_code == 302 and response["Location"] == "/ui/", (method, path)
        elif path in DASHBOARD_OPEN:
            assert response.status_code in (200, 302, 405), (method, path)
            if method == "get" and path == "/ui/login":
                assert response.status_code == 200 and b'name="password"' in response.content
            if response.status_code == 302:
                assert response["Location"] == "/ui/login", (method, path)
        elif path.startswith(DASHBOARD_PREFIX):
            assert response.status_code == 302, (method, path, response.status_code)
            assert response["Location"].startswith("/ui/login?next=/ui/"), (method, path)
        elif path.startswith(SESSION_PREFIXES):
            assert response.status_code in (200, 302, 404, 405), (method, path)
            if response.status_code == 200:
                assert "/admin/login/" in path or "login" in response.content.decode()
        else:
            assert response.status_code in (401, 405), (method, path, response.status_code)
            if response.status_code == 401:
                assert response.content, (method, path)


def test_anonymous_v1_heartbeat_only_when_enabled(settings):
    from heartbeats.services import service_create

    service_create(heartbeat_name="legacy", alert_interval=5)
    body = {"heartbeat_name": "legacy", "service_name": "legacy", "status": "UP"}
    client = ApiClient(None)
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = False
    assert client.post("/heartbeat", body).status_code == 401
    settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS = True
    assert client.post("/heartbeat", body).status_code == 201
    # only POST /heartbeat opens up
    assert client.get("/heartbeat").status_code == 401
    assert client.get("/v2/services").status_code == 401
