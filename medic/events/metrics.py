"""Event outbox counters, observed where events are recorded and processed (the backlog gauges
are in medic.events.collectors)."""

from __future__ import annotations

from prometheus_client import Counter

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
