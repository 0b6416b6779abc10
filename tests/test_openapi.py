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
