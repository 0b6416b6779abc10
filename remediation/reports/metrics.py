"""Success-metric gauges over the last ``MEDIC_SUCCESS_METRICS_WINDOW_DAYS`` days, read from the
database at scrape time (docs/success-metrics.md). Label sets are bounded: ``ending`` has four
values and ``stat`` three; nothing is labelled by service or team."""

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
STATS = ("mean", "p50", "p90")


def _families():
    return (
        GaugeMetricFamily(*_MTTR, labels=["ending", "stat"]),
        GaugeMetricFamily(*_COVERAGE),
        GaugeMetricFamily(*_FALSE_POSITIVES),
        GaugeMetricFamily(*_REDUCTION),
    )


class SuccessCollector(Collector):
    def describe(self):
        yield from _families()

    def collect(self):
        mttr_family, coverage_family, fp_family, reduction_family = _families()
        now = timezone.now()
        days = settings.MEDIC_SUCCESS_METRICS_WINDOW_DAYS
        period = selectors.Period(since=now - timedelta(days=days), until=now)
        try:
            mttr = selectors.mttr(period)
            coverage = selectors.coverage(period)
            accuracy = selectors.accuracy(period)
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
        yield from (mttr_family, coverage_family, fp_family, reduction_family)
