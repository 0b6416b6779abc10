"""Django admin for superusers: playbooks, versions and executions are read-only there (they
change through the service layer, which versions and audits them)."""

from __future__ import annotations

import pytest

from heartbeats.services import service_create
from remediation.playbooks import engine, services
from remediation.playbooks.models import Execution, Playbook
from tests.playbooks.conftest import playbook_yaml

pytestmark = pytest.mark.django_db


def test_playbooks_versions_and_executions_are_read_only(superuser):
    playbook = services.playbook_save(
        document=playbook_yaml("restart-worker", "http://127.0.0.1:9", mode="shadow"),
        actor="tests",
    ).playbook
    service = service_create(heartbeat_name="worker-1", alert_interval=5)
    execution = engine.execution_create(
        playbook=playbook, service=service, alert_id=None, trigger={}, automatic=False, actor="t"
    )
    version = playbook.versions.get()
    _assert_read_only(
        superuser,
        "playbooks",
        [("playbook", playbook.pk), ("playbookversion", version.pk), ("execution", execution.pk)],
    )
    assert Playbook.objects.get().name == "restart-worker"
    assert Execution.objects.filter(pk=execution.pk).exists()


def test_scripts_versions_agents_and_jobs_are_read_only(superuser):
    from remediation.agents import agent_create
    from remediation.models import Agent, Job, Script
    from remediation.services import RunTarget, script_create, script_run

    version = script_create(name="greet", actor="t", command=["/bin/echo"], run_local=True)
    agent = agent_create(name="web-1", actor="t").agent
    [job] = script_run(name="greet", target=RunTarget(local=True), args={}, actor="t")
    _assert_read_only(
        superuser,
        "remediation",
        [
            ("script", version.script.pk),
            ("scriptversion", version.pk),
            ("agent", agent.pk),
            ("job", job.pk),
        ],
    )
    assert Script.objects.get().name == "greet" and Agent.objects.get().name == "web-1"
    assert Job.objects.filter(pk=job.pk).exists()


def _assert_read_only(superuser, app: str, rows: list[tuple[str, object]]) -> None:
    """Lists and change pages open; adding, saving and deleting are refused."""
    for model, pk in rows:
        base = f"/admin/{app}/{model}/"
        assert superuser.get(base).status_code == 200
        assert superuser.get(base + "add/").status_code == 403
        page = superuser.get(f"{base}{pk}/change/")
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert superuser.post(f"{base}{pk}/change/", {"name": "renamed"}).status_code == 403
        assert superuser.post(f"{base}{pk}/delete/", {"post": "yes"}).status_code == 403
