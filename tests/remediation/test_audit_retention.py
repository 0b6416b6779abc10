"""Retention: MEDIC_AUDIT_RETENTION_DAYS, applied by a periodic task, on a controlled clock."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from medic import crypto
from remediation.audit.models import AuditEntry
from remediation.audit.services import PURGE_BATCH, audit_purge
from remediation.audit.tasks import purge
from remediation.secrets.services import secret_set

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _rows_at(*moments: datetime) -> list[int]:
    return [
        AuditEntry.objects.create(
            created_at=at, actor="system", event="step.finished", object_type="step", object_id="x"
        ).pk
        for at in moments
    ]


def test_rows_older_than_the_retention_are_purged(settings):
    settings.MEDIC_AUDIT_RETENTION_DAYS = 90
    cutoff = NOW - timedelta(days=90)
    old, at_cutoff, young = _rows_at(cutoff - timedelta(seconds=1), cutoff, NOW - timedelta(days=1))
    assert audit_purge(now=NOW) == 1
    assert sorted(AuditEntry.objects.values_list("pk", flat=True)) == [at_cutoff, young]
    # a day later the row that sat on the boundary goes too
    assert audit_purge(now=NOW + timedelta(days=1)) == 1
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [young]
    assert old not in AuditEntry.objects.values_list("pk", flat=True)


def test_the_retention_is_configurable_and_zero_keeps_everything(settings):
    _rows_at(NOW - timedelta(days=400), NOW - timedelta(days=20))
    settings.MEDIC_AUDIT_RETENTION_DAYS = 0
    assert audit_purge(now=NOW) == 0
    settings.MEDIC_AUDIT_RETENTION_DAYS = 30
    assert audit_purge(now=NOW) == 1
    settings.MEDIC_AUDIT_RETENTION_DAYS = 7
    assert audit_purge(now=NOW) == 1
    assert not AuditEntry.objects.exists()


def test_large_backlogs_are_purged_in_batches(settings):
    settings.MEDIC_AUDIT_RETENTION_DAYS = 90
    old = NOW - timedelta(days=120)
    AuditEntry.objects.bulk_create(
        AuditEntry(created_at=old, actor="system", event="e", object_type="t", object_id=str(i))
        for i in range(PURGE_BATCH + 10)
    )
    (kept,) = _rows_at(NOW)
    assert audit_purge(now=NOW) == PURGE_BATCH + 10
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [kept]


def test_the_periodic_task_is_scheduled_and_applies_the_setting(settings):
    # What migration audit 0002 schedules. Run again here (idempotent): a transactional test
    # elsewhere in this process may have flushed the tables the migration filled.
    migration = importlib.import_module("remediation.audit.migrations.0002_append_only_and_purge")
    migration.create_tasks(django_apps, None)
    scheduled = PeriodicTask.objects.get(task="audit.purge")
    assert scheduled.enabled
    assert (scheduled.interval.every, scheduled.interval.period) == (1, "hours")
    settings.MEDIC_AUDIT_RETENTION_DAYS = 90
    # relative to the real clock: true at whatever instant the task runs
    now = timezone.now()
    _, young = _rows_at(now - timedelta(days=200), now - timedelta(days=10))
    purge.delay()
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [young]


def _sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_rows_by_event_and_secrets(reader, django_capture_on_commit_callbacks):
    written = 'medic_audit_entries_total{event="secret.created"}'
    before = _sample(reader.get("/metrics").content.decode(), written)
    with django_capture_on_commit_callbacks(execute=True):
        secret_set(name="one_secret", value="value-one", actor="system")
        secret_set(name="two_secret", value="value-two", actor="system")
    text = reader.get("/metrics").content.decode()
    assert _sample(text, written) == before + 2
    assert _sample(text, f'medic_secrets{{key_id="{crypto.newest_key_id()}"}}') == 2
