"""Reads for scripts, agents and jobs."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from medic.errors import NotFound
from remediation.models import Agent, Job, JobState, Script


def script_get(name: str, *, for_update: bool = False) -> Script:
    qs = Script.objects.select_for_update() if for_update else Script.objects.all()
    script = qs.filter(name=name).first()
    if script is None:
        raise NotFound(f"No script named '{name}'.", code="script_not_found")
    return script


def script_list() -> QuerySet[Script]:
    return Script.objects.order_by("name")


def agent_get(name: str) -> Agent:
    agent = Agent.objects.select_related("service").filter(name=name).first()
    if agent is None:
        raise NotFound(f"No agent named '{name}'.", code="agent_not_found")
    return agent


def agent_list() -> QuerySet[Agent]:
    return Agent.objects.select_related("service").order_by("name")


def agent_for_key(key_id: int) -> Agent | None:
    """The agent an API key is bound to (None: the key is not an agent's)."""
    return Agent.objects.filter(api_key_id=key_id).only("id", "name", "enabled").first()


def job_get(job_id: str) -> Job:
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        pk = None
    job = (
        Job.objects.select_related("script_version__script", "agent").filter(pk=pk).first()
        if pk
        else None
    )
    if job is None:
        raise NotFound(f"No job with id '{job_id}'.", code="job_not_found")
    return job


def job_list(
    *, state: str | None = None, agent: str | None = None, script: str | None = None
) -> QuerySet[Job]:
    qs = Job.objects.select_related("script_version__script", "agent")
    if state:
        qs = qs.filter(state=state)
    if agent:
        qs = qs.filter(agent__name=agent)
    if script:
        qs = qs.filter(script_version__script__name=script)
    return qs


def agent_has_queued_job(agent_id: int) -> bool:
    return Job.objects.filter(agent_id=agent_id, state=JobState.QUEUED).exists()
