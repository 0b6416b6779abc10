"""Reads for playbooks, versions, executions and breakers."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from medic.errors import NotFound
from remediation.playbooks.models import (
    CircuitBreaker,
    Execution,
    ExecutionState,
    Outcome,
    Playbook,
    PlaybookVersion,
)


def playbook_get(name: str, *, for_update: bool = False) -> Playbook:
    qs = Playbook.objects.select_for_update() if for_update else Playbook.objects.all()
    playbook = qs.filter(name=name).first()
    if playbook is None:
        raise NotFound(f"No playbook named '{name}'.", code="playbook_not_found")
    return playbook


def playbook_list() -> QuerySet[Playbook]:
    return Playbook.objects.order_by("name")


def version_get(playbook: Playbook, version: int | None = None) -> PlaybookVersion:
    found = playbook.versions.filter(version=version or playbook.current_version).first()
    if found is None:
        raise NotFound(
            f"Playbook '{playbook.name}' has no version {version}.", code="version_not_found"
        )
    return found


def version_scores(playbook: Playbook) -> dict[int, dict]:
    """Per version: scored executions, how many recovered, and the success rate."""
    rows = (
        Execution.objects.filter(playbook=playbook)
        .exclude(outcome="")
        .values("version__version")
        .annotate(
            scored=Count("id"),
            recovered=Count("id", filter=Q(outcome=Outcome.RECOVERED)),
        )
    )
    return {
        r["version__version"]: {
            "scored": r["scored"],
            "recovered": r["recovered"],
            "success_rate": round(r["recovered"] / r["scored"], 3) if r["scored"] else None,
        }
        for r in rows
    }


def execution_list(
    *, playbook: str | None = None, service: str | None = None, state: str | None = None
) -> QuerySet[Execution]:
    qs = Execution.objects.select_related("playbook", "version").prefetch_related("steps")
    if playbook:
        qs = qs.filter(playbook__name=playbook)
    if service:
        qs = qs.filter(service_name=service)
    if state:
        qs = qs.filter(state=state)
    return qs


def execution_get(execution_id) -> Execution:
    try:
        pk = int(execution_id)
    except (TypeError, ValueError):
        pk = None
    execution = (
        Execution.objects.select_related("playbook", "version")
        .prefetch_related("steps", "events")
        .filter(pk=pk)
        .first()
        if pk
        else None
    )
    if execution is None:
        raise NotFound(f"No execution {execution_id}.", code="execution_not_found")
    return execution


def breakers() -> QuerySet[CircuitBreaker]:
    return CircuitBreaker.objects.order_by("scope", "key")


def open_count() -> int:
    return Execution.objects.filter(
        state__in=[ExecutionState.RUNNING, ExecutionState.WAITING]
    ).count()
