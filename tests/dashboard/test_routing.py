"""Teams, notification targets, routing rules and working hours: forms whose messages say what
to fix, secrets that are never shown again, and every write through alerting.config."""

from __future__ import annotations

import pytest

from alerting import config as cfg
from alerting.models import NotificationTarget, RoutingRule, Team, WorkingHours
from heartbeats.models import Service
from medic.crypto import decrypt
from medic.models import AuditEvent

pytestmark = pytest.mark.django_db


def _errors(response) -> str:
    html = response.content.decode()
    assert response.status_code == 200, response.status_code
    assert 'id="error-summary"' in html, "expected the form back with errors"
    return html[html.index('id="error-summary"') :]


# --- Teams ------------------------------------------------------------------------------------


def test_create_and_rename_team(operator, world):
    response = operator.post("/ui/teams/new", {"name": "search", "slack_channel_id": "C0SEARCH1"})
    assert response.status_code == 302 and response["Location"] == "/ui/teams"
    team = Team.objects.get(name="search")
    assert team.slack_channel_id == "C0SEARCH1"
    assert AuditEvent.objects.get(event="team.created", object_id=str(team.pk)).actor == "user:otto"

    payments = world["team"]
    response = operator.post(
        f"/ui/teams/{payments.pk}", {"name": "billing", "slack_channel_id": "C0PAYMENTS"}
    )
    assert response.status_code == 302
    # a rename carries the services along (alerting.config.team_update)
    assert Service.objects.filter(team="billing").count() == 2
    html = operator.get("/ui/teams").content.decode()
    assert "billing" in html and "C0SEARCH1" in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "slack_channel_id": "#payments"}, "A Slack channel id such as C0123ABCD"),
        ({"name": "x", "slack_channel_id": "c0lower"}, "A Slack channel id such as C0123ABCD"),
        ({"name": "a/b"}, "Must not contain &#x27;/&#x27; or be only digits."),
        ({"name": "2024"}, "Must not contain &#x27;/&#x27; or be only digits."),
        ({"name": ""}, "This field is required."),
        ({"name": "payments"}, "Already taken."),
    ],
)
def test_team_form_says_what_to_fix(operator, world, data, message):
    assert message in _errors(operator.post("/ui/teams/new", data))


def test_unregistered_team_names_are_offered(operator, world):
    Service.objects.filter(pk=world["quiet"].pk).update(team="data")
    html = operator.get("/ui/teams").content.decode()
    assert 'href="/ui/teams/new?name=data"' in html
    assert 'value="data"' in operator.get("/ui/teams/new?name=data").content.decode()


def test_delete_team(operator, world):
    team = world["team"]
    confirm = operator.get(f"/ui/teams/{team.pk}/delete").content.decode()
    assert "2 service(s) name this team" in confirm
    assert operator.post(f"/ui/teams/{team.pk}/delete").status_code == 302
    assert not Team.objects.filter(pk=team.pk).exists()


# --- Notification targets ---------------------------------------------------------------------


def test_slack_target_secret_is_write_only(admin_user, world):
    response = admin_user.post(
        "/ui/targets/new",
        {
            "name": "ops-slack",
            "kind": "slack",
            "enabled": "on",
            "channel": "C0OPS1234",
            "bot_token": "xoxb-very-secret",
            "method": "POST",
        },
    )
    assert response.status_code == 302
    target = NotificationTarget.objects.get(name="ops-slack")
    assert target.config == {"channel": "C0OPS1234"}
    assert decrypt(target.secrets["bot_token"]) == "xoxb-very-secret"
    for page in ("/ui/targets", f"/ui/targets/{target.pk}"):
        html = admin_user.get(page).content.decode()
        assert "xoxb-very-secret" not in html and target.secrets["bot_token"] not in html
        assert "bot_token" in html  # which secrets are set is shown, never their values
    # blank secret on edit keeps the stored one
    admin_user.post(
        f"/ui/targets/{target.pk}",
        {
            "name": "ops-slack",
            "kind": "slack",
            "channel": "C0OPS9999",
            "bot_token": "",
            "method": "POST",
        },
    )
    target.refresh_from_db()
    assert target.config["channel"] == "C0OPS9999" and not target.enabled
    assert decrypt(target.secrets["bot_token"]) == "xoxb-very-secret"


def test_webhook_target_generated_signing_secret_is_shown_once(admin_user, world):
    response = admin_user.post(
        "/ui/targets/new",
        {
            "name": "pager-hook",
            "kind": "webhook",
            "enabled": "on",
            "url": "https://example.com/hook",
            "method": "PUT",
            "headers": "X-Team: sre",
            "secret_headers": "Authorization: Bearer abc",
            "body_template": '{"text": "${summary}"}',
            "timeout_seconds": "5",
        },
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    target = NotificationTarget.objects.get(name="pager-hook")
    secret = decrypt(target.secrets["signing_secret"])
    assert secret.startswith("whsec_") and secret in html and "shown only once" in html
    assert target.config == {
        "url": "https://example.com/hook",
        "method": "PUT",
        "headers": {"X-Team": "sre"},
        "body_template": {"text": "${summary}"},
        "timeout_seconds": 5.0,
    }
    assert decrypt(target.secrets["headers"]["Authorization"]) == "Bearer abc"
    assert secret not in admin_user.get(f"/ui/targets/{target.pk}").content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "webhook"}, "Required for a webhook target: the http(s) URL to call."),
        ({"kind": "webhook", "url": "ftp://example.com"}, "Use an http or https URL."),
        ({"kind": "webhook", "url": "not a url"}, "Enter a valid URL."),
        (
            {"kind": "webhook", "url": "https://e.com", "headers": "Content-Type: text/plain"},
            "Medic sets these headers itself",
        ),
        (
            {"kind": "webhook", "url": "https://e.com", "headers": "no colon here"},
            "Line 1: write &#x27;Header-Name: value&#x27;.",
        ),
        (
            {"kind": "webhook", "url": "https://e.com", "body_template": "{nope"},
            "Not valid JSON (line 1, column 2)",
        ),
        (
            {"kind": "webhook", "url": "https://e.com", "body_template": '{"a": "${nope}"}'},
            "Unknown variable(s) nope; available:",
        ),
        (
            {"kind": "webhook", "url": "https://e.com", "signing_secret": "short"},
            "Ensure this field has at least 16 characters.",
        ),
        (
            {"kind": "webhook", "url": "https://e.com", "timeout_seconds": "99"},
            "Ensure this value is less than or equal to 30.",
        ),
        ({"kind": "slack", "name": "ops-hook"}, "Already taken."),
        ({"kind": "carrier-pigeon"}, "Select a valid choice."),
    ],
)
def test_target_form_says_what_to_fix(admin_user, world, data, message):
    payload = {"name": "new-target", "method": "POST", **data}
    assert message in _errors(admin_user.post("/ui/targets/new", payload))
    assert not NotificationTarget.objects.filter(name="new-target").exists()


def test_target_in_use_cannot_be_deleted(admin_user, world):
    target = world["target"]
    confirm = admin_user.get(f"/ui/targets/{target.pk}/delete").content.decode()
    assert "payments-p2" in confirm
    response = admin_user.post(f"/ui/targets/{target.pk}/delete", follow=True)
    assert "The target is used by routing rules: payments-p2." in response.content.decode()
    assert NotificationTarget.objects.filter(pk=target.pk).exists()


# --- Routing rules ----------------------------------------------------------------------------


def test_create_rule_with_ordered_targets(operator, world):
    second, _ = cfg.target_create(
        name="backup-hook",
        kind="webhook",
        config={"url": "https://b.example.com"},
        secrets={},
        actor="tests",
    )
    response = operator.post(
        "/ui/rules/new",
        {
            "name": "office-p1",
            "position": "10",
            "enabled": "on",
            "service": "billing-cron",
            "team": "",
            "priorities": ["p1", "p2"],
            "when": "working_hours",
            "schedule": str(world["schedule"].pk),
            "mode": "until_success",
            "stop": "on",
            "target_0": str(second.pk),
            "target_1": str(world["target"].pk),
        },
    )
    assert response.status_code == 302, _errors(response)
    rule = RoutingRule.objects.get(name="office-p1")
    assert [link.target.name for link in rule.rule_targets.order_by("position")] == [
        "backup-hook",
        "ops-hook",
    ]
    assert (rule.service, rule.when, rule.schedule, rule.stop) == (
        world["service"],
        "working_hours",
        world["schedule"],
        True,
    )
    html = operator.get("/ui/rules").content.decode()
    assert "1. backup-hook<br>2. ops-hook" in html and "during working hours (office)" in html
    edit = operator.get(f"/ui/rules/{rule.pk}").content.decode()
    assert f'<option value="{second.pk}" selected>' in edit


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "target_0", "Choose at least one target for the rule."),
        (
            {"when": "after_hours", "target_0": "T"},
            "schedule",
            "Choose the working-hours schedule that &#x27;when&#x27; refers to.",
        ),
        (
            {"service": "no-such-service", "target_0": "T"},
            "service",
            "No service with heartbeat name &#x27;no-such-service&#x27;.",
        ),
        ({"target_0": "T", "target_1": "T"}, "target_1", "is already listed above."),
        ({"name": "payments-p2", "target_0": "T"}, "name", "Already taken."),
        ({"position": "first", "target_0": "T"}, "position", "Enter a whole number."),
    ],
)
def test_rule_form_says_what_to_fix(operator, world, data, field, message):
    target = str(world["target"].pk)
    payload = {"name": "new-rule", "position": "100", "when": "always", "mode": "all"}
    payload.update({k: (target if v == "T" else v) for k, v in data.items()})
    html = _errors(operator.post("/ui/rules/new", payload))
    assert message in html
    assert f'href="#id_{field}"' in html or field == "name"
    assert not RoutingRule.objects.filter(name="new-rule").exists()


# --- Working hours ----------------------------------------------------------------------------


def test_create_working_hours_from_fields(operator, world):
    response = operator.post(
        "/ui/working-hours/new",
        {
            "name": "us-office",
            "timezone": "America/Chicago",
            "w0_days": ["mon", "tue", "wed", "thu", "fri"],
            "w0_start": "09:00",
            "w0_end": "18:00",
            "w1_days": ["sat"],
            "w1_start": "22:00",
            "w1_end": "02:00",
            "holidays_country": "US",
            "holidays_subdivision": "TX",
            "holidays_dates": "2026-12-24\n2026-12-31",
        },
    )
    assert response.status_code == 302, _errors(response)
    schedule = WorkingHours.objects.get(name="us-office")
    assert schedule.spec["windows"][1] == {"days": ["sat"], "start": "22:00", "end": "02:00"}
    assert schedule.spec["holidays"]["dates"] == ["2026-12-24", "2026-12-31"]
    listing = operator.get("/ui/working-hours").content.decode()
    # alerting.schedules describes with en dashes
    described = "Mon-Fri 09:00-18:00; Sat 22:00-02:00 (next day) America/Chicago"
    assert described.replace("-", "\N{EN DASH}") in listing
    edit = operator.get(f"/ui/working-hours/{schedule.pk}").content.decode()
    assert 'value="22:00"' in edit and "now; that changes" in edit


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"timezone": "CST"}, "timezone", "CST is an abbreviation, not a time zone"),
        ({"timezone": "Mars/Olympus"}, "timezone", ""),
        ({"w0_start": "9:00"}, "w0_start", "&#x27;9:00&#x27; is not HH:MM"),
        ({"w0_days": []}, "w0_days", "Tick the days this window applies to."),
        (
            {"w0_days": [], "w0_start": "", "w0_end": ""},
            "w0_days",
            "Add at least one window of working hours.",
        ),
        ({"holidays_country": "XX"}, "holidays_country", ""),
        (
            {"holidays_dates": "2026-12-24\n2027-02-29"},
            "holidays_dates",
            "Line 2: 2027-02-29 does not exist: 2027 is not a leap year",
        ),
        ({"name": "office"}, "name", "Already taken."),
    ],
)
def test_working_hours_form_says_what_to_fix(operator, world, data, field, message):
    payload = {
        "name": "new-hours",
        "timezone": "Europe/Berlin",
        "w0_days": ["mon"],
        "w0_start": "09:00",
        "w0_end": "17:00",
        **data,
    }
    html = _errors(operator.post("/ui/working-hours/new", payload))
    assert message in html
    assert f'href="#id_{field}"' in html
    assert not WorkingHours.objects.filter(name="new-hours").exists()


def test_schedule_in_use_cannot_be_deleted(operator, world):
    rule = world["rule"]
    RoutingRule.objects.filter(pk=rule.pk).update(when="working_hours", schedule=world["schedule"])
    response = operator.post(f"/ui/working-hours/{world['schedule'].pk}/delete", follow=True)
    assert "The schedule is used by routing rules: payments-p2." in response.content.decode()
