"""v2 bodies keep their JSON types (medic/strict.py), and the schema says what the server enforces
(medic/schema.py): the classes schemathesis found, each checked on its own."""

from __future__ import annotations

import pytest

from heartbeats.services import service_create
from medic.timezones import accepted_names

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/v2/api-keys", {"name": 0, "scopes": ["read"]}, "name"),
        ("/v2/services", {"heartbeat_name": "job", "alert_interval": "5"}, "alert_interval"),
        ("/v2/services", {"heartbeat_name": "job", "active": 1}, "active"),
        ("/v2/services", {"heartbeat_name": "job", "slow_run_factor": "2.5"}, "slow_run_factor"),
        ("/v2/teams", {"name": 7}, "name"),
    ],
)
def test_a_json_value_of_another_type_is_refused(admin, path, body, field):
    response = admin.post(path, body)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]


def test_the_same_values_with_their_own_types_are_accepted(admin):
    assert admin.post("/v2/api-keys", {"name": "0", "scopes": ["read"]}).status_code == 201
    created = admin.post("/v2/services", {"heartbeat_name": "job", "alert_interval": 5})
    assert created.status_code == 201 and created.json()["alert_interval"] == 5


def test_query_strings_are_still_read_as_text(admin):
    service_create(heartbeat_name="job", alert_interval=5)
    assert admin.get("/v2/audit?execution=5").status_code == 200
    assert admin.get("/v2/alerts?limit=5").status_code == 200


def test_v1_keeps_its_own_parsing(writer):
    service_create(heartbeat_name="job", alert_interval=5)
    assert writer.post("/heartbeat", {"heartbeat_name": "job", "status": "UP"}).status_code == 201


@pytest.mark.parametrize("query", ["priority=", "state=", "priority=p9"])
def test_blank_or_unknown_alert_filters_are_refused(admin, query):
    assert admin.get(f"/v2/alerts?{query}").status_code in (400, 422)


def test_a_nul_in_a_looked_up_name_is_a_4xx_not_a_500(admin):
    response = admin.post("/v2/routing-rules", {"name": "r", "service": "a\x00b", "targets": [1]})
    assert 400 <= response.status_code < 500


def test_the_schema_states_the_server_rules(admin):
    schema = admin.get("/v2/schema/?format=json").json()
    components = schema["components"]["schemas"]
    service = components["ServiceRequest"]["properties"]
    assert service["schedule_timezone"]["enum"] == list(accepted_names())
    assert service["slow_run_factor"]["exclusiveMinimum"] is True
    mute = components["MuteInRequest"]["properties"]["duration"]["oneOf"][0]
    assert mute["maximum"] == 90 * 86400
    team_name = components["TeamRequest"]["properties"]["name"]["pattern"]
    assert "\\x00" in team_name
    secret = components["SecretInRequest"]["properties"]
    assert secret["value"]["minLength"] == 4 and secret["value"]["maxLength"] == 16384
    assert secret["name"]["pattern"].startswith("^[A-Za-z_]")
