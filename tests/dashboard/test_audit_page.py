"""The audit log page: the filters and cursor pages of GET /v2/audit, masked details, and Export
as JSON Lines or CSV, byte for byte what GET /v2/audit/export streams for the same filters."""

from __future__ import annotations

import re

import pytest
from django.http import StreamingHttpResponse

from medic.apikeys import api_key_create
from remediation.audit.models import AuditEntry
from remediation.secrets.services import secret_set
from tests.conftest import ApiClient
from tests.dashboard.test_scripts_pages import queries
from tests.remediation.test_audit_api import _row

pytestmark = pytest.mark.django_db


@pytest.fixture
def story():
    return [
        _row(0, playbook="restart-web", service="web", execution_id=1),
        _row(1, event="step.finished", playbook="restart-web", service="web", execution_id=1),
        _row(
            2, event="approval.granted", actor="slack:U42", playbook="restart-web", execution_id=1
        ),
        _row(3, playbook="disk-full", service="db", execution_id=2),
        _row(4, event="step.finished", playbook="disk-full", service="db", execution_id=2),
        _row(5, event="script.created", actor="user:otto", object_type="script", object_id="greet"),
    ]


@pytest.fixture
def reader(db) -> ApiClient:
    return ApiClient(api_key_create(name="r", scopes=["read"], actor="tests").secret)


def _shown(response) -> list[int]:
    return [int(x) for x in re.findall(r'data-entry="(\d+)"', response.content.decode())]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "since=2026-11-02T03:03:00",
        "until=2026-11-02T03:02",
        "since=2026-11-02T03:01&until=2026-11-02T03:04",
        "actor=slack:U42",
        "event=step.finished",
        "event=step.*",
        "playbook=disk-full",
        "service=web",
        "execution=1",
        "playbook=restart-web&event=step.*",
        "actor=&event=&playbook=",  # empty fields of the form are no filter
    ],
)
def test_filters_show_what_the_api_lists(viewer, reader, story, query):
    page = viewer.get(f"/ui/audit?{query}")
    assert page.status_code == 200
    api_query = "&".join(p for p in query.split("&") if p and not p.endswith("="))
    api = reader.get(f"/v2/audit?{api_query}")
    assert _shown(page) == [r["id"] for r in api.json()["results"]]
    assert _shown(page)  # each filter matches something


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("execution=abc", "execution", "A valid integer is required."),
        ("event=Bad Event", "event", "This value does not match the required pattern."),
        ("since=2026-11-02T04:00&until=2026-11-02T03:00", "until", "Must be later than since."),
        ("since=yesterday", "since", "Datetime has wrong format."),
        ("colour=red", "colour", "Unknown filter."),
        ("cursor=garbage", "cursor", "Invalid cursor"),
    ],
)
def test_invalid_filters_are_shown_with_the_apis_messages(viewer, story, query, field, message):
    page = viewer.get(f"/ui/audit?{query}")
    assert page.status_code == 400
    errors = page.content.decode().split('data-testid="filter-errors"')[1].split("</div>\n")[0]
    assert f"{field}: {message}" in errors
    assert _shown(page) == []


def test_cursor_pages_go_older_and_back(viewer):
    rows = [_row(i, object_id=str(i)) for i in range(120)]
    first = viewer.get("/ui/audit?event=execution.*")
    assert _shown(first) == [e.pk for e in reversed(rows)][:50]
    older = re.search(r'href="([^"]+)" rel="next"', first.content.decode()).group(1)
    assert "cursor=" in older and "event=execution.*" in older.replace("%2A", "*")
    second = viewer.get(older.replace("&amp;", "&"))
    assert _shown(second) == [e.pk for e in reversed(rows)][50:100]
    # rows appended meanwhile do not shift the pages
    _row(500, object_id="late")
    third_url = re.search(r'href="([^"]+)" rel="next"', second.content.decode()).group(1)
    third = viewer.get(third_url.replace("&amp;", "&"))
    assert _shown(third) == [e.pk for e in reversed(rows)][100:]
    assert 'rel="next"' not in third.content.decode()
    newer = re.search(r'href="([^"]+)" rel="prev"', third.content.decode()).group(1)
    assert _shown(viewer.get(newer.replace("&amp;", "&"))) == _shown(second)


def test_details_are_masked(viewer):
    _row(0, details={"note": "before"})
    entry = _row(1, details={"token": "xoxb-stored-later-secret"})
    secret_set(name="slack_token", value="xoxb-stored-later-secret", actor="tests")
    body = viewer.get("/ui/audit").content.decode()
    assert f'data-entry="{entry.pk}"' in body
    assert "xoxb-stored-later-secret" not in body and "••••••" in body


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_streams_what_the_api_exports(viewer, reader, story, fmt):
    page = viewer.get("/ui/audit?playbook=restart-web&actor=")
    link = f"/ui/audit/export?playbook=restart-web&amp;format={fmt}"
    assert link in page.content.decode()
    response = viewer.get(link.replace("&amp;", "&"))
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    api = reader.get(f"/v2/audit/export?playbook=restart-web&format={fmt}")
    assert response["Content-Type"] == api["Content-Type"]
    assert response["Content-Disposition"].startswith('attachment; filename="medic-audit-')
    body = b"".join(response.streaming_content)
    assert body == b"".join(api.streaming_content)
    lines = body.decode().splitlines()
    assert len(lines) == (3 if fmt == "json" else 4)  # three rows (and the CSV header)


def test_export_with_a_bad_filter_shows_the_page_with_the_problem(viewer, story):
    response = viewer.get("/ui/audit/export?execution=x&format=json")
    assert response.status_code == 400
    assert b"execution: A valid integer is required." in response.content
    response = viewer.get("/ui/audit/export?format=xml")
    assert response.status_code == 400 and b"format: One of json, csv." in response.content


def test_viewers_read_and_export_but_post_nothing(viewer, norole, story):
    assert viewer.get("/ui/audit/export").status_code == 200
    assert viewer.post("/ui/audit").status_code == 403
    assert viewer.post("/ui/audit/export").status_code == 403
    assert norole.get("/ui/audit").status_code == 403
    assert norole.get("/ui/audit/export").status_code == 403
    assert AuditEntry.objects.count() == len(story)


def test_the_page_has_a_bounded_number_of_queries(viewer, story):
    few = queries(viewer, "/ui/audit")
    for i in range(80):
        _row(10 + i, object_id=str(i), details={"n": i})
    assert queries(viewer, "/ui/audit") == few
