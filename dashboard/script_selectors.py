"""Reads for the scripts, agents and jobs pages.

Lists are paginated first and completed with a fixed number of queries per page (the current
versions of the scripts shown, the server's versions of the scripts the agents shown hold), so
the query count does not grow with the number of rows. The rules themselves (an agent's status,
whether a held script's hash matches, which agents may run a script) are remediation.selectors'.
"""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from remediation import selectors
from remediation.models import Agent, Job, Script, ScriptVersion

RECENT_JOBS = 20


def script_rows(*, q: str = "", where: str = "") -> QuerySet[ScriptVersion]:
    """Current versions of the scripts, by name; ``where`` is local or agents."""
    qs = ScriptVersion.objects.select_related("script").filter(version=F("script__current_version"))
    if q:
        qs = qs.filter(Q(script__name__icontains=q) | Q(description__icontains=q))
    if where == "local":
        qs = qs.filter(run_local=True)
    elif where == "agents":
        qs = qs.filter(run_on_agents=True)
    return qs.defer("body").order_by("script__name")


def script_versions(script: Script) -> QuerySet[ScriptVersion]:
    return script.versions.defer("body").order_by("-version")


def script_recent_jobs(script: Script) -> list[Job]:
    return list(
        Job.objects.filter(script_version__script=script)
        .select_related("script_version", "agent")
        .defer("stdout_tail", "stderr_tail")
        .order_by("-created_at", "-id")[:RECENT_JOBS]
    )


def script_holders(version: ScriptVersion) -> list[dict]:
    """The agents that reported holding this script, and whether their file is this version's.
    Agents are few (one per host); their reports are read in one query and searched here (a
    JSON containment lookup would not work on SQLite, the embedded mode's database)."""
    name = version.script.name
    rows = []
    for agent in Agent.objects.select_related("service").order_by("name"):
        for held in selectors.agent_held_scripts(agent, {name: version}):
            if held.name == name:
                rows.append({"agent": agent, "held": held, "status": selectors.agent_status(agent)})
    return rows


def agent_rows() -> QuerySet[Agent]:
    return selectors.agent_list()


def agent_facts(agents: list[Agent]) -> None:
    """Attach ``status``, ``held`` (each reported script against the server's) and
    ``mismatches`` to the agents of a page: one query for all of them."""
    names = {s.get("name", "") for a in agents for s in a.scripts}
    versions = selectors.current_versions(names)
    for agent in agents:
        agent.status = selectors.agent_status(agent)
        agent.held = selectors.agent_held_scripts(agent, versions)
        agent.mismatches = sum(1 for h in agent.held if h.state != "match")


def agent_recent_jobs(agent: Agent) -> list[Job]:
    return list(
        Job.objects.filter(agent=agent)
        .select_related("script_version__script")
        .defer("stdout_tail", "stderr_tail")
        .order_by("-created_at", "-id")[:RECENT_JOBS]
    )


def job_rows(**filters) -> QuerySet[Job]:
    """The jobs list: the API's selector, without the outputs (the detail page shows them)."""
    return selectors.job_list(**filters).defer(*JOB_ROW_DEFERRED).order_by("-created_at", "-id")


# What a row of the jobs list does not show: outputs, arguments, the version's body and schema,
# the agent's reported scripts (a few KB of JSON each, decoded 50 times a page otherwise).
JOB_ROW_DEFERRED = (
    "stdout_tail",
    "stderr_tail",
    "args",
    "script_version__body",
    "script_version__args_schema",
    "script_version__command",
    "script_version__description",
    "agent__scripts",
    "agent__labels",
    "agent__reported_labels",
)


def job_filter_choices() -> dict[str, list[str]]:
    """Suggestions for the jobs filters: every script and agent name (both are few)."""
    return {
        "script": list(Script.objects.order_by("name").values_list("name", flat=True)[:500]),
        "agent": list(Agent.objects.order_by("name").values_list("name", flat=True)[:500]),
    }
