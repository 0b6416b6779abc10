"""Event outbox metrics. Counters are observed where events are recorded and processed; the
backlog gauges are read from the database at scrape time, so every process reports the same."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

EVENTS_RECORDED = Counter(
    "medic_events_recorded_total", "Domain events written to the outbox, by kind.", ["kind"]
)
EVENTS_PROCESSED = Counter(
    "medic_events_processed_total",
    "Domain events a consumer handled successfully, by consumer and kind.",
    ["consumer", "kind"],
)
EVENTS_FAILED = Counter(
    "medic_events_failed_total",
    "Consumer handler runs that raised (the event stays pending and is retried with backoff).",
    ["consumer", "kind"],
)
EVENTS_PRUNED = Counter("medic_events_pruned_total", "Domain events deleted by retention.")

_LAG = ("medic_event_consumer_lag_seconds", "Age of the oldest event a consumer has not processed.")
_PENDING = ("medic_event_consumer_pending", "Events a consumer has not processed yet.")


class ConsumerLagCollector(Collector):
    def describe(self):
        # Declared up front so that registration runs no database query.
        yield GaugeMetricFamily(*_LAG, labels=["consumer"])
        yield GaugeMetricFamily(*_PENDING, labels=["consumer"])

    def collect(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        from medic.events.consumers import consumer_names
        from medic.events.models import EventProgress

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
