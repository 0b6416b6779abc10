"""GET /v2/audit and GET /v2/audit/export: filters, cursor pages, scopes, masking, streaming."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse

from remediation.agents import agent_create
from remediation.audit.api import LINES_PER_CHUNK
from remediation.audit.models import AuditEntry
from remediation.audit.services import audit_record
from remediation.secrets.services import secret_set
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
TOKEN = "xoxb-very-secret-token"


def _row(minutes: int, **fields) -> AuditEntry:
    base = {
        "actor": "system",
        "event": "execution.started",
        "object_type": "execution",
        "object_id": "1",
        "details": {},
        "created_at": T0 + timedelta(minutes=minutes),
    }
    return AuditEntry.objects.create(**{**base, **fields})


@pytest.fixture
def story():
    """Two executions of two playbooks on two services, by different actors."""
    return [
        _row(0, playbook="restart-web", service="web", execution_id=1),
        _row(1, event="step.finished", playbook="restart-web", service="web", execution_id=1),
        _row(
            2, event="approval.granted", actor="slack:U42", playbook="restart-web", execution_id=1
        ),
        _row(3, playbook="disk-full", service="db", execution_id=2),
        _row(4, event="step.finished", playbook="disk-full", service="db", execution_id=2),
        _row(5, event="secret.created", actor="key:ops#3", object_type="secret", object_id="pw"),
    ]


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def test_the_list_is_newest_first_with_every_field(reader, story):
    response = reader.get("/v2/audit")
    assert _ids(response) == [e.pk for e in reversed(story)]
    first = response.json()["results"][-1]
    assert first == {
        "id": story[0].pk,
        "created_at": "2026-11-02T03:00:00+00:00",
        "actor": "system",
        "event": "execution.started",
        "object_type": "execution",
        "object_id": "1",
        "playbook": "restart-web",
        "service": "web",
        "execution_id": 1,
        "details": {},
    }
    assert response.json()["results"][0]["playbook"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"since": "2026-11-02T03:03:00Z"}, [3, 4, 5]),
        ({"until": "2026-11-02T03:02:00Z"}, [0, 1]),
        ({"since": "2026-11-02T04:01:00+01:00", "until": "2026-11-02T03:04:00Z"}, [1, 2, 3]),
        ({"since": "2026-11-02T04:04:00 01:00"}, [4, 5]),  # "+" sent unencoded
        ({"actor": "slack:U42"}, [2]),
        ({"event": "step.finished"}, [1, 4]),
        ({"event": "execution.*"}, [0, 3]),
        ({"playbook": "restart-web"}, [0, 1, 2]),
        ({"service": "db"}, [3, 4]),
        ({"execution": "2"}, [3, 4]),
        ({"playbook": "restart-web", "event": "step.finished"}, [1]),
        ({"actor": "nobody"}, []),
    ],
)
def test_filters(reader, story, query, expected):
    assert sorted(_ids(reader.get("/v2/audit", query))) == [story[i].pk for i in expected]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"execution": "abc"}, "execution"),
        ({"execution": "0"}, "execution"),
        ({"event": "Not An Event"}, "event"),
        ({"since": "2026-11-02T05:00:00Z", "until": "2026-11-02T04:00:00Z"}, "until"),
        ({"actr": "system"}, "actr"),
    ],
)
@pytest.mark.parametrize("path", ["/v2/audit", "/v2/audit/export"])
def test_invalid_filters_answer_400_in_the_envelope(reader, path, query, field):
    response = reader.get(path, query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filter" and list(error["fields"]) == [field]


def test_cursor_pages_are_stable_while_rows_are_added(reader):
    original = [_row(i, object_id=str(i)).pk for i in range(25)]
    seen: list[int] = []
    page = reader.get("/v2/audit", {"limit": 10})
    while True:
        seen += _ids(page)
        for i in range(3):  # activity between page requests
            audit_record(
                actor="system",
                event="step.started",
                object_type="step",
                object_id=str(i),
                details={},
            )
        following = page.json()["next"]
        if not following:
            break
        page = reader.get(following)
    assert seen == sorted(original, reverse=True)


def test_scopes(reader, writer, admin, outsider, story):
    for client in (reader, admin):
        assert client.get("/v2/audit").status_code == 200
        assert client.get("/v2/audit/export").status_code == 200
    # scopes are not nested: a key for writing heartbeats does not read the audit log
    assert writer.get("/v2/audit").status_code == 403
    assert writer.get("/v2/audit/export").status_code == 403
    for path in ("/v2/audit", "/v2/audit/export"):
        refused = outsider.get(path)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "not_authenticated"
    agent_key = ApiClient(agent_create(name="web-1", labels=[], actor="tests").secret)
    assert agent_key.get("/v2/audit").status_code == 403
    assert agent_key.get("/v2/audit/export").status_code == 403


def test_secrets_never_show_in_the_list_or_the_exports(reader, admin):
    # written before the secret existed: masked on the way out
    _row(0, event="webhook.response", details={"body": f"echo {TOKEN}"})
    secret_set(name="slack_token", value=TOKEN, actor="system")
    # written after: masked in the row itself
    audit_record(
        actor="system",
        event="webhook.request",
        object_type="step",
        object_id="notify",
        details={"headers": {"Authorization": f"Bearer {TOKEN}"}},
    )
    responses = [
        reader.get("/v2/audit"),
        reader.get("/v2/audit/export", {"format": "json"}),
        reader.get("/v2/audit/export", {"format": "csv"}),
    ]
    bodies = [responses[0].content] + [b"".join(r.streaming_content) for r in responses[1:]]
    for body in bodies:
        assert TOKEN.encode() not in body
        assert "••••••".encode() in body
    listed = responses[0].json()["results"]
    assert listed[0]["details"] == {"headers": {"Authorization": "Bearer ••••••"}}
    assert listed[1]["event"] == "secret.created"
    assert listed[2]["details"] == {"body": "echo ••••••"}


ROWS = 10_050


@pytest.fixture
def many():
    tricky = {"note": 'comma, "quote"\nnew line', "n": 1, "é": ["ü", None]}
    AuditEntry.objects.bulk_create(
        AuditEntry(
            created_at=T0 + timedelta(seconds=i),
            actor=f"key:bulk#{i % 7}",
            event="step.finished" if i % 2 else "execution.started",
            object_type="step",
            object_id=str(i),
            service="web" if i % 3 == 0 else "",
            execution_id=i // 10,
            details={**tricky, "i": i},
        )
        for i in range(ROWS)
    )
    return list(AuditEntry.objects.order_by("id").values_list("id", flat=True))


def _stream(response) -> tuple[list[bytes], bytes]:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    chunks = list(response.streaming_content)
    return chunks, b"".join(chunks)


def _open_cursors() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE '_django_curs_%%'")
        return cursor.fetchone()[0]


def test_the_export_reads_through_a_server_side_cursor(reader, many):
    response = reader.get("/v2/audit/export", {"format": "json"})
    stream = iter(response.streaming_content)
    first = next(stream)
    # rows arrive while a PostgreSQL cursor holds the rest: not one list in memory
    assert first.count(b"\n") == LINES_PER_CHUNK
    assert _open_cursors() == 1
    rest = b"".join(stream)  # the end of the stream closes the response and the cursor
    assert (first + rest).count(b"\n") == ROWS
    assert _open_cursors() == 0


def test_json_lines_export_streams_every_row(reader, many):
    response = reader.get("/v2/audit/export", {"format": "json"})
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="medic-audit-')
    chunks, body = _stream(response)
    # written in chunks while the rows are read, never as one document
    assert len(chunks) >= ROWS // LINES_PER_CHUNK
    assert chunks[0].count(b"\n") == LINES_PER_CHUNK
    lines = body.decode().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["id"] for e in entries] == many  # all of them, oldest first
    assert entries[5]["details"]["note"] == 'comma, "quote"\nnew line'
    assert entries[5]["details"]["é"] == ["ü", None]


def test_csv_export_streams_every_row_and_parses(reader, many):
    response = reader.get("/v2/audit/export", {"format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    chunks, body = _stream(response)
    assert len(chunks) >= ROWS // LINES_PER_CHUNK
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    assert [int(r["id"]) for r in rows] == many
    assert list(rows[0]) == [
        "id",
        "created_at",
        "actor",
        "event",
        "object_type",
        "object_id",
        "playbook",
        "service",
        "execution_id",
        "details",
    ]
    assert json.loads(rows[3]["details"])["note"] == 'comma, "quote"\nnew line'
    assert rows[3]["service"] == "web" and rows[1]["service"] == "" and rows[1]["playbook"] == ""


def test_exports_apply_the_filters(reader, many):
    query = {"service": "web", "event": "execution.*", "since": "2026-11-02T03:00:30Z"}
    _, body = _stream(reader.get("/v2/audit/export", {**query, "format": "json"}))
    ids = [json.loads(line)["id"] for line in body.decode().splitlines()]
    expected = [pk for i, pk in enumerate(many) if i % 6 == 0 and i >= 30]
    assert ids == expected
    _, body = _stream(reader.get("/v2/audit/export", {**query, "format": "csv"}))
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(body.decode()))] == expected


def test_an_unknown_format_is_refused(reader):
    response = reader.get("/v2/audit/export", {"format": "xml"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"format": ["One of json, csv."]}
