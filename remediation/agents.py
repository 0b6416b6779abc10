"""Writes for agents: creation with their bound API key, registration, liveness, disabling.

Each agent is monitored as a heartbeats.Service named ``agent-<name>``, created when it first
registers: polls record its heartbeats (at most one per ``MEDIC_AGENT_HEARTBEAT_SECONDS``), so an
agent that stops polling goes down, and alerts, through the ordinary sweep and routing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from heartbeats.models import Service
from heartbeats.services import heartbeat_record, service_create, service_get
from medic.apikeys import api_key_create, api_key_revoke
from medic.errors import Conflict, InvalidInput, MedicError, NotFound
from medic.ids import looks_like_id
from remediation.audit.services import audit_record
from remediation.models import Agent, AgentMemoryDay

logger = logging.getLogger(__name__)
AGENT_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
LABEL_MAX = 64
MAX_LABELS = 50


@dataclass
class IssuedAgent:
    agent: Agent
    secret: str


def service_name_for(agent_name: str) -> str:
    return f"agent-{agent_name}"


def _clean_labels(labels, field: str = "labels") -> list[str]:
    if isinstance(labels, str):
        labels = [x for x in labels.split(",")]
    if not isinstance(labels, list) or len(labels) > MAX_LABELS:
        raise InvalidInput(fields={field: [f"At most {MAX_LABELS} labels."]})
    cleaned = sorted({str(x).strip() for x in labels if str(x).strip()})
    if any(len(x) > LABEL_MAX for x in cleaned):
        raise InvalidInput(fields={field: [f"Labels are at most {LABEL_MAX} characters."]})
    return cleaned


def agent_create(*, name: str, labels=(), actor: str) -> IssuedAgent:
    """Create an agent and its API key (scope ``agent``, bound to it). The secret is returned
    once."""
    name = (name or "").strip()
    if not AGENT_NAME_RE.match(name) or looks_like_id(name):
        raise InvalidInput(
            fields={"name": ["1 to 100 characters from A-Z a-z 0-9 _ . - (not only digits)."]}
        )
    clean = _clean_labels(list(labels))
    try:
        with transaction.atomic():
            issued = api_key_create(
                name=f"agent {name}"[:100],
                scopes=[],
                agent=True,
                # An agent's traffic is a poll every 30 s plus two requests per job; bursts of
                # jobs need more than the management default.
                rate_limits={"management": settings.MEDIC_AGENT_RATE_LIMIT},
                actor=actor,
            )
            agent = Agent(name=name, api_key=issued.key, labels=clean, created_by=actor)
            agent.full_clean(exclude=["api_key", "service"], validate_unique=False)
            agent.save()
            audit_record(
                actor=actor,
                event="agent.created",
                object_type="agent",
                object_id=name,
                details={"labels": clean, "api_key_id": issued.key.pk},
            )
    except IntegrityError as exc:
        raise Conflict(f"An agent named '{name}' already exists.", code="agent_exists") from exc
    return IssuedAgent(agent=agent, secret=issued.secret)


def agent_disable(*, name: str, actor: str) -> Agent:
    """Disable an agent and revoke its key (effective on every process within seconds)."""
    with transaction.atomic():
        agent = Agent.objects.select_for_update().filter(name=name).first()
        if agent is None:
            raise NotFound(f"No agent named '{name}'.", code="agent_not_found")
        if agent.enabled:
            agent.enabled = False
            agent.save(update_fields=["enabled"])
            api_key_revoke(key_id=agent.api_key_id, actor=actor)
            audit_record(
                actor=actor,
                event="agent.disabled",
                object_type="agent",
                object_id=name,
                details={"api_key_id": agent.api_key_id},
            )
    return agent


def _ensure_service(agent: Agent) -> Service:
    if agent.service_id is not None:
        return agent.service
    name = service_name_for(agent.name)
    try:
        service = service_create(
            heartbeat_name=name,
            service_name=f"medic-agent {agent.name}",
            alert_interval=settings.MEDIC_AGENT_OFFLINE_AFTER_MINUTES,
            team=settings.MEDIC_AGENT_SERVICE_TEAM,
            priority=settings.MEDIC_AGENT_SERVICE_PRIORITY,
            runbook="docs/agent.md#troubleshooting",
            actor=f"agent:{agent.name}",
        )
    except Conflict:
        # Created beforehand (by an operator, or a previous agent of this name): adopt it.
        service = service_get(name)
    agent.service = service
    return service


def agent_register(
    *,
    agent_id: int,
    hostname: str,
    os: str,
    arch: str,
    agent_version: str,
    labels: list[str],
    scripts: list[dict],
) -> Agent:
    """An agent (re)starting: record what it runs and holds, make sure it is monitored."""
    now = timezone.now()
    with transaction.atomic():
        agent = (
            Agent.objects.select_for_update(of=("self",)).select_related("service").get(pk=agent_id)
        )
        if not agent.enabled:
            raise Conflict(f"Agent '{agent.name}' is disabled.", code="agent_disabled")
        before = (agent.hostname, agent.agent_version, agent.scripts, agent.reported_labels)
        agent.hostname = hostname[:255]
        agent.os = os[:32]
        agent.arch = arch[:32]
        agent.agent_version = agent_version[:32]
        agent.reported_labels = _clean_labels(labels, "labels")
        agent.scripts = sorted(
            ({"name": s["name"], "sha256": s["sha256"].lower()} for s in scripts),
            key=lambda s: s["name"],
        )
        agent.registered_at = now
        agent.last_seen_at = now
        _ensure_service(agent)
        agent.save(
            update_fields=[
                "hostname",
                "os",
                "arch",
                "agent_version",
                "reported_labels",
                "scripts",
                "registered_at",
                "last_seen_at",
                "service",
            ]
        )
        after = (agent.hostname, agent.agent_version, agent.scripts, agent.reported_labels)
        audit_record(
            actor=f"agent:{agent.name}",
            event="agent.registered",
            object_type="agent",
            object_id=agent.name,
            details={
                "hostname": agent.hostname,
                "os": agent.os,
                "arch": agent.arch,
                "agent_version": agent.agent_version,
                "labels": agent.reported_labels,
                "scripts": agent.scripts,
                "changed": before != after,
            },
        )
    _heartbeat(agent, "registered")
    return agent


def agent_seen(
    *,
    agent_id: int,
    memory_rss_bytes: int | None = None,
    agent_version: str | None = None,
    now=None,
) -> None:
    """A poll arrived. At most once per MEDIC_AGENT_HEARTBEAT_SECONDS (whichever process wins
    the compare-and-set) it moves ``last_seen_at`` and records a heartbeat of the agent's
    service; every other poll costs one indexed UPDATE that matches nothing. The resident memory
    and version the poll reports (newer agents; older ones send neither) are stored the same
    way, at most once per interval, with the day's highest memory kept for the history."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.MEDIC_AGENT_HEARTBEAT_SECONDS)
    won = Agent.objects.filter(
        Q(last_seen_at__lt=cutoff) | Q(last_seen_at__isnull=True), pk=agent_id
    ).update(last_seen_at=now)
    if memory_rss_bytes is not None:
        _memory_report(agent_id, memory_rss_bytes, agent_version, now, cutoff)
    if won:
        agent = Agent.objects.select_related("service").get(pk=agent_id)
        _heartbeat(agent, "polling")


def _memory_report(agent_id: int, rss: int, version: str | None, now, cutoff) -> None:
    changes = {"memory_rss_bytes": rss, "memory_reported_at": now}
    if version:
        changes["agent_version"] = version[:32]
    won = Agent.objects.filter(
        Q(memory_reported_at__lt=cutoff) | Q(memory_reported_at__isnull=True), pk=agent_id
    ).update(**changes)
    if not won:
        return
    day = now.astimezone(UTC).date()
    days = AgentMemoryDay.objects.filter(agent_id=agent_id, day=day)
    if days.update(max_rss_bytes=Greatest(F("max_rss_bytes"), Value(rss))):
        return
    try:
        with transaction.atomic():
            AgentMemoryDay.objects.create(agent_id=agent_id, day=day, max_rss_bytes=rss)
    except IntegrityError:
        # Another process made the day's row first.
        days.update(max_rss_bytes=Greatest(F("max_rss_bytes"), Value(rss)))


def _heartbeat(agent: Agent, message: str) -> None:
    if agent.service_id is None:
        return
    try:
        heartbeat_record(service_ref=agent.service_id, status="UP", message=message)
    except MedicError as exc:
        # Paused (inactive) or deleted by an operator: the agent keeps working unmonitored.
        logger.info("agent heartbeat not recorded: %s", exc.message, extra={"agent": agent.name})


def agent_memory_prune(*, now=None, batch: int = 5000) -> int:
    """Forget per-day agent memory older than MEDIC_AGENT_MEMORY_RETENTION_DAYS (0 keeps every
    day), a batch per call; the outcomes report reads at most 366 days back."""
    days = settings.MEDIC_AGENT_MEMORY_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()).astimezone(UTC).date() - timedelta(days=days)
    ids = list(AgentMemoryDay.objects.filter(day__lt=cutoff).values_list("pk", flat=True)[:batch])
    return AgentMemoryDay.objects.filter(pk__in=ids).delete()[0] if ids else 0
