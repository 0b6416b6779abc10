"""Prometheus metrics of remote execution. Names are part of the operator contract (see
docs/remote-execution.md, "Monitoring"); rename only with a deprecation note.

Where they are observed: queueing in the web process that took the run request; agent results,
skips, deliveries and the long-poll gauge in the process serving ``/v2/agent/*`` (the
agent-gateway); local runs in the Celery worker. ``medic_agents`` is read from the database at
scrape time, so every process reports the same numbers.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

JOBS_QUEUED = Counter(
    "medic_script_jobs_queued_total", "Script jobs queued, by target (local, agent).", ["target"]
)
AGENT_JOBS = Counter(
    "medic_agent_jobs_total",
    "Agent jobs finished, by outcome (succeeded, failed, timed_out, skipped, lost, expired).",
    ["outcome"],
)
AGENT_SKIPS = Counter("medic_agent_job_skips_total", "Jobs agents refused, by reason.", ["reason"])
AGENT_JOB_DELIVERY = Histogram(
    "medic_agent_job_delivery_seconds",
    "From a job being queued to its delivery in a poll response.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
LONG_POLLS = Gauge(
    "medic_agent_long_polls", "Agent long polls waiting for a job in this process right now."
)
WAKEUP_CONNECTED = Gauge(
    "medic_agent_wakeup_connected",
    "1 while this process's Redis subscription for job wake-ups is connected.",
)
LOCAL_RUNS = Counter(
    "medic_sandbox_runs_total",
    "Scripts run by the local sandbox, by outcome (succeeded, failed, timed_out, error).",
    ["outcome"],
)
LOCAL_RUN_DURATION = Histogram(
    "medic_sandbox_run_duration_seconds",
    "Wall time of scripts run by the local sandbox.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)


class AgentCollector(Collector):
    """``medic_agents{state}``: enabled agents that never registered (``new``), whose service is
    up (``online``) or down (``offline``), and disabled ones."""

    def describe(self):
        yield GaugeMetricFamily("medic_agents", "Agents by state.", labels=["state"])

    def collect(self):
        from django.db.models import Count

        from remediation.models import Agent

        family = GaugeMetricFamily("medic_agents", "Agents by state.", labels=["state"])
        counts = {"new": 0, "online": 0, "offline": 0, "disabled": 0}
        try:
            rows = Agent.objects.values("enabled", "service__status").annotate(n=Count("id"))
            for row in rows:
                status = row["service__status"]
                if not row["enabled"]:
                    state = "disabled"
                else:
                    state = {"down": "offline", "up": "online"}.get(status or "", "new")
                counts[state] += row["n"]
        except Exception:
            logger.warning("agent metrics unavailable", exc_info=True)
            return
        for state, n in sorted(counts.items()):
            family.add_metric([state], n)
        yield family
