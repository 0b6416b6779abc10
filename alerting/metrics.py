"""Gauges read from the database at scrape time, so every process reports the same numbers."""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from alerting.models import Alert, AlertState

logger = logging.getLogger(__name__)
_OPEN = ("medic_alerts_open", "Alerts currently open.")


class AlertsCollector(Collector):
    def describe(self):
        # Declaring the family up front keeps registration free of database queries.
        yield GaugeMetricFamily(*_OPEN)

    def collect(self):
        alerts = GaugeMetricFamily(*_OPEN)
        try:
            alerts.add_metric([], Alert.objects.filter(state=AlertState.OPEN).count())
        except Exception:
            logger.warning("alert metrics unavailable", exc_info=True)
            return
        yield alerts
