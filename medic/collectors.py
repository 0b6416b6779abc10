"""Gauges read from the database at scrape time, so every process reports the same numbers."""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


class StateCollector(Collector):
    def describe(self):
        # Declaring the families up front keeps registration free of database queries.
        yield GaugeMetricFamily("medic_services", "Services by state.", labels=["state"])
        yield GaugeMetricFamily("medic_alerts_open", "Alerts currently open.")

    def collect(self):
        from django.db.models import Count

        from alerting.models import Alert, AlertState
        from heartbeats.models import Service, ServiceStatus

        services = GaugeMetricFamily("medic_services", "Services by state.", labels=["state"])
        alerts = GaugeMetricFamily("medic_alerts_open", "Alerts currently open.")
        try:
            counts = {s: 0 for s in ServiceStatus.values}
            counts["muted"] = 0
            for row in Service.objects.values("status").annotate(n=Count("id")):
                counts[row["status"]] = row["n"]
            counts["muted"] = Service.objects.filter(muted=True).count()
            for state, n in sorted(counts.items()):
                services.add_metric([state], n)
            alerts.add_metric([], Alert.objects.filter(state=AlertState.OPEN).count())
        except Exception:
            logger.warning("state metrics unavailable", exc_info=True)
            return
        yield services
        yield alerts
