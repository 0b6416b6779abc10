"""Gauges read from the database at scrape time, so every process reports the same numbers."""

from __future__ import annotations

import logging

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from heartbeats.models import Service, ServiceStatus

logger = logging.getLogger(__name__)
_SERVICES = ("medic_services", "Services by state.")


class ServicesCollector(Collector):
    def describe(self):
        # Declaring the family up front keeps registration free of database queries.
        yield GaugeMetricFamily(*_SERVICES, labels=["state"])

    def collect(self):
        services = GaugeMetricFamily(*_SERVICES, labels=["state"])
        try:
            counts = {s: 0 for s in ServiceStatus.values}
            for row in Service.objects.values("status").annotate(n=Count("id")):
                counts[row["status"]] = row["n"]
            counts["muted"] = Service.objects.filter(muted=True).count()
            for state, n in sorted(counts.items()):
                services.add_metric([state], n)
        except Exception:
            logger.warning("state metrics unavailable", exc_info=True)
            return
        yield services
