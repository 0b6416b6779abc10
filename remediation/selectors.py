"""Reads for scripts, agents and jobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, QuerySet

from medic.errors import NotFound
from remediation.models import Agent, Job, JobState, Script, ScriptVersion


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


def agent_status(agent: Agent) -> str:
    """new (never registered), online, offline (its service is down) or disabled. The service
    ``agent-<name>`` decides: its deadline is the one rule for "has this agent gone quiet"."""
    if not agent.enabled:
        return "disabled"
    status = agent.service.status if agent.service_id else None
    return {"up": "online", "down": "offline"}.get(status or "", "new")


@dataclass(frozen=True)
class HeldScript:
    """A script an agent reported holding, compared with the server's registration."""

    name: str
    sha256: str
    # The current version's sha256 on the server ("" when the server has no such script).
    server_sha256: str
    server_version: int | None
    enabled: bool

    @property
    def state(self) -> str:
        """match, mismatch (the agent would refuse it: hash_mismatch_server), unregistered
        (the server does not know it), disabled (the server would not run it)."""
        if self.server_version is None:
            return "unregistered"
        if not self.enabled:
            return "disabled"
        return "match" if self.server_sha256 == self.sha256 else "mismatch"


def current_versions(names: Iterable[str]) -> dict[str, ScriptVersion]:
    """The current version of each named script (one query)."""
    names = set(names)
    if not names:
        return {}
    rows = ScriptVersion.objects.select_related("script").filter(
        script__name__in=names, version=F("script__current_version")
    )
    return {v.script.name: v for v in rows}


def labels_missing(agent: Agent, required: Iterable[str]) -> set[str]:
    """The labels of ``required`` the agent does not carry (its own and the reported ones): the
    one rule for "may this agent be targeted for that script / label set"."""
    return set(required) - set(agent.all_labels)


def scripts_expected_on(agent: Agent) -> list[ScriptVersion]:
    """Current versions of the enabled scripts this agent may run (allowed on agents, their
    labels all carried by it)."""
    versions = ScriptVersion.objects.select_related("script").filter(
        script__enabled=True, run_on_agents=True, version=F("script__current_version")
    )
    return [
        v for v in versions.order_by("script__name") if not labels_missing(agent, v.agent_labels)
    ]


def agent_held_scripts(
    agent: Agent, versions: dict[str, ScriptVersion] | None = None
) -> list[HeldScript]:
    """What the agent last reported holding, each against the server's current version."""
    if versions is None:
        versions = current_versions(s.get("name", "") for s in agent.scripts)
    held = []
    for entry in agent.scripts:
        name, sha256 = entry.get("name", ""), entry.get("sha256", "")
        version = versions.get(name)
        held.append(
            HeldScript(
                name=name,
                sha256=sha256,
                server_sha256=version.sha256 if version else "",
                server_version=version.version if version else None,
                enabled=version.script.enabled if version else False,
            )
        )
    return held


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
    *,
    state: str | None = None,
    agent: str | None = None,
    script: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> QuerySet[Job]:
    """Jobs newest first; ``created_from`` inclusive, ``created_to`` exclusive."""
    qs = Job.objects.select_related("script_version__script", "agent")
    if state:
        qs = qs.filter(state=state)
    if agent:
        qs = qs.filter(agent__name=agent)
    if script:
        qs = qs.filter(script_version__script__name=script)
    if created_from is not None:
        qs = qs.filter(created_at__gte=created_from)
    if created_to is not None:
        qs = qs.filter(created_at__lt=created_to)
    return qs


def agent_has_queued_job(agent_id: int) -> bool:
    return Job.objects.filter(agent_id=agent_id, state=JobState.QUEUED).exists()
