"""Maintenance windows from the browser: create, edit and delete (one-time and recurring, every
scope), the preview of the next occurrences in the window's zone across DST changes, the
messages for bad input, and the same answers as the API for the same window."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from heartbeats.maintenance import window_create
from heartbeats.models import MaintenanceWindow
from medic.models import AuditEvent

pytestmark = pytest.mark.django_db

ONE_TIME = {
    "name": "db-upgrade",
    "description": "PostgreSQL 17 upgrade, CHG-1234",
    "kind": "once",
    "timezone": "America/New_York",
    "starts_at": "2026-12-05T22:00",
    "ends_at": "2026-12-06T02:00",
    "scope": "pattern",
    "pattern": "db-*",
    "notify": "on",
}
RECURRING = {
    "name": "sunday-patching",
    "kind": "recurring",
    "timezone": "Europe/Berlin",
    "cron_expression": "0 2 * * 0",
    "duration_minutes": "120",
    "scope": "services",
    "services": "billing-cron,\nQUIET-JOB",
}


def _text(html: str) -> str:
    """The page as text: tags dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _preview_rows(html: str) -> list[str]:
    """The preview table's rows as text, without the "over" / "open now" badges (they depend
    on today's date)."""
    section = html[html.index('data-testid="preview"') :]
    section = section[: section.index("</table>")]
    section = re.sub(r' <span class="badge[^"]*">(over|open now)</span>', "", section)
    return [_text(row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)[1:]]


def test_operator_creates_a_one_time_window_in_local_time(operator, world):
    response = operator.post("/ui/maintenance/new", ONE_TIME)
    assert response.status_code == 302 and response["Location"] == "/ui/maintenance"
    window = MaintenanceWindow.objects.get(name="db-upgrade")
    # 22:00 EST is 03:00 UTC the next day
    assert window.starts_at == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    assert window.ends_at == datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    assert (window.time_zone, window.scope, window.pattern, window.team) == (
        "America/New_York",
        "pattern",
        "db-*",
        "",
    )
    assert window.description == "PostgreSQL 17 upgrade, CHG-1234"
    assert window.notify and not window.recurring and window.created_by == "user:otto"
    assert AuditEvent.objects.filter(
        event="maintenance_window.created", actor="user:otto", object_id=str(window.pk)
    ).exists()
    page = _text(operator.get("/ui/maintenance").content.decode())
    assert "Created maintenance window db-upgrade." in page
    assert "2026-12-05 22:00 EST (UTC-05:00) → 2026-12-06 02:00 EST (UTC-05:00)" in page


def test_operator_creates_a_recurring_window_for_listed_services(operator, world):
    response = operator.post("/ui/maintenance/new", RECURRING)  # notify unticked
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get(name="sunday-patching")
    assert (window.cron_expression, window.duration_minutes, window.time_zone) == (
        "0 2 * * 0",
        120,
        "Europe/Berlin",
    )
    assert window.starts_at is None and window.ends_at is None and not window.notify
    assert sorted(s.heartbeat_name for s in window.services.all()) == ["billing-cron", "quiet-job"]
    html = operator.get("/ui/maintenance").content.decode()
    assert "0 2 * * 0</span> (Europe/Berlin) for 2 h" in html
    # the service page lists it, and offers to plan another
    detail = operator.get(f"/ui/services/{world['service'].pk}").content.decode()
    assert "sunday-patching" in detail
    assert 'href="/ui/maintenance/new?service=billing-cron"' in detail
    form = operator.get("/ui/maintenance/new?service=billing-cron").content.decode()
    assert re.search(r'<textarea name="services"[^>]*>\s*billing-cron</textarea>', form)


def test_edit_turns_a_recurring_window_into_a_one_time_team_window(operator, world):
    operator.post("/ui/maintenance/new", RECURRING)
    window = MaintenanceWindow.objects.get(name="sunday-patching")
    form = operator.get(f"/ui/maintenance/{window.pk}/edit").content.decode()
    assert 'value="0 2 * * 0"' in form and 'value="120"' in form
    assert "billing-cron\nquiet-job</textarea>" in form
    # the stored window's next occurrences are shown at once
    assert "Next 5 occurrences in Europe/Berlin (as saved)" in _text(form)
    assert all(row.startswith("Sun ") for row in _preview_rows(form)[:1])
    response = operator.post(
        f"/ui/maintenance/{window.pk}/edit",
        {
            "name": "payments-move",
            "description": "rack move",
            "kind": "once",
            "timezone": "Europe/Berlin",
            "starts_at": "2027-01-09 08:00",
            "ends_at": "2027-01-09 12:30",
            "scope": "team",
            "team": "payments",
            "cron_expression": "0 2 * * 0",  # left in the hidden recurring fields: ignored
            "duration_minutes": "120",
            "services": "billing-cron",
        },
    )
    assert response.status_code == 302
    window.refresh_from_db()
    assert window.name == "payments-move" and not window.recurring
    assert window.duration_minutes is None
    assert window.starts_at == datetime(2027, 1, 9, 7, 0, tzinfo=UTC)  # CET is UTC+1
    assert window.ends_at == datetime(2027, 1, 9, 11, 30, tzinfo=UTC)
    assert (window.scope, window.team) == ("team", "payments")
    assert window.services.count() == 0
    assert AuditEvent.objects.filter(event="maintenance_window.updated", actor="user:otto").exists()
    assert (
        "Saved maintenance window payments-move."
        in operator.get("/ui/maintenance").content.decode()
    )


def test_delete_asks_first_then_removes_the_window(operator, world):
    window = window_create(
        actor="tests", name="old", cron_expression="0 3 * * *", duration_minutes=30
    )
    confirm = operator.get(f"/ui/maintenance/{window.pk}/delete").content.decode()
    assert "Delete maintenance window" in confirm and "cannot be undone" in confirm
    response = operator.post(f"/ui/maintenance/{window.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/ui/maintenance"
    assert not MaintenanceWindow.objects.filter(pk=window.pk).exists()
    assert AuditEvent.objects.filter(event="maintenance_window.deleted", actor="user:otto").exists()
    assert "Deleted maintenance window old." in operator.get("/ui/maintenance").content.decode()


def test_deleting_an_open_window_says_what_happens(operator, world):
    window = window_create(
        actor="tests", name="now", cron_expression="* * * * *", duration_minutes=5
    )
    confirm = operator.get(f"/ui/maintenance/{window.pk}/delete").content.decode()
    assert "It is open now: alerts it holds back are sent at the next sweep" in confirm


def test_preview_of_a_daily_0230_berlin_window_across_spring_forward(operator, world):
    data = {
        "kind": "recurring",
        "timezone": "Europe/Berlin",
        "cron_expression": "30 2 * * *",
        "duration_minutes": "60",
        "scope": "all",
        "preview_from": "2027-03-26",
        "preview": "1",
    }
    response = operator.post("/ui/maintenance/new", data)  # no name yet: a preview needs none
    html = response.content.decode()
    assert response.status_code == 200 and 'class="error-summary"' not in html
    rows = _preview_rows(html)
    starts = [r for r in rows if r[:3] in {"Fri", "Sat", "Sun", "Mon", "Tue"}]
    assert starts == [
        "Fri 2027-03-26 02:30 CET (UTC+01:00) Fri 2027-03-26 03:30 CET (UTC+01:00) "
        "2027-03-26 01:30 → 2027-03-26 02:30 1 h",
        "Sat 2027-03-27 02:30 CET (UTC+01:00) Sat 2027-03-27 03:30 CET (UTC+01:00) "
        "2027-03-27 01:30 → 2027-03-27 02:30 1 h",
        # 02:30 does not exist on the spring-forward Sunday: the window opens at the jump
        "Sun 2027-03-28 03:00 CEST (UTC+02:00) Sun 2027-03-28 04:00 CEST (UTC+02:00) "
        "2027-03-28 01:00 → 2027-03-28 02:00 1 h",
        "Mon 2027-03-29 02:30 CEST (UTC+02:00) Mon 2027-03-29 03:30 CEST (UTC+02:00) "
        "2027-03-29 00:30 → 2027-03-29 01:30 1 h",
        "Tue 2027-03-30 02:30 CEST (UTC+02:00) Tue 2027-03-30 03:30 CEST (UTC+02:00) "
        "2027-03-30 00:30 → 2027-03-30 01:30 1 h",
    ]
    flags = rows[rows.index(starts[2]) + 1 : rows.index(starts[3])]
    assert flags == [
        "02:30 does not exist on 2027-03-28 (clocks jump from 02:00 to 03:00): starts at the "
        "jump, 03:00 CEST.",
        "DST change: now UTC+02:00 (CEST), was UTC+01:00; 03:00 local is 01:00 UTC.",
    ]
    assert rows.index(starts[1]) + 1 == rows.index(starts[2])  # no flag on an ordinary day
    page = _text(html)
    assert "Next 5 occurrences in Europe/Berlin, from 2027-03-26 00:00 CET (UTC+01:00)" in page
    assert "A preview only: nothing is saved" in page
    assert MaintenanceWindow.objects.count() == 0


def test_preview_across_fall_back_and_a_window_spanning_the_change(operator, world):
    data = {
        "kind": "recurring",
        "timezone": "Europe/Berlin",
        "cron_expression": "30 2 * * *",
        "duration_minutes": "120",
        "preview_from": "2027-10-31",
        "preview": "1",
    }
    rows = _preview_rows(operator.post("/ui/maintenance/new", data).content.decode())
    # 02:30 happens twice on 2027-10-31: the window opens at the first (CEST) and, lasting two
    # real hours, closes at 03:30 CET on the clock
    assert rows[0] == (
        "Sun 2027-10-31 02:30 CEST (UTC+02:00) Sun 2027-10-31 03:30 CET (UTC+01:00) "
        "2027-10-31 00:30 → 2027-10-31 02:30 2 h"
    )
    assert rows[1] == (
        "02:30 happens twice on 2027-10-31 (clocks fall back): starts at the first, 02:30 CEST."
    )
    assert rows[2] == (
        "Clocks change during this one (UTC+02:00 → UTC+01:00): it lasts 2 h and ends at "
        "03:30 CET on the clock."
    )
    assert rows[3].startswith("Mon 2027-11-01 02:30 CET (UTC+01:00)")


def test_preview_of_a_one_time_window_typed_in_a_skipped_hour(operator, world):
    data = {
        **ONE_TIME,
        "timezone": "Europe/Berlin",
        "starts_at": "2027-03-28T02:30",
        "ends_at": "2027-03-28T05:00",
        "preview": "1",
    }
    html = operator.post("/ui/maintenance/new", data).content.decode()
    page = _text(html)
    assert (
        "2027-03-28 02:30 does not exist in Europe/Berlin (the clocks skip it): the window "
        "starts at the jump, 03:00 CEST." in page
    )
    assert "The window in Europe/Berlin" in page
    assert _preview_rows(html)[0].startswith(
        "Sun 2027-03-28 03:00 CEST (UTC+02:00) Sun 2027-03-28 05:00 CEST (UTC+02:00) "
        "2027-03-28 01:00 → 2027-03-28 03:00 2 h"
    )
    # saved as previewed
    operator.post("/ui/maintenance/new", {k: v for k, v in data.items() if k != "preview"})
    window = MaintenanceWindow.objects.get(name="db-upgrade")
    assert window.starts_at == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)


BAD_INPUT = [
    ({**RECURRING, "cron_expression": "0 2 * *"}, "cron_expression", "Use five fields"),
    ({**RECURRING, "cron_expression": "0 25 * * *"}, "cron_expression", "is not a valid cron"),
    ({**RECURRING, "cron_expression": "0 0 30 2 *"}, "cron_expression", "never fires"),
    ({**RECURRING, "duration_minutes": ""}, "duration_minutes", "Required for a recurring window"),
    ({**RECURRING, "duration_minutes": "50000"}, "duration_minutes", "At most 30 days."),
    ({**ONE_TIME, "ends_at": "2026-12-05T21:00"}, "ends_at", "Must be after the start."),
    ({**ONE_TIME, "ends_at": ""}, "ends_at", "Enter when the window ends"),
    ({**ONE_TIME, "starts_at": "next friday"}, "starts_at", "is not a date and time"),
    ({**ONE_TIME, "ends_at": "2027-02-05T21:00"}, "ends_at", "A window lasts at most 30 days."),
    ({**ONE_TIME, "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
    ({**ONE_TIME, "timezone": "EST"}, "timezone", "use an IANA name such as America/New_York"),
    ({**RECURRING, "timezone": "US/Eastern"}, "timezone", "use America/New_York"),
    ({**RECURRING, "services": ""}, "services", "List at least one service"),
    (
        {**RECURRING, "services": "billing-cron, nope"},
        "services",
        "heartbeat name &#x27;nope&#x27;",
    ),
    ({**ONE_TIME, "scope": "team"}, "team", "Required when scope is &#x27;team&#x27;."),
    ({**ONE_TIME, "pattern": ""}, "pattern", "Required when scope is &#x27;pattern&#x27;"),
    ({**ONE_TIME, "name": ""}, "name", "This field is required."),
    ({**ONE_TIME, "name": "x" * 101}, "name", "at most 100 characters"),
]


@pytest.mark.parametrize("previewing", [False, True])
@pytest.mark.parametrize(("data", "field", "message"), BAD_INPUT)
def test_bad_input_says_what_to_fix(operator, world, data, field, message, previewing):
    if previewing and field == "name":
        return  # a preview does not need the name
    response = operator.post(
        "/ui/maintenance/new", {**data, **({"preview": "1"} if previewing else {})}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="error-summary"' in html
    assert f'<p class="error" id="id_{field}_error">' in html
    assert message in html[html.index('id="error-summary"') :]
    assert 'data-testid="preview"' in html and "Next 5" not in html  # no preview of bad input
    assert MaintenanceWindow.objects.count() == 0


def test_a_taken_name_is_refused(operator, world):
    window_create(actor="tests", name="db-upgrade", cron_expression="0 3 * * *", duration_minutes=5)
    html = operator.post("/ui/maintenance/new", ONE_TIME).content.decode()
    assert '<p class="error" id="id_name_error">' in html and "already exists" in html
    assert MaintenanceWindow.objects.count() == 1


def _api_payload(data: dict) -> dict:
    """The same window as the portal form, in the API's words (the form's local times carry
    the zone's offset; services by name)."""
    payload = {
        k: v
        for k, v in data.items()
        if k in {"name", "description", "timezone", "scope", "team", "pattern"}
    }
    if data.get("kind") == "recurring":
        payload["cron_expression"] = data.get("cron_expression", "")
        if data.get("duration_minutes"):
            payload["duration_minutes"] = int(data["duration_minutes"])
    else:
        for name in ("starts_at", "ends_at"):
            payload[name] = data[name] + "-05:00"  # America/New_York in December
    if data.get("scope") == "services":
        payload["services"] = [n.strip() for n in re.split(r"[,\n]", data["services"]) if n.strip()]
    payload["notify"] = "notify" in data
    return payload


@pytest.mark.parametrize(
    "data",
    [
        ONE_TIME,
        {**ONE_TIME, "ends_at": "2026-12-05T21:00"},
        {**ONE_TIME, "scope": "team", "team": ""},
        {**RECURRING, "timezone": "America/New_York"},
        {**RECURRING, "timezone": "America/New_York", "cron_expression": "0 0 30 2 *"},
        {**RECURRING, "timezone": "America/New_York", "duration_minutes": "0"},
        {**RECURRING, "timezone": "America/New_York", "services": ""},
    ],
)
def test_portal_and_api_accept_and_refuse_the_same_windows(operator, writer, world, data):
    portal = operator.post("/ui/maintenance/new", data)
    saved = MaintenanceWindow.objects.filter(name=data["name"]).first()
    if saved:
        saved.delete()
    api = writer.post("/v2/maintenance-windows", _api_payload(data))
    assert (portal.status_code == 302) == (api.status_code == 201), api.content
    if api.status_code == 201:
        created = MaintenanceWindow.objects.get(name=data["name"])
        assert (created.starts_at, created.ends_at) == (
            (saved.starts_at, saved.ends_at) if saved else (None, None)
        )


def test_viewer_sees_the_windows_but_no_controls_and_cannot_post(viewer, world):
    window = window_create(actor="tests", name="w", cron_expression="0 3 * * *", duration_minutes=5)
    html = viewer.get("/ui/maintenance").content.decode()
    assert "w" in html and "/ui/maintenance/new" not in html
    assert f"/ui/maintenance/{window.pk}/edit" not in html and "/delete" not in html
    assert viewer.get("/ui/maintenance/new").status_code == 403
    assert viewer.post("/ui/maintenance/new", ONE_TIME).status_code == 403
    assert viewer.post(f"/ui/maintenance/{window.pk}/edit", ONE_TIME).status_code == 403
    assert viewer.post(f"/ui/maintenance/{window.pk}/delete").status_code == 403
    assert list(MaintenanceWindow.objects.values_list("name", flat=True)) == ["w"]


def test_operator_sees_the_controls(operator, world):
    window = window_create(actor="tests", name="w", cron_expression="0 3 * * *", duration_minutes=5)
    html = operator.get("/ui/maintenance").content.decode()
    assert 'href="/ui/maintenance/new"' in html
    assert f'href="/ui/maintenance/{window.pk}/edit"' in html
    assert f'href="/ui/maintenance/{window.pk}/delete"' in html
