"""Reads for the remediation pages: playbook rows with their current version, last run, success
rate and breaker; executions with filters; the approvals inbox.

Every list is paginated first and then completed with a fixed number of queries per page (one
per kind of fact), so the query count does not grow with the number of rows.
"""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT

from remediation.playbooks.models import (
    BreakerScope,
    CircuitBreaker,
    Execution,
    ExecutionState,
    Outcome,
    Playbook,
    PlaybookVersion,
)


def playbook_rows(*, pattern: str = "", mode: str = "") -> QuerySet[Playbook]:
    current = PlaybookVersion.objects.filter(
        playbook=OuterRef("pk"), version=OuterRef("current_version")
    )
    qs = Playbook.objects.annotate(
        current_mode=Subquery(current.values("mode")[:1]),
        current_pattern=Subquery(
            current.annotate(p=KT("spec__trigger__service_pattern")).values("p")[:1]
        ),
    ).order_by("name")
    if pattern:
        qs = qs.filter(current_pattern__icontains=pattern)
    if mode:
        qs = qs.filter(current_mode=mode)
    return qs


def playbook_facts(playbooks: list[Playbook]) -> None:
    """Attach ``spec``, ``last_run``, ``score`` and ``breaker`` to each playbook of a page."""
    if not playbooks:
        return
    ids = [p.pk for p in playbooks]
    pairs = Q()
    for p in playbooks:
        pairs |= Q(playbook_id=p.pk, version=p.current_version)
    specs = dict(PlaybookVersion.objects.filter(pairs).values_list("playbook_id", "spec"))
    last = {
        e.playbook_id: e
        for e in Execution.objects.filter(playbook_id__in=ids)
        .order_by("playbook_id", "-created_at", "-id")
        .distinct("playbook_id")
        .only("id", "playbook_id", "state", "outcome", "created_at", "service_name", "mode")
    }
    scores = {
        r["playbook_id"]: r
        for r in Execution.objects.filter(playbook_id__in=ids)
        .exclude(outcome="")
        .values("playbook_id")
        .annotate(scored=Count("id"), recovered=Count("id", filter=Q(outcome=Outcome.RECOVERED)))
    }
    breakers = {
        b.key: b
        for b in CircuitBreaker.objects.filter(
            scope=BreakerScope.PLAYBOOK, key__in=[p.name for p in playbooks]
        )
    }
    for p in playbooks:
        p.spec = specs.get(p.pk, {})
        p.last_run = last.get(p.pk)
        score = scores.get(p.pk)
        p.success_rate = (
            round(100 * score["recovered"] / score["scored"]) if score and score["scored"] else None
        )
        p.scored = score["scored"] if score else 0
        p.breaker = breakers.get(p.name)


def execution_rows(
    *,
    playbook: str = "",
    service: str = "",
    state: str = "",
    created_from=None,
    created_to=None,
) -> QuerySet[Execution]:
    qs = Execution.objects.select_related("playbook").defer("trigger", "playbook__demoted_reason")
    if playbook:
        qs = qs.filter(playbook__name=playbook)
    if service:
        qs = qs.filter(service_name__icontains=service)
    if state:
        qs = qs.filter(state=state)
    if created_from:
        qs = qs.filter(created_at__gte=created_from)
    if created_to:
        qs = qs.filter(created_at__lt=created_to)
    return qs.order_by("-created_at", "-id")


def approvals_waiting() -> QuerySet[Execution]:
    return (
        Execution.objects.filter(state=ExecutionState.PENDING_APPROVAL)
        .select_related("playbook", "version")
        .order_by("created_at", "id")
    )


def approvals_count() -> int:
    return Execution.objects.filter(state=ExecutionState.PENDING_APPROVAL).count()


def playbook_breaker(name: str) -> CircuitBreaker | None:
    return CircuitBreaker.objects.filter(scope=BreakerScope.PLAYBOOK, key=name).first()


def approval_executions(execution: Execution, limit: int = 10) -> list[Execution]:
    """Earlier executions of the same playbook (any service), newest first, with outcomes."""
    return list(
        Execution.objects.filter(playbook_id=execution.playbook_id)
        .exclude(pk=execution.pk)
        .select_related("version")
        .defer("trigger")
        .order_by("-created_at", "-id")[:limit]
    )


def service_executions(execution: Execution, limit: int = 10) -> list[Execution]:
    """The service's recent remediation runs (any playbook), newest first."""
    if execution.service_id is None:
        return []
    return list(
        Execution.objects.filter(service_id=execution.service_id)
        .exclude(pk=execution.pk)
        .select_related("playbook", "version")
        .defer("trigger")
        .order_by("-created_at", "-id")[:limit]
    )


def previous_version(execution: Execution) -> PlaybookVersion | None:
    return (
        PlaybookVersion.objects.filter(
            playbook_id=execution.playbook_id, version__lt=execution.version.version
        )
        .order_by("-version")
        .first()
    )
