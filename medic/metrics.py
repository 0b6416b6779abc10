"""Prometheus metrics Medic defines. Names are part of the operator contract (dashboards, alert
rules in deploy/): rename only with a deprecation note in docs/operations.md.

Counters observed in web processes are served by ``/metrics``; those observed in Celery worker
processes (the sweep, notifications) by the worker's own endpoint (``MEDIC_WORKER_METRICS_ADDR``).
Gauges that describe stored state (services by state, open alerts) are computed from the database
at scrape time by collectors each app registers (heartbeats.metrics, alerting.metrics,
medic.events.metrics), so every scrape of any process reports the same truth.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily


class Timestamp:
    """A gauge exported only once it has been set. A process that never ran the sweep (web, the
    agent gateway, a worker before its first pass) exports no sample rather than 0, which would
    read as "last ran in 1970" and trip MedicSweepStalled for as long as web is scraped."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation = name, documentation
        self.value: float | None = None
        REGISTRY.register(self)

    def set(self, value: float) -> None:
        self.value = value

    def describe(self):
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self):
        # Declared (HELP and TYPE) but without a sample until set.
        family = GaugeMetricFamily(self.name, self.documentation)
        if self.value is not None:
            family.add_metric([], self.value)
        return [family]


AUTH_FAILURES = Counter(
    "medic_auth_failures_total",
    "API requests refused by authentication or authorization, and failed or refused dashboard "
    "sign-ins (login_failed, login_locked), by reason.",
    ["reason"],
)
API_KEY_HASH_VERIFICATIONS = Counter(
    "medic_api_key_hash_verifications_total",
    "argon2 verifications performed (cache misses of the key cache).",
)
HEARTBEATS = Counter(
    "medic_heartbeats_total",
    "Heartbeats accepted, by reported status (normalised, unknown text counts as 'other').",
    ["status"],
)
INGEST_BATCH_SIZE = Histogram(
    "medic_ingest_batch_size",
    "Heartbeats committed together by a web process's group commit (heartbeats/groupcommit.py).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
V1_ANONYMOUS_HEARTBEATS = Counter(
    "medic_v1_anonymous_heartbeats_total",
    "v1 heartbeats accepted without an API key (MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS).",
)
SWEEP_DURATION = Histogram(
    "medic_sweep_duration_seconds",
    "Wall time of one sweep pass.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SWEEP_LAG = Gauge(
    "medic_sweep_lag_seconds",
    "At the last sweep: how long past its deadline the oldest overdue service was.",
)
DETECTION_DELAY = Histogram(
    "medic_detection_delay_seconds",
    "For each service marked down: sweep time minus its deadline.",
    buckets=(0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300),
)
SWEEP_LAST_RUN = Timestamp(
    "medic_sweep_last_run_timestamp_seconds", "Unix time at which the last sweep finished."
)
SWEEP_ERRORS = Counter(
    "medic_sweep_errors_total",
    "Rows the sweep failed to process (pushed forward and retried on a later pass).",
    ["stage"],
)
ALERTS_OPENED = Counter("medic_alerts_opened_total", "Alerts opened.", ["reason"])
ALERTS_RESOLVED = Counter("medic_alerts_resolved_total", "Alerts resolved.")
NOTIFICATIONS = Counter(
    "medic_notifications_total",
    "Notification deliveries finished, by channel and outcome "
    "(success, failed, retry, suppressed).",
    ["channel", "outcome"],
)
NOTIFICATION_DURATION = Histogram(
    "medic_notification_duration_seconds",
    "Duration of one delivery attempt.",
    ["channel"],
)
HEARTBEATS_PRUNED = Counter("medic_heartbeats_pruned_total", "Heartbeat rows deleted by retention.")
RATE_LIMITED = Counter(
    "medic_rate_limited_total", "Requests refused with 429, by rate-limit class.", ["class"]
)
RATE_LIMIT_BACKEND_ERRORS = Counter(
    "medic_rate_limit_backend_errors_total",
    "Rate-limit checks that could not reach Redis (the request was let through).",
)
JOB_RUNS = Counter("medic_job_runs_total", "Job runs ended, by outcome.", ["outcome"])
# Labelled by team, not by service: one series per team keeps cardinality bounded.
JOB_DURATION = Histogram(
    "medic_job_duration_seconds",
    "Duration of job runs (start to complete/fail), by team.",
    ["team"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400),
)
