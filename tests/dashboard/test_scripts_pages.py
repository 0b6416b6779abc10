"""Scripts, agents and jobs in the portal: register and version scripts with the API's
validation, agents with their status and the hashes of the scripts they hold, job history with
filters and a detail page with masked outputs. Viewers read; the server refuses their changes."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from remediation import jobs
from remediation.agents import agent_create
from remediation.models import Job, Script, ScriptVersion
from remediation.secrets.services import secret_set
from remediation.services import RunTarget, script_create, script_run
from tests.conftest import ApiClient
from tests.dashboard.test_csp import _assert_strict
from tests.remediation import conftest as remote
from tests.remediation.conftest import GREET_BODY, GREET_SCHEMA, GREET_SHA, register

pytestmark = pytest.mark.django_db
# A script that may run locally and on agents labelled role:web (tests/remediation's fixture).
greet = remote.greet

SCHEMA = json.dumps(GREET_SCHEMA)


def _form(**changes) -> dict:
    data = {
        "name": "restart-nginx",
        "description": "Restart nginx",
        "content": "command",
        "command": "/bin/systemctl\nrestart\nnginx",
        "body": "",
        "sha256": "",
        "args_schema": '{"type": "object", "properties": {}, "additionalProperties": false}',
        "run_local": "on",
        "agent_labels": "",
        "timeout_seconds": "60",
        "cpu_seconds": "30",
        "memory_mb": "256",
        "open_files": "64",
        "processes": "32",
        "output_bytes": "65536",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def web1(db, greet):
    """An agent that registered holding greet (matching) and a file the server does not know."""
    issued = agent_create(name="web-1", labels=["role:web"], actor="tests")
    client = ApiClient(issued.secret)
    register(
        client,
        scripts=[{"name": "greet", "sha256": GREET_SHA}, {"name": "cleanup", "sha256": "a" * 64}],
    )
    issued.agent.refresh_from_db()
    return issued.agent


def queries(client, path: str) -> int:
    """How many queries a page takes (to compare across numbers of rows)."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


def _finished_job(agent, *, stdout: str = "hello ops\n", exit_code: int = 0) -> Job:
    [job] = script_run(
        name="greet", target=RunTarget(agent=agent.name), args={"name": "ops"}, actor="user:otto"
    )
    claimed = jobs.job_claim_next(agent_id=agent.pk)
    assert claimed["id"] == str(job.pk)
    return jobs.job_report_result(
        agent_id=agent.pk,
        job_id=str(job.pk),
        result=jobs.Result(
            exit_code=exit_code,
            duration_ms=1234,
            stdout_tail=stdout,
            stderr_tail="",
            timed_out=False,
            signal=None,
        ),
    )


# --- Scripts ----------------------------------------------------------------------------------


def test_operator_registers_a_command_script(operator):
    assert operator.get("/ui/scripts/new").status_code == 200
    response = operator.post("/ui/scripts/new", _form())
    assert response.status_code == 302 and response["Location"] == "/ui/scripts/restart-nginx"
    version = ScriptVersion.objects.get(script__name="restart-nginx")
    assert version.command == ["/bin/systemctl", "restart", "nginx"]
    assert (version.version, version.run_local, version.run_on_agents) == (1, True, False)
    assert version.created_by == "user:otto"
    page = operator.get("/ui/scripts/restart-nginx").content.decode()
    assert "Registered restart-nginx (version 1)." in page
    assert "/bin/systemctl restart nginx" in page


def test_a_body_script_gets_its_sha256_computed_and_shown(operator):
    body = "#!/bin/sh\r\necho hi\r\n"
    response = operator.post(
        "/ui/scripts/new",
        _form(name="hi", content="body", body=body, command="/ignored", run_on_agents="on"),
    )
    assert response.status_code == 302
    version = ScriptVersion.objects.get(script__name="hi")
    expected = hashlib.sha256(b"#!/bin/sh\necho hi\n").hexdigest()
    assert version.body == "#!/bin/sh\necho hi\n" and version.command == []  # only the chosen kind
    assert version.sha256 == expected
    assert expected in operator.get("/ui/scripts/hi").content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"command": "systemctl\nrestart"}, "command", "The program must be an absolute path"),
        ({"run_local": None}, "run_local", "A script must be allowed to run somewhere"),
        ({"args_schema": "{not json"}, "args_schema", "Not valid JSON"),
        (
            {"args_schema": '{"type": "object", "properties": {}}'},
            "args_schema",
            '"additionalProperties": false',
        ),
        ({"timeout_seconds": "7200"}, "timeout_seconds", "less than or equal to 3600"),
        ({"name": "bad name!"}, "name", "1 to 128 characters"),
        (
            {"content": "agent", "run_local": None, "run_on_agents": "on", "sha256": "xyz"},
            "sha256",
            "Must be 64 hex digits",
        ),
    ],
)
def test_the_form_refuses_what_the_api_refuses(operator, admin_key_client, changes, field, message):
    response = operator.post("/ui/scripts/new", _form(**changes))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert any(message in e for e in errors.get(field, [])), errors
    assert not Script.objects.exists()
    # the API says the same about the same script
    payload = _api_payload(_form(**changes))
    if payload is not None:
        api = admin_key_client.post("/v2/scripts", payload)
        assert api.status_code in (400, 422)
        fields = api.json()["error"]["fields"]
        assert any(message in m for m in fields.get(field, [])), fields


def _api_payload(form: dict) -> dict | None:
    try:
        schema = json.loads(form["args_schema"])
    except ValueError:
        return None  # the API takes JSON: there is no such request
    kind = form["content"]
    payload = {
        "name": form["name"],
        "args_schema": schema,
        "run_local": "run_local" in form,
        "run_on_agents": "run_on_agents" in form,
        "timeout_seconds": int(form["timeout_seconds"]),
    }
    if kind == "command":
        payload["command"] = form["command"].splitlines()
    elif kind == "agent":
        payload["sha256"] = form["sha256"]
    return payload


@pytest.fixture
def admin_key_client(db) -> ApiClient:
    from medic.apikeys import api_key_create

    return ApiClient(api_key_create(name="adm", scopes=["admin"], actor="tests").secret)


def test_a_new_version_keeps_the_old_one_and_shows_both_hashes(operator, greet):
    page = operator.get("/ui/scripts/greet/edit").content.decode()
    assert "printf" in page and "role:web" in page  # the form starts from the current version
    body = GREET_BODY.replace("hello", "hi")
    response = operator.post(
        "/ui/scripts/greet/edit",
        _form(
            name=None,
            content="body",
            body=body,
            args_schema=SCHEMA,
            run_on_agents="on",
            agent_labels="role:web",
        ),
    )
    assert response.status_code == 302
    script = Script.objects.get(name="greet")
    assert script.current_version == 2
    page = operator.get("/ui/scripts/greet").content.decode()
    assert "Saved version 2." in page
    assert GREET_SHA in page and hashlib.sha256(body.encode()).hexdigest() in page
    # saving the same again writes nothing
    operator.post(
        "/ui/scripts/greet/edit",
        _form(
            name=None,
            content="body",
            body=body,
            args_schema=SCHEMA,
            run_on_agents="on",
            agent_labels="role:web",
        ),
    )
    assert Script.objects.get(name="greet").current_version == 2


def test_disable_and_list_filters(operator, viewer, greet):
    script_create(name="local-only", actor="t", command=["/bin/true"], run_local=True)
    assert operator.post("/ui/scripts/greet/disable").status_code == 302
    assert not Script.objects.get(name="greet").enabled
    body = viewer.get("/ui/scripts").content.decode()
    assert "greet" in body and "local-only" in body and ">disabled<" in body
    assert "Register a script" not in body  # viewers get no entry points
    body = viewer.get("/ui/scripts?where=agents").content.decode()
    assert 'data-script="greet"' in body and 'data-script="local-only"' not in body
    body = viewer.get("/ui/scripts?q=local").content.decode()
    assert 'data-script="greet"' not in body and 'data-script="local-only"' in body


def test_viewer_reads_scripts_but_cannot_change_them(viewer, greet):
    page = viewer.get("/ui/scripts/greet")
    assert page.status_code == 200 and b"New version" not in page.content
    assert viewer.get("/ui/scripts/new").status_code == 403
    assert viewer.post("/ui/scripts/new", _form()).status_code == 403
    assert viewer.post("/ui/scripts/greet/edit", _form(name=None)).status_code == 403
    assert viewer.post("/ui/scripts/greet/disable").status_code == 403
    assert list(Script.objects.values_list("name", "current_version", "enabled")) == [
        ("greet", 1, True)
    ]


def test_script_page_lists_holders_and_recent_jobs(viewer, web1):
    job = _finished_job(web1)
    body = viewer.get("/ui/scripts/greet").content.decode()
    assert "/ui/agents/web-1" in body and "hash matches" in body
    assert f"/ui/jobs/{job.pk}" in body


def test_unknown_script_is_a_404_page(viewer):
    response = viewer.get("/ui/scripts/nope")
    assert response.status_code == 404 and b"No script named" in response.content


# --- Agents -----------------------------------------------------------------------------------


def test_agents_list_status_labels_version_and_hashes(viewer, web1):
    agent_create(name="db-1", labels=["role:db"], actor="tests")  # never registered
    body = viewer.get("/ui/agents").content.decode()
    assert 'data-agent="web-1"' in body and 'data-agent="db-1"' in body
    assert "online" in body and ">new<" in body  # the API's rule: AgentOut.status
    assert "role:web" in body and "env:test" in body and "0.1.0" in body
    assert "1 not matching" in body  # cleanup is not registered on the server


def test_agents_show_their_reported_memory_and_flag_it_over_the_threshold(viewer, web1):
    from remediation.agents import agent_seen

    small = agent_create(name="db-1", actor="tests").agent
    agent_seen(agent_id=small.pk, memory_rss_bytes=3_084_288)
    agent_seen(agent_id=web1.pk, memory_rss_bytes=5_600_000)
    agent_create(name="old-1", actor="tests")  # an agent that does not report memory
    body = viewer.get("/ui/agents").content.decode()
    rows = {
        name: body.split(f'data-agent="{name}"')[1].split("</tr>")[0]
        for name in ("web-1", "db-1", "old-1")
    }
    assert (
        'data-testid="memory">5.6 MB <span class="badge bad" data-testid="over-memory">over 5 MB'
        in rows["web-1"]
    )
    assert 'data-testid="memory">3.1 MB</td>' in rows["db-1"]
    assert 'data-testid="memory">—</td>' in rows["old-1"]
    detail = viewer.get("/ui/agents/web-1").content.decode()
    assert "Resident memory" in detail and "5.6 MB" in detail and "over 5 MB" in detail


def test_agent_status_is_the_apis(viewer, web1, admin_key_client):
    web1.service.status = "down"
    web1.service.save(update_fields=["status"])
    assert admin_key_client.get("/v2/agents/web-1").json()["status"] == "offline"
    assert 'data-testid="agent-status">offline<' in viewer.get("/ui/agents").content.decode()


def test_agent_detail_compares_each_held_script_with_the_server(viewer, web1, greet):
    script_create(
        name="rotate-logs",
        actor="t",
        sha256="b" * 64,
        run_on_agents=True,
        agent_labels=["role:web"],
    )
    body = viewer.get("/ui/agents/web-1").content.decode()
    assert 'data-script="greet"' in body and "hash matches" in body
    assert 'data-script="cleanup"' in body and "not registered here" in body
    assert "rotate-logs" in body  # registered for its labels, not held: a run would be refused
    # a new version with another body: the agent's file no longer matches
    from remediation.services import script_update

    script_update(name="greet", actor="t", body=GREET_BODY + "# v2\n")
    body = viewer.get("/ui/agents/web-1").content.decode()
    assert "hash differs" in body


def test_agents_list_has_a_bounded_number_of_queries(viewer, web1):
    few = queries(viewer, "/ui/agents")
    for i in range(15):
        issued = agent_create(name=f"web-{i + 2}", labels=["role:web"], actor="tests")
        register(ApiClient(issued.secret), scripts=[{"name": f"s{i}", "sha256": "c" * 64}])
    assert queries(viewer, "/ui/agents") == few


# --- Jobs -------------------------------------------------------------------------------------


def test_jobs_list_filters_and_detail(viewer, web1):
    done = _finished_job(web1)
    [local] = script_run(name="greet", target=RunTarget(local=True), args={"name": "x"}, actor="t")
    body = viewer.get("/ui/jobs").content.decode()
    assert f"/ui/jobs/{done.pk}" in body and f"/ui/jobs/{local.pk}" in body
    assert "Medic worker" in body
    body = viewer.get("/ui/jobs?state=succeeded").content.decode()
    assert f"/ui/jobs/{done.pk}" in body and f"/ui/jobs/{local.pk}" not in body
    body = viewer.get("/ui/jobs?agent=web-1").content.decode()
    assert f"/ui/jobs/{done.pk}" in body and f"/ui/jobs/{local.pk}" not in body
    assert f"/ui/jobs/{done.pk}" not in viewer.get("/ui/jobs?script=other").content.decode()
    today = timezone.now().date()
    later = (today + timedelta(days=2)).isoformat()
    assert (
        f"/ui/jobs/{done.pk}" not in viewer.get(f"/ui/jobs?created_from={later}").content.decode()
    )
    body = viewer.get(f"/ui/jobs?created_from={today}&created_to={today}").content.decode()
    assert f"/ui/jobs/{done.pk}" in body
    bad = viewer.get("/ui/jobs?state=exploded&created_from=yesterday")
    assert bad.status_code == 200 and b"Select a valid choice" in bad.content

    page = viewer.get(f"/ui/jobs/{done.pk}").content.decode()
    assert "hello ops" in page and 'data-testid="duration">1.2 s<' in page
    assert 'data-testid="exit-code">0<' in page


def test_job_outputs_and_arguments_are_masked(viewer, web1):
    secret_set(name="db_password", value="hunter2-very-secret", actor="tests")
    job = _finished_job(web1, stdout="connecting with hunter2-very-secret\n", exit_code=3)
    # a secret stored after the job finished is masked too
    Job.objects.filter(pk=job.pk).update(
        stdout_tail="token later-secret-value", args={"name": "later-secret-value"}
    )
    secret_set(name="api_token", value="later-secret-value", actor="tests")
    page = viewer.get(f"/ui/jobs/{job.pk}").content.decode()
    assert "later-secret-value" not in page and "hunter2-very-secret" not in page
    assert "••••••" in page and 'data-testid="exit-code">3' in page


def test_jobs_pages_answer_unknown_ids_with_404(viewer):
    assert viewer.get("/ui/jobs/not-a-uuid").status_code == 404
    assert viewer.get("/ui/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert viewer.get("/ui/agents/nope").status_code == 404


def test_jobs_list_has_a_bounded_number_of_queries(viewer, web1):
    _finished_job(web1)
    few = queries(viewer, "/ui/jobs")
    for _ in range(10):
        _finished_job(web1)
    assert queries(viewer, "/ui/jobs") == few


def test_new_pages_have_a_strict_policy_and_no_inline_code(superuser, web1):
    job = _finished_job(web1)
    for path in (
        "/ui/scripts",
        "/ui/scripts/new",
        "/ui/scripts/greet",
        "/ui/scripts/greet/edit",
        "/ui/agents",
        "/ui/agents/web-1",
        "/ui/jobs",
        f"/ui/jobs/{job.pk}",
        "/ui/audit",
    ):
        response = superuser.get(path)
        assert response.status_code == 200, path
        _assert_strict(response)


def test_navigation_lists_the_new_pages(viewer):
    body = viewer.get("/ui/").content.decode()
    for path in ("/ui/scripts", "/ui/agents", "/ui/jobs", "/ui/audit"):
        assert f'href="{path}"' in body
    assert 'href="/ui/jobs" aria-current="page"' in viewer.get("/ui/jobs").content.decode()


def test_scripts_list_has_a_bounded_number_of_queries(viewer, greet):
    few = queries(viewer, "/ui/scripts")
    for i in range(12):
        script_create(name=f"s{i}", actor="t", command=["/bin/true"], run_local=True)
    assert queries(viewer, "/ui/scripts") == few
