"""Success-metric gauges over the last ``MEDIC_SUCCESS_METRICS_WINDOW_DAYS`` days, read from the
database at scrape time (docs/outcomes.md), and the agents' memory as last reported. Label sets
are bounded: ``ending`` has four values and ``stat`` four; nothing is labelled by service, team or
agent."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from remediation.reports import selectors

logger = logging.getLogger(__name__)
_MTTR = (
    "medic_success_mttr_seconds",
    "Alert open-to-resolve time over the window, by how the alert ended and statistic.",
)
_COVERAGE = (
    "medic_success_alert_coverage_ratio",
    "Share of alerts in the window whose service matches an active playbook.",
)
_FALSE_POSITIVES = (
    "medic_success_false_positive_ratio",
    "Share of alerts in the window that resolved unaided within one interval.",
)
_REDUCTION = (
    "medic_success_mttr_reduction_ratio",
    "1 - mean MTTR of services with a playbook now / the same services before playbooks.",
)
# name, help, where the figure is in the report (None: no sample, the family is still declared)
_RATIOS = (
    (
        "medic_success_service_coverage_ratio",
        "Share of active services that match an active playbook.",
        lambda r: _share(r["coverage"]["services_covered"], r["coverage"]["services"]),
    ),
    (
        "medic_success_maintenance_alert_ratio",
        "Share of alerts in the window opened, held back, during a maintenance window.",
        lambda r: r["accuracy"]["suppressed_by_maintenance_share"],
    ),
    (
        "medic_success_repeat_alert_ratio",
        "Share of alerts in the window opened within an hour of the service's previous alert.",
        lambda r: r["accuracy"]["repeat_share"],
    ),
)
_COUNTS = (
    (
        "medic_success_alerts",
        "Alerts (not notices) opened in the window.",
        lambda r: r["accuracy"]["alerts"],
    ),
    (
        "medic_success_flapping_services",
        "Services with at least two repeat alerts in the window (flapping).",
        lambda r: len(r["accuracy"]["flapping_services"]),
    ),
    (
        "medic_agents_over_memory_threshold",
        "Agents whose last reported resident memory is over MEDIC_AGENT_MEMORY_THRESHOLD_BYTES.",
        lambda r: len(r["agents"]["over_threshold"]),
    ),
    (
        "medic_agents_reporting_memory",
        "Agents that reported their resident memory with their polls.",
        lambda r: r["agents"]["reporting"],
    ),
    (
        "medic_agent_memory_max_bytes",
        "The highest resident memory an agent last reported.",
        lambda r: r["agents"]["max_rss_bytes"],
    ),
    (
        "medic_agent_memory_threshold_bytes",
        "The agent memory threshold (MEDIC_AGENT_MEMORY_THRESHOLD_BYTES; the PRD's 5 MB).",
        lambda r: r["agents"]["threshold_bytes"],
    ),
)
STATS = ("mean", "p50", "p90", "p99")


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _families():
    return (
        GaugeMetricFamily(*_MTTR, labels=["ending", "stat"]),
        GaugeMetricFamily(*_COVERAGE),
        GaugeMetricFamily(*_FALSE_POSITIVES),
        GaugeMetricFamily(*_REDUCTION),
        *(GaugeMetricFamily(name, text) for name, text, _ in (*_RATIOS, *_COUNTS)),
    )


class SuccessCollector(Collector):
    def describe(self):
        yield from _families()

    def collect(self):
        mttr_family, coverage_family, fp_family, reduction_family, *others = _families()
        now = timezone.now()
        days = settings.MEDIC_SUCCESS_METRICS_WINDOW_DAYS
        period = selectors.Period(since=now - timedelta(days=days), until=now)
        try:
            mttr = selectors.mttr(period)
            coverage = selectors.coverage(period)
            accuracy = selectors.accuracy(period)
            report = {"coverage": coverage, "accuracy": accuracy, "agents": selectors.agents()}
        except Exception:
            logger.warning("success metrics unavailable", exc_info=True)
            return
        for ending, stats in mttr["by_ending"].items():
            for stat in STATS:
                mttr_family.add_metric([ending, stat], stats[stat])
        # A figure without data (no alerts, no playbook yet) has no sample, not a made-up 0;
        # the family is still declared.
        if coverage["alert_share"] is not None:
            coverage_family.add_metric([], coverage["alert_share"])
        if accuracy["false_positive_rate"] is not None:
            fp_family.add_metric([], accuracy["false_positive_rate"])
        if mttr["target"]["reduction_observed"] is not None:
            reduction_family.add_metric([], mttr["target"]["reduction_observed"])
        for family, (_, _, figure) in zip(others, (*_RATIOS, *_COUNTS), strict=True):
            value = figure(report)
            if value is not None:
                family.add_metric([], value)
        yield from (mttr_family, coverage_family, fp_family, reduction_family, *others)
