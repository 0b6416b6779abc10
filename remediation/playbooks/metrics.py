"""Prometheus metrics for playbooks (docs/playbooks.md "Metrics")."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

EXECUTIONS_STARTED = Counter(
    "medic_playbook_executions_started_total", "Executions started.", ["playbook", "mode"]
)
EXECUTIONS_FINISHED = Counter(
    "medic_playbook_executions_finished_total",
    "Executions finished, by outcome (completed, failed, cancelled, shadow).",
    ["playbook", "outcome"],
)
STEPS = Counter(
    "medic_playbook_steps_total", "Steps finished, by type and outcome.", ["type", "outcome"]
)
STEP_DURATION = Histogram(
    "medic_playbook_step_duration_seconds",
    "Time one step execution took (one attempt, one claim).",
    ["type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
TRIGGERS = Counter(
    "medic_playbook_triggers_total",
    "Matching events, by decision (started, already_running, circuit_open, ...).",
    ["playbook", "decision"],
)
BREAKER_TRIPS = Counter(
    "medic_playbook_circuit_trips_total", "Circuit breakers tripped.", ["scope"]
)
OUTCOMES = Counter(
    "medic_playbook_outcomes_total",
    "Scored executions (recovered or not).",
    ["playbook", "outcome"],
)
DEMOTIONS = Counter(
    "medic_playbook_demotions_total", "Playbooks demoted to approval: required.", ["playbook"]
)


class PlaybookCollector:
    """State read from the database at scrape time: executions by state, open breakers,
    success rate per playbook, shadow runs, whether remediation is stopped."""

    def describe(self):
        # Declaring the families up front keeps registration free of database queries.
        for name in (
            "medic_playbook_executions",
            "medic_playbook_execution_overdue_seconds",
            "medic_playbook_circuit_open",
            "medic_playbook_success_rate",
            "medic_playbook_shadow_runs",
            "medic_playbook_demoted",
            "medic_remediation_stopped",
        ):
            yield GaugeMetricFamily(name, "")

    def collect(self):
        from django.db import DatabaseError
        from django.db.models import Count, Q

        from remediation.playbooks.models import (
            CircuitBreaker,
            Execution,
            ExecutionState,
            Mode,
            Outcome,
            Playbook,
        )
        from remediation.playbooks.switch import remediation_stopped

        states = GaugeMetricFamily(
            "medic_playbook_executions", "Executions in each state.", labels=["state"]
        )
        oldest = GaugeMetricFamily(
            "medic_playbook_execution_overdue_seconds",
            "How late the most overdue running or waiting execution is.",
        )
        circuits = GaugeMetricFamily(
            "medic_playbook_circuit_open",
            "1 for each open circuit breaker.",
            labels=["scope", "key"],
        )
        rates = GaugeMetricFamily(
            "medic_playbook_success_rate",
            "Recovered / scored executions, all versions (per version: the API).",
            labels=["playbook"],
        )
        shadow = GaugeMetricFamily(
            "medic_playbook_shadow_runs", "Executions in shadow mode.", labels=["playbook"]
        )
        demoted = GaugeMetricFamily(
            "medic_playbook_demoted", "1 for each demoted playbook.", labels=["playbook"]
        )
        stopped = GaugeMetricFamily("medic_remediation_stopped", "1 when remediation is stopped.")
        try:
            from django.utils import timezone

            counts = dict(
                Execution.objects.values("state").annotate(n=Count("id")).values_list("state", "n")
            )
            for state in ExecutionState.values:
                states.add_metric([state], counts.get(state, 0))
            first = (
                Execution.objects.filter(state__in=["running", "waiting"], due_at__isnull=False)
                .order_by("due_at")
                .values_list("due_at", flat=True)
                .first()
            )
            late = (timezone.now() - first).total_seconds() if first else 0.0
            oldest.add_metric([], max(0.0, late))
            for b in CircuitBreaker.objects.filter(opened_at__isnull=False):
                circuits.add_metric([b.scope, b.key], 1)
            for p in Playbook.objects.annotate(
                scored=Count("executions", filter=~Q(executions__outcome="")),
                recovered=Count("executions", filter=Q(executions__outcome=Outcome.RECOVERED)),
                shadows=Count("executions", filter=Q(executions__mode=Mode.SHADOW)),
            ):
                if p.scored:
                    rates.add_metric([p.name], p.recovered / p.scored)
                shadow.add_metric([p.name], p.shadows)
                demoted.add_metric([p.name], 1 if p.demoted_at else 0)
            stopped.add_metric([], 1 if remediation_stopped() else 0)
        except DatabaseError:
            return
        yield from (states, oldest, circuits, rates, shadow, demoted, stopped)
