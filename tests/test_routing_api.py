"""Teams, notification targets, working hours and routing rules over the API (SRE-10/11/12)."""

from __future__ import annotations

import pytest

from alerting.models import NotificationTarget
from heartbeats.models import Service
from medic.crypto import decrypt

pytestmark = pytest.mark.django_db

OFFICE = {
    "timezone": "America/Chicago",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}],
    "holidays": {"country": "US"},
}


def test_team_crud_and_rename_carries_services(admin, writer, reader):
    created = writer.post("/v2/teams", {"name": "payments", "slack_channel_id": "C0PAYMENTS"})
    assert created.status_code == 201
    writer.post(
        "/v2/services", {"heartbeat_name": "ledger", "alert_interval": 5, "team": "payments"}
    )
    assert reader.get("/v2/teams/payments").json()["slack_channel_id"] == "C0PAYMENTS"
    renamed = writer.patch("/v2/teams/payments", {"name": "payments-core"})
    assert renamed.status_code == 200
    assert Service.objects.get().team == "payments-core"
    assert writer.post("/v2/teams", {"name": "payments-core"}).status_code == 409
    bad = writer.post("/v2/teams", {"name": "x", "slack_channel_id": "#general"})
    assert bad.status_code == 422 and "slack_channel_id" in bad.json()["error"]["fields"]
    assert reader.post("/v2/teams", {"name": "y"}).status_code == 403
    assert writer.delete("/v2/teams/payments-core").status_code == 204
    assert reader.get("/v2/teams/payments-core").status_code == 404


def test_webhook_target_secrets_are_encrypted_and_never_returned(admin, reader, writer):
    response = admin.post(
        "/v2/notification-targets",
        {
            "name": "bridge",
            "kind": "webhook",
            "url": "https://bridge.example/alerts",
            "headers": {"X-Team": "payments"},
            "secret_headers": {"Authorization": "Bearer very-secret"},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["signing_secret"].startswith("whsec_")  # generated, shown once
    assert body["secret_fields"] == ["headers.Authorization", "signing_secret"]
    stored = NotificationTarget.objects.get(name="bridge")
    assert "very-secret" not in str(stored.secrets)
    assert stored.secrets["headers"]["Authorization"].startswith("enc:v1:")
    assert decrypt(stored.secrets["headers"]["Authorization"]) == "Bearer very-secret"
    listed = reader.get("/v2/notification-targets/bridge").json()
    assert "very-secret" not in str(listed) and "signing_secret" not in listed
    assert listed["headers"] == {"X-Team": "payments"} and listed["method"] == "POST"
    # writers can read targets but not change them: they hold secrets
    assert writer.patch("/v2/notification-targets/bridge", {"enabled": False}).status_code == 403


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "w", "kind": "webhook"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "ftp://x"}, "url"),
        (
            {"name": "w", "kind": "webhook", "url": "https://x", "body_template": {"a": "${nope}"}},
            "body_template",
        ),
        (
            {"name": "w", "kind": "webhook", "url": "https://x", "headers": {"Host": "evil"}},
            "headers",
        ),
        ({"name": "s", "kind": "slack", "url": "https://x"}, "url"),
        ({"name": "p", "kind": "sms"}, "kind"),
    ],
)
def test_target_validation(admin, payload, field):
    response = admin.post("/v2/notification-targets", payload)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]


def test_working_hours_validation_names_the_field_and_suggests_iana(writer):
    abbreviation = writer.post(
        "/v2/working-hours", {"name": "office", "spec": {**OFFICE, "timezone": "CST"}}
    )
    assert abbreviation.status_code == 422
    message = " ".join(abbreviation.json()["error"]["fields"]["spec.timezone"])
    assert "America/Chicago" in message
    bad_window = writer.post(
        "/v2/working-hours",
        {
            "name": "office",
            "spec": {**OFFICE, "windows": [{"days": ["mon"], "start": "25:00", "end": "18:00"}]},
        },
    )
    assert bad_window.status_code == 422
    assert "spec.windows[0].start" in bad_window.json()["error"]["fields"]
    created = writer.post("/v2/working-hours", {"name": "office", "spec": OFFICE})
    assert created.status_code == 201
    assert "America/Chicago" in created.json()["description"]


def test_rule_validation(admin, writer):
    admin.post("/v2/notification-targets", {"name": "slack", "kind": "slack"})
    missing_schedule = writer.post(
        "/v2/routing-rules", {"name": "night", "when": "after_hours", "targets": ["slack"]}
    )
    assert missing_schedule.status_code == 422
    assert "schedule" in missing_schedule.json()["error"]["fields"]
    unknown_target = writer.post("/v2/routing-rules", {"name": "r", "targets": ["nope"]})
    assert unknown_target.status_code == 404
    bad_priority = writer.post(
        "/v2/routing-rules", {"name": "r", "priorities": ["urgent"], "targets": ["slack"]}
    )
    assert bad_priority.status_code == 422
    ok = writer.post("/v2/routing-rules", {"name": "r", "targets": ["slack"], "priorities": ["p1"]})
    assert ok.status_code == 201 and ok.json()["targets"] == ["slack"]
    in_use = admin.delete("/v2/notification-targets/slack")
    assert in_use.status_code == 409
