"""Remediation pages: playbook list and detail, the YAML editor and its live validation,
version restore, mode switch, breaker reset, Run now, executions, cancel and the approvals
inbox. Viewers see everything; the server refuses their changes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from heartbeats.services import service_create
from remediation.playbooks import engine, services
from remediation.playbooks.models import (
    CircuitBreaker,
    Execution,
    ExecutionState,
    Playbook,
)
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9"


@pytest.fixture
def shadow(db) -> Playbook:
    return services.playbook_save(
        document=playbook_yaml("restart-worker", URL, mode="shadow"), actor="tests", reason="first"
    ).playbook


@pytest.fixture
def worker(db):
    return service_create(heartbeat_name="worker-1", alert_interval=5, team="payments")


def _approval_playbook() -> Playbook:
    doc = playbook_yaml("needs-ok", URL).replace("steps:", "approval: required\nsteps:", 1)
    return services.playbook_save(document=doc, actor="tests").playbook


def test_list_shows_mode_trigger_version_last_run_and_circuit(viewer, shadow, worker):
    execution = engine.execution_create(
        playbook=shadow, service=worker, alert_id=None, trigger={}, automatic=False, actor="t"
    )
    CircuitBreaker.objects.create(
        scope="playbook", key="restart-worker", opened_at=execution.created_at, opened_reason="x"
    )
    body = viewer.get("/ui/playbooks").content.decode()
    assert "restart-worker" in body and "worker-*" in body
    assert ">shadow<" in body and "v1" in body and ">open<" in body
    assert f"/ui/executions/{execution.pk}" in body
    assert "New playbook" not in body  # viewers get no edit entry points


def test_list_filters_by_team_of_the_services_a_trigger_covers(viewer, shadow, worker):
    services.playbook_save(document=playbook_yaml("fix-db", URL, pattern="db-*"), actor="t")
    service_create(heartbeat_name="db-main", alert_interval=5, team="storage")
    body = viewer.get("/ui/playbooks?team=payments").content.decode()
    assert "restart-worker" in body and "fix-db" not in body  # worker-1 is payments'
    body = viewer.get("/ui/playbooks?team=storage&mode=active").content.decode()
    assert "fix-db" in body and "restart-worker" not in body
    assert "No playbook matches" in viewer.get("/ui/playbooks?team=nobody").content.decode()


def test_list_filters_by_pattern_and_mode(viewer, shadow):
    services.playbook_save(document=playbook_yaml("fix-db", URL, pattern="db-*"), actor="t")
    assert "fix-db" not in viewer.get("/ui/playbooks?pattern=worker").content.decode()
    body = viewer.get("/ui/playbooks?mode=active").content.decode()
    assert "fix-db" in body and "restart-worker" not in body


def test_list_query_count_does_not_grow_with_rows(viewer, worker):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert viewer.get("/ui/playbooks").status_code == 200
        return len(ctx.captured_queries)

    services.playbook_save(document=playbook_yaml("p0", URL), actor="t")
    few = count()
    for i in range(1, 8):
        services.playbook_save(document=playbook_yaml(f"p{i}", URL, mode="shadow"), actor="t")
    assert count() == few


def test_detail_history_diff_and_restore_is_a_new_version(operator, shadow):
    services.playbook_save(
        document=playbook_yaml("restart-worker", URL, mode="shadow", wait="5s"),
        actor="t",
        reason="longer wait",
    )
    body = operator.get("/ui/playbooks/restart-worker").content.decode()
    assert "longer wait" in body and "+    duration: 5s" in body and "Restore this version" in body
    response = operator.post("/ui/playbooks/restart-worker/restore", {"version": 1})
    assert response.status_code == 302
    playbook = Playbook.objects.get(name="restart-worker")
    assert playbook.current_version == 3
    current = playbook.versions.get(version=3)
    assert current.source == playbook.versions.get(version=1).source
    assert current.reason == "restored version 1" and current.author == "user:otto"


def test_mode_switch_promotes_and_keeps_the_rest_of_the_document(operator, shadow):
    before = shadow.versions.get(version=1).source
    operator.post("/ui/playbooks/restart-worker/mode", {"mode": "active"})
    version = Playbook.objects.get(name="restart-worker").versions.get(version=2)
    assert version.mode == "active"
    assert version.source == before.replace("mode: shadow", "mode: active")
    body = operator.get("/ui/playbooks/restart-worker").content.decode()
    assert 'data-testid="mode">active<' in body


def test_breaker_reset(operator, shadow):
    CircuitBreaker.objects.create(scope="playbook", key="restart-worker", opened_reason="x")
    CircuitBreaker.objects.filter(key="restart-worker").update(opened_at="2026-01-01T00:00Z")
    operator.post("/ui/playbooks/restart-worker/reset")
    breaker = CircuitBreaker.objects.get(key="restart-worker")
    assert breaker.opened_at is None and breaker.reset_by == "user:otto"


def test_run_now_starts_a_manual_execution_with_the_playbooks_approval(operator, worker):
    _approval_playbook()
    response = operator.post("/ui/playbooks/needs-ok/run", {"service": worker.pk})
    execution = Execution.objects.get()
    assert response.status_code == 302 and response.url == f"/ui/executions/{execution.pk}"
    assert execution.state == ExecutionState.PENDING_APPROVAL and not execution.automatic
    assert execution.requested_by == "user:otto"
    again = operator.post("/ui/playbooks/needs-ok/run", {"service": worker.pk}, follow=True)
    assert "already open" in again.content.decode()


def test_editor_validates_with_the_api_rules_and_points_at_the_line(operator):
    bad = playbook_yaml("p", URL).replace("type: wait", "type: sleep")
    result = operator.post("/ui/playbooks/validate", {"source": bad}).json()
    line = bad.splitlines().index("    type: sleep") + 1
    assert result["valid"] is False
    assert any(p["path"].startswith("steps[1]") and p["line"] == line for p in result["problems"])
    assert operator.post("/ui/playbooks/validate", {"source": playbook_yaml("p", URL)}).json() == {
        "valid": True,
        "problems": [],
        "name": "p",
    }
    broken = operator.post("/ui/playbooks/validate", {"source": "name: [unclosed"}).json()
    assert broken["valid"] is False and broken["problems"][0]["line"]


def test_editor_saves_a_new_playbook_and_refuses_an_invalid_one_at_its_line(operator):
    bad = playbook_yaml("fresh", URL).replace("type: wait", "type: sleep")
    response = operator.post("/ui/playbooks/new", {"source": bad, "reason": "try"})
    assert response.status_code == 422 and not Playbook.objects.exists()
    assert "line " in response.content.decode() and "steps[1]" in response.content.decode()
    response = operator.post(
        "/ui/playbooks/new", {"source": playbook_yaml("fresh", URL), "reason": "new"}
    )
    assert response.status_code == 302 and response.url == "/ui/playbooks/fresh"
    version = Playbook.objects.get(name="fresh").versions.get()
    assert version.reason == "new" and version.author == "user:otto"


def test_editor_refuses_renaming_through_edit(operator, shadow):
    response = operator.post(
        "/ui/playbooks/restart-worker/edit", {"source": playbook_yaml("other", URL)}
    )
    assert response.status_code == 422 and "Must be" in response.content.decode()


def test_executions_list_filters_detail_and_cancel(operator, shadow, worker):
    other = service_create(heartbeat_name="worker-2", alert_interval=5)
    one = engine.execution_create(
        playbook=shadow, service=worker, alert_id=None, trigger={}, automatic=False, actor="t"
    )
    playbook = _approval_playbook()
    two = engine.execution_create(
        playbook=playbook,
        service=other,
        alert_id=None,
        trigger={"kind": "x"},
        automatic=False,
        actor="t",
    )
    body = operator.get("/ui/executions?service=worker-2").content.decode()
    assert f"#{two.pk}<" in body and f"#{one.pk}<" not in body
    body = operator.get("/ui/executions?state=pending_approval").content.decode()
    assert f"#{two.pk}<" in body and f"#{one.pk}<" not in body
    assert operator.get("/ui/executions?created_from=nonsense").status_code == 200
    detail = operator.get(f"/ui/executions/{two.pk}").content.decode()
    assert "needs-ok" in detail and "v1" in detail and "data-live-url" in detail
    assert "restart" in operator.get(f"/ui/executions/{two.pk}/live").content.decode()
    operator.post(f"/ui/executions/{two.pk}/cancel")
    two.refresh_from_db()
    assert two.state == ExecutionState.CANCELLED
    again = operator.post(f"/ui/executions/{two.pk}/cancel", follow=True).content.decode()
    assert "already cancelled" in again


def test_approvals_inbox_oldest_first_with_header_count(viewer, worker):
    playbook = _approval_playbook()
    second = service_create(heartbeat_name="worker-2", alert_interval=5)
    first = engine.execution_create(
        playbook=playbook, service=worker, alert_id=None, trigger={}, automatic=False, actor="t"
    )
    later = engine.execution_create(
        playbook=playbook, service=second, alert_id=None, trigger={}, automatic=False, actor="t"
    )
    body = viewer.get("/ui/approvals").content.decode()
    assert body.index(f"#{first.pk}<") < body.index(f"#{later.pk}<")
    assert "<strong>2</strong> to approve" in body


@pytest.mark.parametrize(
    "path,data",
    [
        ("/ui/playbooks/restart-worker/mode", {"mode": "active"}),
        ("/ui/playbooks/restart-worker/restore", {"version": 1}),
        ("/ui/playbooks/restart-worker/reset", {}),
        ("/ui/playbooks/restart-worker/run", {"service": 1}),
        ("/ui/playbooks/restart-worker/edit", {"source": "x"}),
        ("/ui/playbooks/new", {"source": "x"}),
        ("/ui/playbooks/validate", {"source": "x"}),
        ("/ui/executions/1/cancel", {}),
    ],
)
def test_viewers_see_but_the_server_refuses_their_changes(viewer, shadow, worker, path, data):
    before = (Playbook.objects.get().current_version, Execution.objects.count())
    assert viewer.post(path, data).status_code == 403
    assert (Playbook.objects.get().current_version, Execution.objects.count()) == before


def test_viewers_read_every_page_without_controls(viewer, shadow, worker):
    execution = engine.execution_create(
        playbook=shadow, service=worker, alert_id=None, trigger={}, automatic=False, actor="t"
    )
    for path in (
        "/ui/playbooks",
        "/ui/playbooks/restart-worker",
        "/ui/executions",
        f"/ui/executions/{execution.pk}",
        "/ui/approvals",
    ):
        response = viewer.get(path)
        assert response.status_code == 200, path
        assert b"Promote" not in response.content and b"Run now" not in response.content
    assert viewer.get("/ui/playbooks/restart-worker/edit").status_code == 403
    assert viewer.get("/ui/playbooks/nope").status_code == 404


def test_signed_out_and_roleless_users_are_kept_out(client, norole, shadow):
    assert client.get("/ui/playbooks").status_code == 302
    assert norole.get("/ui/executions").status_code == 403


def test_browser_line_endings_are_stored_as_lf_and_the_mode_switch_still_finds_its_line(operator):
    crlf = playbook_yaml("crlf", URL, mode="shadow").replace("\n", "\r\n")
    operator.post("/ui/playbooks/new", {"source": crlf, "reason": "from a browser"})
    assert "\r" not in Playbook.objects.get(name="crlf").versions.get().source
    operator.post("/ui/playbooks/crlf/mode", {"mode": "active"})
    assert Playbook.objects.get(name="crlf").versions.get(version=2).mode == "active"


def test_team_filter_narrowing_agrees_with_the_trigger_matching():
    from dashboard.remediation_selectors import _names_match
    from remediation.playbooks.triggers import name_matches

    names = sorted(["worker-1", "worker-2", "Worker-3", "db-main", "db", "w[x]", "a?b", "zeta"])
    patterns = ["worker-*", "*", "*-1", "db", "db*", "w?rker-2", "[Ww]orker-3", "w[!o]*", "nope*"]
    patterns += ["w[[]x]", "a[?]b", "", "z*a", "[a-c]*", "*main"]
    for pattern in patterns:
        expected = any(name_matches(pattern, n) for n in names)
        assert _names_match(pattern, names) is expected, pattern
