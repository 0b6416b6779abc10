"""Services pages: the list (filters, sort, pagination, bounded queries), the detail page, the
create/edit forms and their messages, mute and unmute, delete."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from heartbeats.models import Heartbeat, Service
from heartbeats.services import heartbeat_record, service_create, service_mute
from medic.models import AuditEvent
from tests.sweep import sweep

pytestmark = pytest.mark.django_db


def _names(response) -> list[str]:
    return re.findall(r'data-service="([^"]+)"', response.content.decode())


def _bulk(n: int, prefix: str = "bulk") -> None:
    """Many services at once (bulk_create: fixtures for reads, not a write path under test)."""
    now = timezone.now()
    Service.objects.bulk_create(
        Service(
            heartbeat_name=f"{prefix}-{i:05d}",
            service_name=f"{prefix.title()} {i}",
            alert_interval=5,
            team=f"team-{i % 7}",
            priority=f"p{i % 5 + 1}",
            status=["up", "down", "new", "paused"][i % 4],
            last_heartbeat_at=now - timedelta(minutes=i % 90),
            next_deadline_at=now + timedelta(minutes=5 - i % 9),
        )
        for i in range(n)
    )


def test_list_shows_status_last_heartbeat_deadline_team_priority_schedule(viewer, world):
    response = viewer.get("/ui/")
    html = response.content.decode()
    assert response.status_code == 200
    row = html[html.index('data-service="billing-cron"') :]
    row = row[: row.index("</tr>")]
    assert 'class="badge st-up"' in row
    assert re.search(r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">', row)
    assert "in 5 min" in row  # the next deadline, relative
    assert "payments" in row and "P2" in row
    assert "1 beat / 5 min" in row
    # problems first: the never-reporting service (new) sorts before the healthy one
    assert _names(response) == ["quiet-job", "billing-cron"]


def test_down_and_muted_are_visible_in_the_list(operator, world):
    quiet = world["quiet"]
    sweep(now=timezone.now() + timedelta(minutes=11))
    service_mute(service_ref=quiet.pk, reason="migration", actor="user:otto")
    html = operator.get("/ui/").content.decode()
    row = html[html.index('data-service="quiet-job"') :]
    row = row[: row.index("</tr>")]
    assert 'class="badge st-down"' in row and ">muted</span>" in row
    assert "muted by user:otto until" in row and ": migration" in row
    assert "overdue" in row
    # the header counts (billing-cron's last heartbeat is 11 minutes old too)
    assert re.search(r'data-testid="down-count"><strong>2</strong> down', html)
    assert re.search(r'data-testid="open-alerts"><strong>2</strong> open alerts<', html)


def test_search_filter_and_sort(viewer, world):
    _bulk(30)
    assert _names(viewer.get("/ui/?q=bulk-0001&sort=name")) == [
        f"bulk-{i:05d}" for i in range(10, 20)
    ]
    assert _names(viewer.get("/ui/?q=BILLING")) == ["billing-cron"]
    down = _names(viewer.get("/ui/?status=down"))
    assert down and all(Service.objects.get(heartbeat_name=n).status == "down" for n in down)
    team = _names(viewer.get("/ui/?team=team-3&sort=name"))
    assert team == sorted(team) and len(team) == 4
    p1 = _names(viewer.get("/ui/?priority=p1&sort=-name"))
    assert p1 == sorted(p1, reverse=True) and len(p1) == 6
    newest = _names(viewer.get("/ui/?sort=last&q=bulk"))
    assert newest[0] == "bulk-00000"
    oldest = _names(viewer.get("/ui/?sort=-last&q=bulk"))
    assert oldest[0] == "bulk-00029"
    muted = _names(viewer.get("/ui/?status=muted"))
    assert muted == []
    response = viewer.get("/ui/?status=nonsense&q=zzz")
    assert response.status_code == 200 and b"No service matches these filters" in response.content


def test_pagination_keeps_the_filters(viewer, world):
    _bulk(130)
    first = viewer.get("/ui/?q=bulk&sort=name")
    assert _names(first)[0] == "bulk-00000" and len(_names(first)) == 50
    html = first.content.decode()
    assert "1\N{EN DASH}50 of 130 services" in html
    assert 'href="?q=bulk&amp;sort=name&amp;page=2"' in html
    third = viewer.get("/ui/?q=bulk&sort=name&page=3")
    assert _names(third) == [f"bulk-{i:05d}" for i in range(100, 130)]
    assert _names(viewer.get("/ui/?q=bulk&sort=name&page=99")) == _names(third)


def test_first_page_queries_are_bounded_whatever_the_fleet_size(
    viewer, world, django_assert_max_num_queries
):
    # session, user, groups, 2 header counts, team names, page count, page rows (+ savepoints)
    _bulk(60)
    with django_assert_max_num_queries(10) as small:
        viewer.get("/ui/")
    _bulk(2000, prefix="more")
    with django_assert_max_num_queries(10) as large:
        assert len(_names(viewer.get("/ui/"))) == 50
    assert len(large.captured_queries) == len(small.captured_queries)


def test_empty_state(viewer):
    html = viewer.get("/ui/").content.decode()
    assert "No services yet" in html


def test_detail_shows_heartbeats_alerts_and_route(viewer, world, settings):
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    service = world["service"]
    heartbeat_record(service_ref=service.pk, status="DEGRADED", message="disk 91%")
    html = viewer.get(f"/ui/services/{service.pk}").content.decode()
    assert "disk 91%" in html and "DEGRADED" in html
    assert Heartbeat.objects.filter(service=service).count() == 2
    # routing summary from alerting.routing.route_for: the p2 rule's webhook, and why
    route = html[html.index('data-testid="route"') :]
    assert "An alert now would go to" in html
    assert "https://hooks.example.com/medic" in route[:600] and "rule payments-p2" in route[:600]
    assert "rule &#x27;payments-p2&#x27;: matches" in html
    quiet = viewer.get(f"/ui/services/{world['quiet'].pk}").content.decode()
    assert "#" + str(world["alert"].pk) in quiet  # its past alert
    assert "Slack" in quiet and "C0PAYMENTS" in quiet  # default route: the team channel


def test_detail_of_a_missing_service_is_a_page_not_json(viewer):
    response = viewer.get("/ui/services/999999")
    assert response.status_code == 404
    assert b"Not found" in response.content and response["Content-Type"].startswith("text/html")


def test_create_service(operator, world):
    response = operator.post(
        "/ui/services/new",
        {
            "heartbeat_name": "nightly-backup",
            "service_name": "Nightly backup",
            "team": "payments",
            "priority": "p1",
            "alert_interval": "1440",
            "threshold": "1",
            "grace_period_seconds": "600",
            "runbook": "https://wiki.example.com/backup",
            "active": "on",
        },
    )
    service = Service.objects.get(heartbeat_name="nightly-backup")
    assert response.status_code == 302 and response["Location"] == f"/ui/services/{service.pk}"
    assert (service.priority, service.alert_interval, service.grace_period_seconds) == (
        "p1",
        1440,
        600,
    )
    event = AuditEvent.objects.get(event="service.created", object_id=str(service.pk))
    assert event.actor == "user:otto"
    page = operator.get(response["Location"]).content.decode()
    assert "Created nightly-backup." in page and "1 beat / 1 d, grace 10 min" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"heartbeat_name": "billing-cron"}, "heartbeat_name", "Already registered"),
        ({"heartbeat_name": "BILLING-CRON"}, "heartbeat_name", "Already registered"),
        ({"heartbeat_name": "12345"}, "heartbeat_name", "Must not be only digits"),
        ({"heartbeat_name": "a/b"}, "heartbeat_name", "Must not contain &#x27;/&#x27;"),
        ({"heartbeat_name": ""}, "heartbeat_name", "This field is required."),
        ({"alert_interval": "0"}, "alert_interval", "greater than or equal to 0.1"),
        ({"alert_interval": "soon"}, "alert_interval", "Enter a number."),
        ({"threshold": "0"}, "threshold", "greater than or equal to 1"),
        ({"grace_period_seconds": "-5"}, "grace_period_seconds", "greater than or equal to 0"),
        ({"team": "  "}, "team", "This field is required."),
    ],
)
def test_create_service_says_what_to_fix(operator, world, changes, field, message):
    data = {
        "heartbeat_name": "fresh",
        "team": "payments",
        "priority": "p3",
        "alert_interval": "5",
        "threshold": "1",
        "grace_period_seconds": "0",
        **changes,
    }
    response = operator.post("/ui/services/new", data)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="error-summary"' in html
    field_html = html[html.index(f'id="id_{field}"') :]
    assert f'<p class="error" id="id_{field}_error">' in html
    assert message in html[html.index('id="error-summary"') :]
    assert field_html  # the field is still there, with what was typed
    assert Service.objects.filter(heartbeat_name="fresh").count() == 0


def test_edit_service(operator, world):
    service = world["service"]
    form = operator.get(f"/ui/services/{service.pk}/edit").content.decode()
    assert 'name="heartbeat_name"' not in form  # the heartbeat name is not editable
    assert 'name="alert_interval" value="5.0"' in form
    response = operator.post(
        f"/ui/services/{service.pk}/edit",
        {
            "service_name": "Billing",
            "team": "platform",
            "priority": "p4",
            "alert_interval": "15",
            "threshold": "2",
            "grace_period_seconds": "30",
            "runbook": "",
        },
    )
    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.team, service.threshold, service.active, service.status) == (
        "platform",
        2,
        False,
        "paused",
    )
    response = operator.post(f"/ui/services/{service.pk}/edit", {"alert_interval": "-1"})
    assert b"greater than or equal to 0.1" in response.content


def test_mute_with_preset_and_custom_duration_then_unmute(operator, world):
    service = world["service"]
    url = f"/ui/services/{service.pk}"
    response = operator.post(f"{url}/mute", {"reason": "deploying", "duration": "4h"})
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.muted and service.mute_reason == "deploying"
    assert service.muted_by == "user:otto"
    assert (
        timedelta(hours=3, minutes=59) < service.mute_until - timezone.now() <= timedelta(hours=4)
    )
    html = operator.get(url).content.decode()
    assert "Muted billing-cron for 4h." in html
    assert 'data-testid="mute-banner"' in html and "by user:otto until" in html
    assert "deploying" in html and f'action="{url}/unmute"' in html
    assert 'action="' + url + '/mute"' not in html  # no second mute form while muted

    assert operator.post(f"{url}/unmute").status_code == 302
    service.refresh_from_db()
    assert not service.muted
    operator.post(f"{url}/mute", {"reason": "long job", "duration": "custom", "custom": "2h30m"})
    service.refresh_from_db()
    remaining = service.mute_until - timezone.now()
    assert timedelta(hours=2, minutes=29) < remaining <= timedelta(hours=2, minutes=30)
    assert AuditEvent.objects.filter(event="service.muted", actor="user:otto").count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"duration": "1h"}, "Say why the service is muted."),
        ({"reason": "x", "duration": "custom"}, "Enter a duration such as 45m, 2h or 3d."),
        ({"reason": "x", "duration": "custom", "custom": "soon"}, "is not a duration"),
        ({"reason": "x", "duration": "custom", "custom": "91d"}, "At most 90 days."),
        ({"reason": "x", "duration": "forever"}, "Select a valid choice."),
    ],
)
def test_mute_form_says_what_to_fix(operator, world, data, message):
    service = world["service"]
    response = operator.post(f"/ui/services/{service.pk}/mute", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    service.refresh_from_db()
    assert not service.muted


def test_delete_service(operator, world):
    service = world["quiet"]
    confirm = operator.get(f"/ui/services/{service.pk}/delete").content.decode()
    assert "Delete service" in confirm and "cannot be undone" in confirm
    response = operator.post(f"/ui/services/{service.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/ui/"
    assert not Service.objects.filter(pk=service.pk).exists()
    assert AuditEvent.objects.filter(event="service.deleted", actor="user:otto").exists()


def test_service_created_elsewhere_shows_up(viewer, db):
    service_create(heartbeat_name="from-api", alert_interval=1)
    assert _names(viewer.get("/ui/")) == ["from-api"]


def test_runbook_links_only_to_web_urls(viewer, db):
    web = service_create(heartbeat_name="web", alert_interval=5, runbook="https://wiki/run")
    odd = service_create(heartbeat_name="odd", alert_interval=5, runbook="javascript:alert(1)")
    assert b'<a href="https://wiki/run"' in viewer.get(f"/ui/services/{web.pk}").content
    html = viewer.get(f"/ui/services/{odd.pk}").content.decode()
    assert 'href="javascript' not in html and "javascript:alert(1)" in html


# --- Schedule kinds and job settings -------------------------------------------------------------

BASE = {"team": "payments", "priority": "p3", "grace_period_seconds": "0", "active": "on"}


def _detail_text(client, service) -> str:
    html = client.get(f"/ui/services/{service.pk}").content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_create_interval_service_with_job_settings(operator, world):
    response = operator.post(
        "/ui/services/new",
        {
            **BASE,
            "heartbeat_name": "queue-worker",
            "schedule_kind": "interval",
            "alert_interval": "5",
            "threshold": "2",
            "max_duration": "1h30m",
            "failure_threshold": "3",
            "slow_run_factor": "2.5",
        },
    )
    assert response.status_code == 302
    service = Service.objects.get(heartbeat_name="queue-worker")
    assert (service.schedule_kind, service.alert_interval, service.threshold) == ("interval", 5, 2)
    assert service.cron_expression == ""
    assert (service.max_duration_seconds, service.failure_threshold, service.slow_run_factor) == (
        5400,
        3,
        2.5,
    )
    text = _detail_text(operator, service)
    assert "Schedule 2 beats / 5 min" in text
    assert "Hung-run alert after 1.5 h" in text
    assert "Failed-run alert after 3 in a row" in text
    assert "Slow-run alert over 2.5\N{MULTIPLICATION SIGN} p95" in text


def test_create_at_least_service(operator, world):
    response = operator.post(
        "/ui/services/new",
        {
            **BASE,
            "heartbeat_name": "ingest",
            "schedule_kind": "at_least",
            # the interval fields hold their defaults (hidden by the script): ignored
            "alert_interval": "5",
            "threshold": "1",
            "at_least_count": "10",
            "at_least_window": "60",
        },
    )
    assert response.status_code == 302
    service = Service.objects.get(heartbeat_name="ingest")
    assert (service.schedule_kind, service.threshold, service.alert_interval) == (
        "at_least",
        10,
        60,
    )
    assert (service.max_duration_seconds, service.failure_threshold, service.slow_run_factor) == (
        None,
        1,
        None,
    )
    text = _detail_text(operator, service)
    assert "Schedule at least 10 beats / 1 h" in text
    assert "Hung-run alert at the next deadline" in text and "Slow-run alert off" in text


def test_create_cron_service_shows_its_schedule_and_next_expected_time(operator, world):
    response = operator.post(
        "/ui/services/new",
        {
            **BASE,
            "heartbeat_name": "nightly-backup",
            "schedule_kind": "cron",
            "cron_expression": "0  3 * * *",
            "schedule_timezone": "Europe/Berlin",
            "grace_period_seconds": "600",
            "threshold": "4",  # an interval field: ignored for cron
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    service = Service.objects.get(heartbeat_name="nightly-backup")
    assert (service.schedule_kind, service.cron_expression, service.schedule_timezone) == (
        "cron",
        "0 3 * * *",
        "Europe/Berlin",
    )
    assert service.threshold == 1
    assert service.alert_interval in (1380, 1440, 1500)  # the cron period: a day (23/25 h at DST)
    html = operator.get(f"/ui/services/{service.pk}").content.decode()
    assert "cron <code>0 3 * * *</code> Europe/Berlin, grace 10 min" in html
    expected = service.next_deadline_at - timedelta(minutes=10)
    local = expected.astimezone(ZoneInfo("Europe/Berlin"))
    assert local.hour == 3 and local.minute == 0
    next_expected = html[html.index('data-testid="next-expected"') :]
    assert (
        f"{local:%a %Y-%m-%d} 03:00 {local.tzname()} (UTC+0{local.utcoffset().seconds // 3600}:00)"
        in (next_expected[:300])
    )
    # the list shows the same summary
    assert (
        "cron <code>0 3 * * *</code> Europe/Berlin, grace 10 min"
        in operator.get("/ui/").content.decode()
    )
    # editing: the form holds the cron fields; the repeat interval is the default (blank)
    form = operator.get(f"/ui/services/{service.pk}/edit").content.decode()
    assert 'value="0 3 * * *"' in form and 'value="Europe/Berlin"' in form
    assert re.search(r'<input type="radio" name="schedule_kind" value="cron"[^>]*checked', form)
    assert re.search(r'name="cron_repeat_minutes"(?![^>]*value=)', form)
    # saving the form as shown changes nothing
    response = operator.post(
        f"/ui/services/{service.pk}/edit",
        {
            **BASE,
            "service_name": "nightly-backup",
            "schedule_kind": "cron",
            "cron_expression": "0 3 * * *",
            "schedule_timezone": "Europe/Berlin",
            "grace_period_seconds": "600",
            "failure_threshold": "1",
        },
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(event="service.updated", object_id=str(service.pk))


def test_edit_switches_between_schedule_kinds(operator, world):
    service = world["service"]
    data = {**BASE, "service_name": "Billing", "failure_threshold": "1"}
    response = operator.post(
        f"/ui/services/{service.pk}/edit",
        {
            **data,
            "schedule_kind": "cron",
            "cron_expression": "*/15 * * * *",
            "schedule_timezone": "UTC",
            "cron_repeat_minutes": "30",
        },
    )
    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.schedule_kind, service.cron_expression, service.alert_interval) == (
        "cron",
        "*/15 * * * *",
        30,
    )
    # back to an interval: the cron expression goes
    response = operator.post(
        f"/ui/services/{service.pk}/edit",
        {**data, "schedule_kind": "interval", "alert_interval": "10", "threshold": "1"},
    )
    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.schedule_kind, service.cron_expression, service.alert_interval) == (
        "interval",
        "",
        10,
    )
    # to cron with a blank repeat interval: the cron period
    operator.post(
        f"/ui/services/{service.pk}/edit",
        {
            **data,
            "schedule_kind": "cron",
            "cron_expression": "0 * * * *",
            "schedule_timezone": "UTC",
        },
    )
    service.refresh_from_db()
    assert (service.schedule_kind, service.alert_interval) == ("cron", 60)
    events = AuditEvent.objects.filter(event="service.updated", object_id=str(service.pk))
    assert events.count() == 3


CRON = {**BASE, "heartbeat_name": "fresh", "schedule_kind": "cron", "schedule_timezone": "UTC"}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron_expression": "0 3 * *"}, "cron_expression", "Use five fields"),
        ({"cron_expression": "0 25 * * *"}, "cron_expression", "is not a valid cron expression"),
        ({"cron_expression": "0 0 30 2 *"}, "cron_expression", "never fires"),
        ({"cron_expression": ""}, "cron_expression", "Enter a cron expression such as 0 3 * * *"),
        (
            {"cron_expression": "0 3 * * *", "schedule_timezone": "CET"},
            "schedule_timezone",
            "CET is an abbreviation, not a time zone",
        ),
        (
            {"cron_expression": "0 3 * * *", "schedule_timezone": "Europe/Berln"},
            "schedule_timezone",
            "did you mean Europe/Berlin",
        ),
        (
            {"cron_expression": "0 3 * * *", "cron_repeat_minutes": "0"},
            "cron_repeat_minutes",
            "greater than or equal to 0.1",
        ),
        (
            {"cron_expression": "0 3 * * *", "slow_run_factor": "1"},
            "slow_run_factor",
            "Must be more than 1",
        ),
        (
            {"cron_expression": "0 3 * * *", "max_duration": "soon"},
            "max_duration",
            "not a duration",
        ),
        (
            {"cron_expression": "0 3 * * *", "failure_threshold": "0"},
            "failure_threshold",
            "greater than or equal to 1",
        ),
        (
            {"schedule_kind": "at_least", "at_least_count": "", "at_least_window": "60"},
            "at_least_count",
            "Enter how many heartbeats each window needs",
        ),
        (
            {"schedule_kind": "at_least", "at_least_count": "3", "at_least_window": "0"},
            "at_least_window",
            "greater than or equal to 0.1",
        ),
        (
            {"schedule_kind": "interval", "alert_interval": ""},
            "alert_interval",
            "Enter the interval",
        ),
    ],
)
def test_schedule_fields_say_what_to_fix(operator, world, changes, field, message):
    response = operator.post("/ui/services/new", {**CRON, **changes})
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<p class="error" id="id_{field}_error">' in html
    assert message in html[html.index('id="error-summary"') :]
    assert not Service.objects.filter(heartbeat_name="fresh").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"cron_expression": "0 3 * * *"},
        {"cron_expression": "0 3 * *"},
        {"cron_expression": "0 0 30 2 *"},
        {"cron_expression": "0 3 * * *", "schedule_timezone": "US/Eastern"},
        {"cron_expression": "0 3 * * *", "slow_run_factor": "0.5"},
        {"cron_expression": "0 3 * * *", "max_duration": "90"},
    ],
)
def test_portal_and_api_accept_and_refuse_the_same_services(operator, writer, world, changes):
    data = {**CRON, **changes}
    portal = operator.post("/ui/services/new", data)
    Service.objects.filter(heartbeat_name="fresh").delete()
    payload = {
        k: data[k]
        for k in ("heartbeat_name", "team", "priority", "schedule_kind", "cron_expression")
    }
    payload["schedule_timezone"] = data["schedule_timezone"]
    if "slow_run_factor" in data:
        payload["slow_run_factor"] = float(data["slow_run_factor"])
    if "max_duration" in data:
        payload["max_duration_seconds"] = int(data["max_duration"])
    api = writer.post("/v2/services", payload)
    assert (portal.status_code == 302) == (api.status_code == 201), api.content


def test_the_service_form_works_without_script(operator, world):
    """Every kind's fields are in the page (the script only hides them), each group named."""
    html = operator.get("/ui/services/new").content.decode()
    for name in (
        "alert_interval",
        "threshold",
        "at_least_count",
        "at_least_window",
        "cron_expression",
        "schedule_timezone",
        "cron_repeat_minutes",
        "max_duration",
        "failure_threshold",
        "slow_run_factor",
    ):
        assert f'name="{name}"' in html
    assert 'data-show-when="schedule_kind=cron"' in html
    assert " hidden" not in html.split('data-show-when="schedule_kind=cron"')[1][:5]
    assert '<option value="Europe/Berlin">' in html  # zone suggestions
