"""Two sweepers at once (real concurrent PostgreSQL transactions) open each alert exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerting.models import Alert
from heartbeats.models import Service
from heartbeats.services import service_create
from tests.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs row locks")
def test_concurrent_sweeps_open_each_alert_once(settings):
    settings.MEDIC_SWEEP_BATCH_SIZE = 7  # many small batches interleave between the sweepers
    services = [service_create(heartbeat_name=f"svc-{i}", alert_interval=1) for i in range(60)]
    now = timezone.now() + timedelta(minutes=5)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(sweep(now=now))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    marked = [pk for r in results for pk in r.marked_down]
    assert sorted(marked) == sorted(s.pk for s in services)  # each claimed by exactly one
    assert Alert.objects.count() == 60
    assert Service.objects.filter(status="down").count() == 60
