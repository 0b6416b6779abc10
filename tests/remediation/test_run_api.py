"""POST /v2/scripts/{name}/run and /v2/jobs: targets, argument schemas, scopes."""

from __future__ import annotations

import pytest

from remediation.audit.models import AuditEntry
from remediation.models import Job, JobState, JobTarget
from remediation.services import script_create

pytestmark = pytest.mark.django_db


def test_run_on_an_agent_queues_one_job_and_audits(writer, reader, greet, web1):
    _agent, _ = web1
    response = writer.post(
        "/v2/scripts/greet/run", {"target": {"agent": "web-1"}, "args": {"name": "Ada"}}
    )
    assert response.status_code == 201, response.content
    (job,) = response.json()["jobs"]
    assert job["state"] == "queued"
    assert job["target"] == "agent" and job["agent"] == "web-1"
    assert job["script"] == "greet" and job["script_version"] == 1
    assert job["args"] == {"name": "Ada"}
    shown = reader.get(f"/v2/jobs/{job['id']}")
    assert shown.status_code == 200
    assert shown.json()["state"] == "queued"
    event = AuditEntry.objects.get(event="script.run")
    assert event.details["jobs"] == [job["id"]]
    assert event.details["arg_names"] == ["name"]


def test_label_targets_make_one_job_per_matching_agent(writer, greet, web1, db1, admin):
    # db-1 lacks the script's required label role:web; a second web agent matches
    admin.post("/v2/agents", {"name": "web-2", "labels": ["role:web", "env:prod"]})
    response = writer.post(
        "/v2/scripts/greet/run", {"target": {"labels": ["role:web"]}, "args": {"name": "x"}}
    )
    assert response.status_code == 201
    agents = sorted(j["agent"] for j in response.json()["jobs"])
    assert agents == ["web-1", "web-2"]
    assert len({j["batch"] for j in response.json()["jobs"]}) == 1
    only_prod = writer.post(
        "/v2/scripts/greet/run", {"target": {"labels": ["env:prod"]}, "args": {"name": "x"}}
    )
    assert [j["agent"] for j in only_prod.json()["jobs"]] == ["web-2"]
    none = writer.post(
        "/v2/scripts/greet/run", {"target": {"labels": ["env:mars"]}, "args": {"name": "x"}}
    )
    assert none.status_code == 422
    assert none.json()["error"]["code"] == "no_matching_agent"


def test_a_script_runs_only_where_it_is_allowed(writer, greet, db1):
    wrong_agent = writer.post(
        "/v2/scripts/greet/run", {"target": {"agent": "db-1"}, "args": {"name": "x"}}
    )
    assert wrong_agent.status_code == 422
    assert wrong_agent.json()["error"]["code"] == "target_not_allowed"
    script_create(name="local_only", actor="t", command=["/bin/true"], run_local=True)
    agent_run = writer.post("/v2/scripts/local_only/run", {"target": {"agent": "db-1"}})
    assert agent_run.status_code == 422
    assert agent_run.json()["error"]["code"] == "target_not_allowed"
    script_create(name="agents_only", actor="t", sha256="a" * 64, run_on_agents=True)
    local_run = writer.post("/v2/scripts/agents_only/run", {"target": {"local": True}})
    assert local_run.status_code == 422
    assert local_run.json()["error"]["code"] == "target_not_allowed"
    unknown_agent = writer.post("/v2/scripts/agents_only/run", {"target": {"agent": "nope"}})
    assert unknown_agent.status_code == 404


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ({}, "args"),  # name is required
        ({"name": "Ada", "extra": "1"}, "args"),  # additionalProperties: false
        ({"name": "; rm -rf /"}, "args.name"),  # the schema's pattern refuses it
        ({"name": "$(touch /tmp/pwned)"}, "args.name"),
        ({"name": "../../etc/passwd"}, "args.name"),
        ({"name": 12}, "args.name"),
    ],
)
def test_arguments_are_checked_against_the_schema(writer, greet, web1, args, where):
    response = writer.post("/v2/scripts/greet/run", {"target": {"agent": "web-1"}, "args": args})
    assert response.status_code == 422, response.content
    assert where in response.json()["error"]["fields"]
    assert not Job.objects.exists()


def test_target_must_name_exactly_one_kind(writer, greet):
    for target in ({}, {"local": True, "agent": "web-1"}, {"local": False}):
        response = writer.post("/v2/scripts/greet/run", {"target": target, "args": {"name": "x"}})
        assert response.status_code == 422, target


def test_running_needs_write_and_reading_jobs_needs_read(reader, writer, outsider, greet):
    assert reader.post("/v2/scripts/greet/run", {"target": {"local": True}}).status_code == 403
    assert outsider.get("/v2/jobs").status_code == 401
    queued = writer.post(
        "/v2/scripts/greet/run", {"target": {"local": True}, "args": {"name": "a"}}
    )
    assert queued.status_code == 201
    assert reader.get("/v2/jobs/not-a-uuid").status_code == 404


def test_job_list_filters(writer, reader, greet, web1):
    writer.post("/v2/scripts/greet/run", {"target": {"agent": "web-1"}, "args": {"name": "a"}})
    Job.objects.create(
        script_version=greet, target=JobTarget.LOCAL, state=JobState.FAILED, args={"name": "b"}
    )
    assert len(reader.get("/v2/jobs").json()["results"]) == 2
    assert len(reader.get("/v2/jobs?state=queued").json()["results"]) == 1
    assert len(reader.get("/v2/jobs?agent=web-1").json()["results"]) == 1
    assert len(reader.get("/v2/jobs?script=greet").json()["results"]) == 2
    assert reader.get("/v2/jobs?state=bogus").status_code == 422
