"""The OpenAPI schema and Swagger UI: served with a key, assets local (no CDN)."""

import pytest

pytestmark = pytest.mark.django_db


def test_schema_lists_v2_endpoints(reader, outsider):
    assert outsider.get("/v2/schema/").status_code == 401
    response = reader.get("/v2/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ("/v2/heartbeat/{service}", "/v2/services/{service}/mute", "/v2/api-keys"):
        assert path in text
    assert "bearerFormat: mdk_..." in text


def test_swagger_ui_is_served_from_local_static(reader):
    response = reader.get("/v2/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()


def test_v2_errors_for_unknown_paths_use_the_envelope(reader):
    response = reader.get("/v2/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_schema_says_what_lists_and_errors_look_like(admin):
    schema = admin.get("/v2/schema/", HTTP_ACCEPT="application/json").json()
    lists = [
        (path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method == "get" and "{" not in path.rsplit("/", 1)[-1] and path != "/v2/agent/jobs"
    ]
    paginated = [
        path
        for path, op in lists
        if "results"
        in op["responses"]["200"]["content"]["application/json"]["schema"].get("properties", {})
    ]
    assert len(paginated) >= 14
    assert not [
        path
        for path, op in lists
        if op["responses"]["200"]["content"]["application/json"]["schema"].get("type") == "array"
    ]
    for ops in schema["paths"].values():
        for op in ops.values():
            for status in ("400", "401", "403", "404", "413", "422", "429"):
                assert status in op["responses"], (op["operationId"], status)
    services = schema["paths"]["/v2/services"]["get"]["parameters"]
    limit = next(p for p in services if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "/v2/services?priority=AAA",
        "/v2/services?limit=0.0",
        "/v2/alerts?priority=AAA",
        "/v2/alerts?limit=0",
        "/v2/heartbeats?limit=abc",
        "/v2/teams?limit=501",
        "/v2/services?search=a%00b",
    ],
)
def test_invalid_filters_are_refused_not_ignored(admin, query):
    response = admin.get(query)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["fields"]
