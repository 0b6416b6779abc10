"""Backlog gauges of the event outbox, read from the database at scrape time so that every
process reports the same numbers."""

from __future__ import annotations

import logging

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from medic.events.consumers import consumer_names
from medic.events.models import EventProgress

logger = logging.getLogger(__name__)

_LAG = ("medic_event_consumer_lag_seconds", "Age of the oldest event a consumer has not processed.")
_PENDING = ("medic_event_consumer_pending", "Events a consumer has not processed yet.")


class ConsumerLagCollector(Collector):
    def describe(self):
        # Declared up front so that registration runs no database query.
        yield GaugeMetricFamily(*_LAG, labels=["consumer"])
        yield GaugeMetricFamily(*_PENDING, labels=["consumer"])

    def collect(self):
        lag = GaugeMetricFamily(*_LAG, labels=["consumer"])
        pending = GaugeMetricFamily(*_PENDING, labels=["consumer"])
        try:
            rows = {
                row["consumer"]: row
                for row in EventProgress.objects.filter(processed_at__isnull=True)
                .values("consumer")
                .annotate(n=Count("id"), oldest=Min("event__created_at"))
            }
            now = timezone.now()
            for name in sorted(set(consumer_names()) | set(rows)):
                row = rows.get(name)
                pending.add_metric([name], row["n"] if row else 0)
                lag.add_metric([name], (now - row["oldest"]).total_seconds() if row else 0.0)
        except Exception:
            logger.warning("event consumer metrics unavailable", exc_info=True)
            return
        yield lag
        yield pending
