"""``medic_secrets``: stored secrets by key id, read from the database at scrape time (every
process reports the same number; a key id other than the first one of MEDIC_ENCRYPTION_KEYS
means secrets still wait for ``manage.py secrets_reencrypt``)."""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


class SecretsCollector(Collector):
    def describe(self):
        yield GaugeMetricFamily("medic_secrets", "Stored secrets, by key id.", labels=["key_id"])

    def collect(self):
        from django.db.models import Count

        from remediation.secrets.models import Secret

        family = GaugeMetricFamily("medic_secrets", "Stored secrets, by key id.", labels=["key_id"])
        try:
            rows = list(Secret.objects.values("key_id").annotate(n=Count("id")).order_by("key_id"))
        except Exception:
            logger.warning("secret metrics unavailable", exc_info=True)
            return
        for row in rows:
            family.add_metric([row["key_id"]], row["n"])
        yield family
