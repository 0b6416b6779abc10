"""/v2/agent/*: the agent protocol through the app (the test client serves the async views)."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from alerting.models import Alert, AlertState, Delivery
from alerting.transports import SlackTransport
from heartbeats.models import Heartbeat, ServiceStatus
from remediation.models import Agent, Job, JobState
from tests.conftest import ApiClient
from tests.remediation.conftest import GREET_SHA, register

pytestmark = pytest.mark.django_db


def _queue(writer, agent="web-1", name="Ada") -> str:
    response = writer.post(
        "/v2/scripts/greet/run", {"target": {"agent": agent}, "args": {"name": name}}
    )
    assert response.status_code == 201, response.content
    return response.json()["jobs"][0]["id"]


def test_register_records_the_host_and_creates_its_monitored_service(web1):
    agent, client = web1
    body = register(client)
    assert body == {"agent_id": "web-1", "poll_wait_seconds": 30}
    agent.refresh_from_db()
    assert agent.hostname == "web-1.example"
    assert agent.agent_version == "0.1.0"
    assert agent.reported_labels == ["env:test"]
    assert agent.all_labels == ["env:test", "role:web"]
    assert agent.scripts == [{"name": "greet", "sha256": GREET_SHA}]
    service = agent.service
    assert service.heartbeat_name == "agent-web-1"
    assert service.status == ServiceStatus.UP
    assert service.alert_interval == 3.0
    # registering again (agent restart) reuses the service
    register(client, agent_version="0.2.0")
    agent.refresh_from_db()
    assert agent.service_id == service.pk and agent.agent_version == "0.2.0"


def test_poll_delivers_the_queued_job_then_204(web1, writer, greet):
    _agent, client = web1
    register(client)
    job_id = _queue(writer)
    response = client.get("/v2/agent/jobs?wait=0")
    assert response.status_code == 200
    assert response.json() == {
        "id": job_id,
        "script": {"name": "greet", "version": 1, "sha256": GREET_SHA},
        "args": {"name": "Ada"},
        "timeout_seconds": 60,
        "limits": {
            "cpu_seconds": 30,
            "memory_mb": 256,
            "open_files": 64,
            "processes": 32,
            "output_bytes": 65536,
        },
    }
    assert Job.objects.get(pk=job_id).state == JobState.RUNNING
    assert client.get("/v2/agent/jobs?wait=0").status_code == 204


def test_a_poll_waits_then_answers_204(web1):
    _, client = web1
    register(client)
    started = timezone.now()
    response = client.get("/v2/agent/jobs?wait=1")
    assert response.status_code == 204
    assert timezone.now() - started >= timedelta(seconds=0.9)
    assert client.get("/v2/agent/jobs?wait=soon").status_code == 422


def test_result_finishes_the_job_and_repeats_change_nothing(web1, writer, reader, greet):
    _, client = web1
    register(client)
    job_id = _queue(writer)
    client.get("/v2/agent/jobs?wait=0")
    result = {
        "exit_code": 0,
        "duration_ms": 12,
        "stdout_tail": "hello --name=Ada\n",
        "stderr_tail": "nul\u0000byte",
        "timed_out": False,
        "signal": None,
    }
    response = client.post(f"/v2/agent/jobs/{job_id}/result", result)
    assert response.status_code == 200
    assert response.json() == {"id": job_id, "state": "succeeded"}
    again = client.post(f"/v2/agent/jobs/{job_id}/result", {**result, "exit_code": 3})
    assert again.json()["state"] == "succeeded"
    shown = reader.get(f"/v2/jobs/{job_id}").json()
    assert shown["exit_code"] == 0 and shown["duration_ms"] == 12
    assert shown["stdout_tail"] == "hello --name=Ada\n"
    assert shown["stderr_tail"] == "nul\ufffdbyte"  # PostgreSQL text cannot hold NUL


@pytest.mark.parametrize(
    ("result", "state"),
    [
        ({"exit_code": 2, "timed_out": False, "signal": None}, "failed"),
        ({"exit_code": None, "timed_out": False, "signal": 9}, "failed"),
        ({"exit_code": None, "timed_out": True, "signal": 15}, "timed_out"),
    ],
)
def test_result_states(web1, writer, greet, result, state):
    _, client = web1
    register(client)
    job_id = _queue(writer)
    client.get("/v2/agent/jobs?wait=0")
    body = {"duration_ms": 5, "stdout_tail": "", "stderr_tail": "", **result}
    assert client.post(f"/v2/agent/jobs/{job_id}/result", body).json()["state"] == state


def test_a_skip_opens_an_alert_through_normal_routing(web1, writer, reader, greet, slack):
    agent, client = web1
    register(client)
    job_id = _queue(writer)
    client.get("/v2/agent/jobs?wait=0")
    detail = "/etc/medic-agent/scripts/greet.sh hashes to 00ff, registered 1234"
    response = client.post(
        f"/v2/agent/jobs/{job_id}/skipped", {"reason": "hash_mismatch_disk", "detail": detail}
    )
    assert response.status_code == 200
    assert response.json()["state"] == "skipped"
    shown = reader.get(f"/v2/jobs/{job_id}").json()
    assert shown["skip_reason"] == "hash_mismatch_disk" and shown["detail"] == detail
    alert = Alert.objects.get(pk=shown["alert"])
    assert alert.service_id == Agent.objects.get(pk=agent.pk).service_id
    assert alert.reason == "script_skipped"
    assert alert.dedup_key == "medic-agent-web-1-skip-greet-hash_mismatch_disk"
    assert "refused script 'greet' (hash_mismatch_disk)" in alert.summary
    # an event: notified once, recorded as resolved so the agent's offline alert stays possible
    assert alert.state == AlertState.RESOLVED and alert.notify_count == 1
    (delivery,) = Delivery.objects.filter(alert=alert)
    assert delivery.channel == "slack" and delivery.event == "trigger"
    text = SlackTransport().payload(delivery)["text"]
    assert text.startswith(":warning: *medic-agent web-1*: a remediation script was refused")
    assert "is down" not in text
    assert "refused script 'greet' (hash_mismatch_disk)" in text
    assert f"/ui/alerts/{alert.pk}|Alert {alert.pk}>" in text
    # the same refusal again within the window joins the same alert: no second page
    second = _queue(writer)
    client.get("/v2/agent/jobs?wait=0")
    client.post(f"/v2/agent/jobs/{second}/skipped", {"reason": "hash_mismatch_disk", "detail": "x"})
    assert Job.objects.get(pk=second).alert_id == alert.pk
    assert Alert.objects.filter(reason="script_skipped").count() == 1


def test_shutting_down_skips_alert_nobody(web1, writer, greet):
    _, client = web1
    register(client)
    job_id = _queue(writer)
    client.get("/v2/agent/jobs?wait=0")
    client.post(f"/v2/agent/jobs/{job_id}/skipped", {"reason": "shutting_down", "detail": ""})
    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.SKIPPED and job.alert_id is None
    assert not Alert.objects.exists()


def test_unknown_skip_reason_is_refused(web1, writer, greet):
    _, client = web1
    register(client)
    job_id = _queue(writer)
    response = client.post(f"/v2/agent/jobs/{job_id}/skipped", {"reason": "felt_like_it"})
    assert response.status_code == 422
    assert "reason" in response.json()["error"]["fields"]


def test_an_agent_sees_and_reports_only_its_own_jobs(web1, db1, writer, greet, admin):
    _, web_client = web1
    _db_agent, db_client = db1
    register(web_client)
    register(db_client)
    job_id = _queue(writer)
    assert db_client.get("/v2/agent/jobs?wait=0").status_code == 204
    result = {
        "exit_code": 0,
        "duration_ms": 1,
        "stdout_tail": "",
        "stderr_tail": "",
        "timed_out": False,
        "signal": None,
    }
    forged = db_client.post(f"/v2/agent/jobs/{job_id}/result", result)
    assert forged.status_code == 404
    assert forged.json()["error"]["code"] == "job_not_found"
    assert Job.objects.get(pk=job_id).state == JobState.QUEUED


def test_only_bound_agent_keys_are_accepted(web1, admin, writer, outsider):
    _, client = web1
    assert outsider.get("/v2/agent/jobs?wait=0").status_code == 401
    for other in (admin, writer):
        response = other.get("/v2/agent/jobs?wait=0")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"
    # and an agent key opens nothing else
    for path in ("/v2/services", "/v2/scripts", "/v2/jobs", "/v2/agents"):
        assert client.get(path).status_code == 403, path
    assert client.post("/v2/scripts/greet/run", {"target": {"local": True}}).status_code == 403


def test_disabled_agents_are_refused_and_their_key_revoked(web1, admin):
    _, client = web1
    register(client)
    assert admin.delete("/v2/agents/web-1").status_code == 204
    # Refused at once. Which refusal depends on the clock, not on the code: while the key cache
    # still trusts the key (a couple of seconds) the gateway refuses the disabled agent; once the
    # cache re-reads the key, the revoked key itself is refused.
    response = client.get("/v2/agent/jobs?wait=0")
    refusal = (response.status_code, response.json()["error"]["code"])
    assert refusal in {(403, "agent_disabled"), (401, "api_key_revoked")}, refusal
    # Either way nothing is handed to it afterwards: the revoked key is refused from now on.
    assert client.get("/v2/agent/jobs?wait=0").status_code in (401, 403)
    # ...and the key itself is revoked
    assert Agent.objects.get(name="web-1").api_key.revoked_at is not None


def test_polls_record_at_most_one_heartbeat_per_interval(web1, settings):
    agent, client = web1
    register(client)
    service_id = Agent.objects.get(pk=agent.pk).service_id
    for _ in range(5):
        assert client.get("/v2/agent/jobs?wait=0").status_code == 204
    assert Heartbeat.objects.filter(service_id=service_id).count() == 1  # the registration's
    Agent.objects.filter(pk=agent.pk).update(last_seen_at=timezone.now() - timedelta(minutes=2))
    client.get("/v2/agent/jobs?wait=0")
    client.get("/v2/agent/jobs?wait=0")
    assert Heartbeat.objects.filter(service_id=service_id).count() == 2


def test_malformed_bodies_use_the_envelope(web1):
    _, client = web1
    response = client.post("/v2/agent/register", "not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"
    missing = client.post("/v2/agent/register", {"hostname": "x"})
    assert missing.status_code == 422
    assert {"os", "arch", "agent_version"} <= set(missing.json()["error"]["fields"])
    wrong_method = client.delete("/v2/agent/register")
    assert wrong_method.status_code == 405


def test_agents_api(admin, reader, writer, web1):
    created = admin.post("/v2/agents", {"name": "cache-1", "labels": ["role:cache"]})
    assert created.status_code == 201
    assert created.json()["key"].startswith("mdk_")
    assert created.json()["status"] == "new"
    assert writer.post("/v2/agents", {"name": "x"}).status_code == 403
    assert admin.post("/v2/agents", {"name": "cache-1"}).status_code == 409
    assert admin.post("/v2/api-keys", {"name": "a", "scopes": ["agent"]}).status_code == 422
    _, client = web1
    register(client)
    listed = {a["name"]: a for a in reader.get("/v2/agents").json()["results"]}
    assert listed["web-1"]["status"] == "online"
    assert listed["web-1"]["service"] == "agent-web-1"
    assert reader.get("/v2/agents/web-1").json()["hostname"] == "web-1.example"
    assert reader.delete("/v2/agents/web-1").status_code == 403


def test_create_agent_key_command_prints_the_key_last(capsys):
    from django.core.management import call_command

    call_command("create_agent_key", "--name", "edge-1", "--labels", "env:prod, role:edge")
    out = capsys.readouterr()
    key = out.out.strip().splitlines()[-1]
    assert key.startswith("mdk_") and len(key) == 52
    agent = Agent.objects.get(name="edge-1")
    assert agent.labels == ["env:prod", "role:edge"]
    assert agent.api_key.scopes == ["agent"]
    assert ApiClient(key).get("/v2/agent/jobs?wait=0").status_code == 204


def test_agent_states_are_in_the_metrics(web1, db1, reader):
    _, client = web1
    register(client)
    text = reader.get("/metrics").content.decode()
    assert 'medic_agents{state="online"} 1.0' in text
    assert 'medic_agents{state="new"} 1.0' in text
    assert "medic_script_jobs_queued_total" in text


def test_polls_report_memory_and_version_validated_and_bounded(web1, reader):
    agent, client = web1
    register(client)
    # An older agent sends neither: it keeps working and nothing is recorded.
    assert client.get("/v2/agent/jobs?wait=0").status_code == 204
    agent.refresh_from_db()
    assert (agent.memory_rss_bytes, agent.memory_reported_at) == (None, None)
    assert agent.agent_version == "0.1.0"
    response = client.get("/v2/agent/jobs?wait=0&version=0.2.0%2Bdeb&rss_bytes=3084288")
    assert response.status_code == 204
    agent.refresh_from_db()
    assert agent.memory_rss_bytes == 3084288 and agent.memory_reported_at is not None
    assert agent.agent_version == "0.2.0+deb"
    listed = reader.get("/v2/agents/web-1").json()
    assert listed["memory_rss_bytes"] == 3084288 and listed["agent_version"] == "0.2.0+deb"
    # Within the interval a second report is not written (one UPDATE matching nothing).
    client.get("/v2/agent/jobs?wait=0&rss_bytes=9999999")
    agent.refresh_from_db()
    assert agent.memory_rss_bytes == 3084288
    for query, field in [
        ("rss_bytes=-1", "rss_bytes"),
        ("rss_bytes=lots", "rss_bytes"),
        ("rss_bytes=1099511627777", "rss_bytes"),
        ("rss_bytes=" + "9" * 40, "rss_bytes"),
        ("version=" + "v" * 33, "version"),
        ("version=1.0%20beta", "version"),
        ("version=", "version"),
    ]:
        bad = client.get(f"/v2/agent/jobs?wait=0&{query}")
        assert bad.status_code == 422, query
        assert list(bad.json()["error"]["fields"]) == [field], query
    assert client.get("/v2/agent/jobs?wait=0&rss_bytes=1099511627776").status_code == 204


def test_the_day_keeps_the_highest_memory_reported(web1, settings):
    from datetime import datetime

    from remediation.agents import agent_seen
    from remediation.models import AgentMemoryDay

    agent, client = web1
    register(client)
    settings.MEDIC_AGENT_HEARTBEAT_SECONDS = 60
    t = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
    for minutes, rss in [(0, 3_000_000), (2, 6_000_000), (2, 9_000_000), (4, 4_000_000)]:
        agent_seen(agent_id=agent.pk, memory_rss_bytes=rss, now=t + timedelta(minutes=minutes))
    agent_seen(agent_id=agent.pk, memory_rss_bytes=2_000_000, now=t + timedelta(hours=3))
    days = dict(AgentMemoryDay.objects.values_list("day", "max_rss_bytes"))
    # The third report came within the interval of the second: not stored.
    assert days == {t.date(): 6_000_000, (t + timedelta(hours=3)).date(): 2_000_000}
    agent.refresh_from_db()
    assert agent.memory_rss_bytes == 2_000_000


def test_memory_days_past_their_retention_are_forgotten_by_the_playbook_sweep(web1, settings):
    from datetime import datetime

    from remediation.agents import agent_memory_prune
    from remediation.models import AgentMemoryDay
    from remediation.playbooks.tasks import sweep

    agent, client = web1
    register(client)
    now = datetime(2026, 6, 1, 23, 59, tzinfo=UTC)  # the boundary on a controlled clock
    today = now.date()
    for back in (0, 30, 399, 400, 401, 900):
        AgentMemoryDay.objects.create(
            agent=agent, day=today - timedelta(days=back), max_rss_bytes=1_000_000 + back
        )
    settings.MEDIC_AGENT_MEMORY_RETENTION_DAYS = 0  # keeps every day
    assert agent_memory_prune(now=now) == 0
    settings.MEDIC_AGENT_MEMORY_RETENTION_DAYS = 400
    assert agent_memory_prune(now=now) == 2
    kept = sorted(
        (today - day).days for day in AgentMemoryDay.objects.values_list("day", flat=True)
    )
    assert kept == [0, 30, 399, 400]
    # The playbook sweep runs it: a day far past the retention goes, whatever today is.
    AgentMemoryDay.objects.create(agent=agent, day=datetime(2000, 1, 1).date(), max_rss_bytes=1)
    sweep()
    assert not AgentMemoryDay.objects.filter(day__year=2000).exists()
