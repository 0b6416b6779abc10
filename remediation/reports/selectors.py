"""The PRD's success metrics, read from what Medic already stores (docs/outcomes.md).

Each resolved alert is classified once, in the database, by how it ended:

- ``approved``: a completed, active-mode execution linked to the alert was started by a person
  or waited for approval before it ran;
- ``playbook``: a completed, active-mode execution linked to the alert ran on its own;
- ``human``: no such execution, and the alert was resolved by a person (``alert.resolved`` event
  with ``how`` manual or deactivated);
- ``own``: the service recovered with nobody acting.

Percentiles are ``percentile_cont`` on PostgreSQL. On SQLite (the embedded mode) the durations
of the (already filtered) group are fetched and the same linear interpolation is done in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    BigIntegerField,
    Case,
    CharField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Extract

from alerting.models import Alert, AlertReason, AlertState
from heartbeats.maintenance import window_covering
from heartbeats.models import Service
from medic.events.models import DomainEvent, EventKind
from medic.metrics import AUTH_FAILURES, RATE_LIMITED
from medic.refusals import refused_by_day
from remediation.models import Agent
from remediation.playbooks.models import (
    Execution,
    ExecutionEvent,
    ExecutionState,
    Mode,
    Playbook,
    PlaybookVersion,
)
from remediation.playbooks.triggers import service_matches

ENDINGS = ("own", "playbook", "approved", "human")
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
# Notices written already resolved (alert_notice): events, not incidents.
NOTICE_REASONS = (
    AlertReason.SCRIPT_SKIPPED,
    AlertReason.REMEDIATION_CIRCUIT_OPEN,
    AlertReason.PLAYBOOK_DEMOTED,
)
HUMAN_HOWS = ("manual", "deactivated")
MTTR_TARGET_REDUCTION = 0.30
FALSE_POSITIVE_TARGET = 0.05
COVERAGE_TARGET = 0.50
TOP_UNCOVERED = 10
# Flapping: an alert opening within FLAP_WINDOW of the service's previous one is a repeat; a
# service with FLAP_REPEATS repeats in the period (three alerts in a row) is flapping.
FLAP_WINDOW = timedelta(hours=1)
FLAP_REPEATS = 2


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime
    team: str | None = None

    @property
    def length(self) -> timedelta:
        return self.until - self.since


def incidents(period: Period) -> QuerySet:
    """Alerts (not notices) opened in the period, optionally of one team's services."""
    qs = Alert.objects.exclude(reason__in=NOTICE_REASONS).filter(
        opened_at__gte=period.since, opened_at__lt=period.until
    )
    if period.team:
        qs = qs.filter(service__team=period.team)
    return qs


_DURATION = ExpressionWrapper(F("resolved_at") - F("opened_at"), DurationField())


def _classified(period: Period) -> QuerySet:
    done = Execution.objects.filter(
        alert_id=OuterRef("pk"),
        mode=Mode.ACTIVE,
        state=ExecutionState.COMPLETED,
        started_at__lte=OuterRef("resolved_at"),
    )
    approved = done.filter(
        Q(automatic=False)
        | Exists(
            ExecutionEvent.objects.filter(
                execution_id=OuterRef("pk"), from_state=ExecutionState.PENDING_APPROVAL
            )
        )
    )
    by_hand = (
        DomainEvent.objects.filter(kind=EventKind.ALERT_RESOLVED)
        .annotate(alert_ref=Cast(KT("payload__alert_id"), BigIntegerField()))
        .filter(alert_ref=OuterRef("pk"), payload__how__in=HUMAN_HOWS)
    )
    return (
        incidents(period)
        .filter(state=AlertState.RESOLVED, resolved_at__isnull=False)
        .annotate(
            ended_by=Case(
                When(Exists(approved), then=Value("approved")),
                When(Exists(done), then=Value("playbook")),
                When(Exists(by_hand), then=Value("human")),
                default=Value("own"),
                output_field=CharField(),
            ),
            duration=_DURATION,
        )
    )


class _PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate (continuous percentile, linear interpolation)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float):
        super().__init__(expression, fraction=float(fraction))


def _interpolate(values: list[float], fraction: float) -> float:
    """percentile_cont's definition: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _stats(qs: QuerySet, group: str | None) -> dict:
    """{group value: {count, mean, p50, p90, p99}} in seconds (group None: one "all" entry)."""
    if connection.vendor == "postgresql":
        # Spelled out, not F("duration"): an annotation referenced here would join the GROUP BY.
        seconds = Extract(_DURATION, "epoch")
        aggregates = {
            "n": Count("id"),
            "mean": Avg(seconds),
            **{name: _PercentileCont(seconds, f) for name, f in PERCENTILES},
        }
        if group:
            rows = list(qs.values(group).annotate(**aggregates).order_by(group))
        else:
            rows = [{**qs.aggregate(**aggregates), None: "all"}]
        return {
            row[group]: {
                "count": row["n"],
                "mean": round(float(row["mean"]), 3),
                **{name: round(float(row[name]), 3) for name, _ in PERCENTILES},
            }
            for row in rows
            if row["n"]
        }
    grouped: dict[str, list[float]] = {}
    for key, duration in qs.values_list(group or "id", "duration"):
        grouped.setdefault(key if group else "all", []).append(duration.total_seconds())
    return {
        key: {
            "count": len(values),
            "mean": round(sum(values) / len(values), 3),
            **{name: round(_interpolate(values, f), 3) for name, f in PERCENTILES},
        }
        for key, values in sorted(grouped.items())
    }


def _active_patterns() -> list[tuple[str, str]]:
    """(playbook name, service_pattern) of enabled playbooks whose current version is active."""
    versions = PlaybookVersion.objects.filter(
        playbook__enabled=True, version=F("playbook__current_version"), mode=Mode.ACTIVE
    ).select_related("playbook")
    return [(v.playbook.name, v.spec["trigger"]["service_pattern"]) for v in versions]


def _covered(service, patterns: list[tuple[str, str]]) -> bool:
    return any(service_matches(pattern, service) for _, pattern in patterns)


def playbooks_enabled_at() -> datetime | None:
    """When the first active-mode playbook version was saved (None: never)."""
    first = PlaybookVersion.objects.filter(mode=Mode.ACTIVE).order_by("created_at").first()
    return first.created_at if first else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def mttr(period: Period) -> dict:
    qs = _classified(period)
    enabled_at = playbooks_enabled_at()
    patterns = _active_patterns()
    covered_ids = [s.pk for s in Service.objects.all() if _covered(s, patterns)]
    current = qs.filter(service_id__in=covered_ids)
    baseline = None
    target = {"reduction": MTTR_TARGET_REDUCTION, "met": None, "reduction_observed": None}
    if enabled_at is not None:
        before = Period(enabled_at - period.length, enabled_at, period.team)
        baseline_stats = _stats(_classified(before).filter(service_id__in=covered_ids), None)
        current_stats = _stats(current, None)
        baseline = {
            "since": before.since,
            "until": before.until,
            "covered_services": baseline_stats.get("all"),
        }
        if "all" in baseline_stats and "all" in current_stats:
            was, now = baseline_stats["all"]["mean"], current_stats["all"]["mean"]
            observed = round(1 - now / was, 4) if was else None
            target["reduction_observed"] = observed
            target["met"] = observed is not None and observed >= MTTR_TARGET_REDUCTION
    return {
        "overall": _stats(qs, None).get("all"),
        "by_ending": _stats(qs, "ended_by"),
        "by_team": _stats(qs, "service__team"),
        "by_priority": _stats(qs, "priority"),
        "by_service": _stats(qs, "service__heartbeat_name"),
        "covered_services": _stats(current, None).get("all"),
        "playbooks_enabled_at": enabled_at,
        "baseline": baseline,
        "target": target,
    }


def coverage(period: Period) -> dict:
    patterns = _active_patterns()
    services = Service.objects.filter(active=True)
    if period.team:
        services = services.filter(team=period.team)
    teams: dict[str, dict] = {}
    covered_ids = set()
    for service in services:
        row = teams.setdefault(service.team, {"services": 0, "services_covered": 0})
        row["services"] += 1
        if _covered(service, patterns):
            row["services_covered"] += 1
            covered_ids.add(service.pk)
    per_service = (
        incidents(period)
        .values("service_id", "service__heartbeat_name", "service__team")
        .annotate(n=Count("id"))
        .order_by("-n", "service__heartbeat_name")
    )
    uncovered = []
    alerts = alerts_covered = 0
    for row in per_service:
        team = teams.setdefault(row["service__team"], {"services": 0, "services_covered": 0})
        team["alerts"] = team.get("alerts", 0) + row["n"]
        alerts += row["n"]
        if row["service_id"] in covered_ids:
            team["alerts_covered"] = team.get("alerts_covered", 0) + row["n"]
            alerts_covered += row["n"]
        else:
            uncovered.append({"service": row["service__heartbeat_name"], "alerts": row["n"]})
    for row in teams.values():
        row.setdefault("alerts", 0)
        row.setdefault("alerts_covered", 0)
        row["alert_share"] = _ratio(row["alerts_covered"], row["alerts"])
        row["service_share"] = _ratio(row["services_covered"], row["services"])
    fired = set(
        Execution.objects.filter(created_at__gte=period.since, created_at__lt=period.until)
        .values_list("playbook__name", flat=True)
        .distinct()
    )
    share = _ratio(alerts_covered, alerts)
    return {
        "alerts": alerts,
        "alerts_covered": alerts_covered,
        "alert_share": share,
        "services": sum(t["services"] for t in teams.values()),
        "services_covered": len(covered_ids),
        "by_team": dict(sorted(teams.items())),
        "never_fired": sorted(
            name
            for name in Playbook.objects.filter(enabled=True).values_list("name", flat=True)
            if name not in fired
        ),
        "top_uncovered": uncovered[:TOP_UNCOVERED],
        "target": {"share": COVERAGE_TARGET, "met": None if share is None else share >= 0.5},
    }


def accuracy(period: Period) -> dict:
    qs = _classified(period)
    interval = ExpressionWrapper(
        F("service__alert_interval") * timedelta(minutes=1), DurationField()
    )
    quick = qs.filter(ended_by="own", duration__lte=interval).count()
    # Held back when it opened, and a maintenance window (not a mute) covered that instant.
    maintenance = sum(
        1
        for alert in incidents(period).filter(suppressed=True).select_related("service")
        if window_covering(service=alert.service, at=alert.opened_at) is not None
    )
    total = incidents(period).count()
    rate = _ratio(quick, total)
    repeats, flapping = _repeats(period)
    return {
        "alerts": total,
        "resolved_within_interval_unaided": quick,
        "suppressed_by_maintenance": maintenance,
        "suppressed_by_maintenance_share": _ratio(maintenance, total),
        "repeat_alerts": repeats,
        "repeat_share": _ratio(repeats, total),
        "flapping_services": flapping,
        "false_positive_rate": rate,
        "target": {
            "rate": FALSE_POSITIVE_TARGET,
            "met": None if rate is None else rate < FALSE_POSITIVE_TARGET,
        },
    }


def _repeats(period: Period) -> tuple[int, list[str]]:
    """Alerts that opened within FLAP_WINDOW of the previous alert of the same service (both in
    the period), and the services with at least FLAP_REPEATS such repeats: flapping."""
    repeats, per_service = 0, {}
    previous: tuple[str, datetime] | None = None
    rows = incidents(period).order_by("service__heartbeat_name", "opened_at", "id")
    for name, opened_at in rows.values_list("service__heartbeat_name", "opened_at"):
        if previous and previous[0] == name and opened_at - previous[1] <= FLAP_WINDOW:
            repeats += 1
            per_service[name] = per_service.get(name, 0) + 1
        previous = (name, opened_at)
    return repeats, sorted(name for name, n in per_service.items() if n >= FLAP_REPEATS)


def _counter_values(counter, label: str) -> dict[str, float]:
    values = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                values[sample.labels[label]] = sample.value
    return dict(sorted(values.items()))


def refusal_days(period: Period) -> dict | None:
    """{UTC day: {reason: count}} of the days the period touches (whole days), from the tally
    every process keeps in Redis; None without it."""
    last = (period.until - timedelta(microseconds=1)).astimezone(UTC).date()
    return refused_by_day(period.since.astimezone(UTC).date(), last)


def security(period: Period | None = None) -> dict:
    """Refusals counted by this process since it started (the counters /metrics serves) and,
    for a period, the tally of every process over the days it touches."""
    refused = _counter_values(AUTH_FAILURES, "reason")
    limited = _counter_values(RATE_LIMITED, "class")
    out = {
        "scope": "this process since it started",
        "refused_by_reason": refused,
        "rate_limited_by_class": limited,
        "refused_total": int(sum(refused.values())),
    }
    if period is not None:
        days = refusal_days(period)
        totals: dict[str, int] = {}
        for counts in (days or {}).values():
            for reason, n in counts.items():
                totals[reason] = totals.get(reason, 0) + n
        out["period"] = (
            None
            if days is None
            else {
                "scope": "every process, whole UTC days of the period",
                "refused_by_reason": dict(sorted(totals.items())),
                "refused_total": sum(totals.values()),
            }
        )
    return out


def agents() -> dict:
    """The memory agents last reported (now, not over the period) against the threshold."""
    threshold = settings.MEDIC_AGENT_MEMORY_THRESHOLD_BYTES
    reporting = Agent.objects.filter(memory_rss_bytes__isnull=False).order_by(
        "-memory_rss_bytes", "name"
    )
    rows = [
        {
            "name": agent.name,
            "agent_version": agent.agent_version,
            "memory_rss_bytes": agent.memory_rss_bytes,
            "memory_reported_at": agent.memory_reported_at,
        }
        for agent in reporting
    ]
    over = [row for row in rows if row["memory_rss_bytes"] > threshold]
    return {
        "threshold_bytes": threshold,
        "agents": Agent.objects.count(),
        "reporting": len(rows),
        "max_rss_bytes": rows[0]["memory_rss_bytes"] if rows else None,
        "over_threshold": over,
        "target": {"met": None if not rows else not over},
    }


def success_metrics(period: Period) -> dict:
    return {
        "since": period.since,
        "until": period.until,
        "team": period.team,
        "mttr": mttr(period),
        "coverage": coverage(period),
        "accuracy": accuracy(period),
        "security": security(period),
        "agents": agents(),
    }
