"""``manage.py import_v1``: a v1 schema built with v1's DDL in the test database is imported, and
a second run changes nothing."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from alerting.models import Alert
from heartbeats.models import Heartbeat, Service
from heartbeats.services import service_create
from medic.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = "medic_v1_fixture"  # not "medic": the test database must never clash with a real one
ROOT = Path(__file__).resolve().parent.parent

# v1's DDL (its README), in a scratch schema.
DDL = f"""
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.services (
    service_id SERIAL PRIMARY KEY,
    heartbeat_name text NOT NULL,
    active integer NOT NULL,
    alert_interval integer NOT NULL,
    team text NOT NULL DEFAULT 'site-reliabilty',
    priority text NOT NULL DEFAULT 'p3',
    muted integer NOT NULL DEFAULT 0,
    down integer NOT NULL DEFAULT 0,
    threshold integer NOT NULL DEFAULT 1,
    service_name text,
    runbook text,
    date_added timestamp with time zone,
    date_modified timestamp with time zone,
    date_muted timestamp with time zone
);
CREATE TABLE {SCHEMA}."heartbeatEvents" (
    heartbeat_id SERIAL PRIMARY KEY,
    "time" timestamp with time zone NOT NULL,
    status text NOT NULL,
    service_id integer NOT NULL
);
CREATE TABLE {SCHEMA}.alerts (
    alert_id SERIAL PRIMARY KEY,
    alert_name text,
    service_id integer NOT NULL,
    active integer NOT NULL DEFAULT 1,
    external_reference_id text,
    alert_cycle integer NOT NULL,
    created_date timestamp with time zone,
    closed_date timestamp with time zone
);
"""


def _dsn() -> str:
    db = settings.DATABASES["default"]
    auth = quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgresql://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _sql(statement: str, params: tuple | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


_PK = {"services": "service_id", '"heartbeatEvents"': "heartbeat_id", "alerts": "alert_id"}


def _insert(table: str, **values) -> int:
    columns = ", ".join(f'"{c}"' for c in values)
    marks = ", ".join(["%s"] * len(values))
    statement = f"INSERT INTO {SCHEMA}.{table} ({columns}) VALUES ({marks}) RETURNING {_PK[table]}"
    return _sql(statement, tuple(values.values()))[0][0]


# This fixture's alert times are true instants (not v1 worker's Chicago wall-clock times, which
# tests/test_import_v1_head.py covers), hence the UTC zone.
AS_UTC = ("--v1-timezone", "UTC")


def _import(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_v1", "--dsn", _dsn(), "--schema", SCHEMA, *AS_UTC, *args, stdout=out, stderr=err
    )
    return out.getvalue()


def scratch_schema(ddl: str, schema: str, seed):
    """Create a v1 schema from its DDL, fill it, and drop it afterwards (fixture body)."""
    _sql(ddl)
    try:
        yield seed()
    finally:
        _sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def v1(transactional_db):
    yield from scratch_schema(DDL, SCHEMA, _seed)


def _seed() -> dict:
    now = timezone.now()
    ids = {}
    ids["payments"] = _insert(
        "services",
        heartbeat_name="Payments-API",
        service_name="payments",
        active=1,
        alert_interval=5,
        team="payments",
        priority="P2",
        runbook="https://wiki/payments",
        date_added=now - timedelta(days=300),
        date_modified=now - timedelta(days=20),
    )
    ids["search"] = _insert(
        "services",
        heartbeat_name="Search-Indexer",
        service_name="search",
        active=1,
        alert_interval=10,
        muted=1,
        down=1,
        date_muted=now - timedelta(hours=1),
        date_added=now - timedelta(days=100),
    )
    ids["cron"] = _insert(
        "services",
        heartbeat_name="legacy-cron",
        service_name="cron",
        active=0,
        alert_interval=60,
        date_added=now - timedelta(days=200),
    )
    # no service_name, v1's default team (typo included), never reported
    ids["report"] = _insert(
        "services",
        heartbeat_name="batch-report",
        active=1,
        alert_interval=60,
        date_added=now - timedelta(days=7),
    )
    beats = []
    for minutes in (1, 2, 3):
        beats.append(("payments", now - timedelta(minutes=minutes), "UP"))
    beats.append(("payments", now - timedelta(days=40), "UP"))  # older than retention
    beats.append(("search", now - timedelta(hours=2), "DEGRADED"))
    beats.append(("cron", now - timedelta(days=10), "UP"))
    for key, at, status in beats:
        _insert('"heartbeatEvents"', service_id=ids[key], time=at, status=status)
    _insert('"heartbeatEvents"', service_id=999, time=now, status="UP")  # orphan
    _insert(
        "alerts",
        alert_name="Medic - Heartbeat failure for Search-Indexer",
        service_id=ids["search"],
        active=1,
        external_reference_id="medic-Search-Indexer",
        alert_cycle=4,
        created_date=now - timedelta(minutes=110),
    )
    _insert(
        "alerts",
        alert_name="Medic - Heartbeat failure for batch-report",
        service_id=ids["report"],
        active=0,
        external_reference_id="medic-batch-report",
        alert_cycle=2,
        created_date=now - timedelta(days=5),
        closed_date=now - timedelta(days=5) + timedelta(hours=1),
    )
    return {"now": now, "ids": ids}


def _snapshot() -> dict:
    return {
        "counts": (Service.objects.count(), Heartbeat.objects.count(), Alert.objects.count()),
        "services": list(
            Service.objects.order_by("pk").values_list(
                "pk",
                "heartbeat_name",
                "date_modified",
                "status",
                "next_deadline_at",
                "last_heartbeat_at",
                "muted",
                "mute_until",
            )
        ),
        "alerts": list(Alert.objects.order_by("pk").values_list("pk", "state", "resolved_at")),
        "audit": AuditEvent.objects.count(),
    }


def test_import_then_a_second_run_changes_nothing(v1):
    now = v1["now"]
    existing = service_create(
        heartbeat_name="payments-api", service_name="payments", alert_interval=5, team="platform"
    )
    existing_added = existing.date_added
    first = _import()
    assert "services:   created 3, updated 1, unchanged 0, skipped 0" in first
    assert "heartbeats: created 5, updated 0, unchanged 0, skipped 1" in first
    assert "alerts:     created 2, updated 0, unchanged 0, skipped 0" in first

    # matched case-insensitively: the existing service is updated, only where v1 differs
    payments = Service.objects.get(pk=existing.pk)
    assert payments.heartbeat_name == "payments-api" and payments.date_added == existing_added
    assert (payments.team, payments.priority, payments.runbook) == (
        "payments",
        "p2",
        "https://wiki/payments",
    )
    assert payments.date_modified > existing.date_modified
    newest = now - timedelta(minutes=1)
    assert payments.status == "up" and payments.last_heartbeat_at == newest
    assert payments.next_deadline_at == newest + timedelta(minutes=5)
    assert payments.heartbeats.count() == 3  # the 40-day-old one is past retention

    search = Service.objects.get(heartbeat_name="Search-Indexer")  # case kept
    assert search.muted and search.status == "down" and search.last_status == "DEGRADED"
    assert search.mute_until == now - timedelta(hours=1) + timedelta(
        hours=settings.MEDIC_DEFAULT_MUTE_HOURS
    )
    alert = Alert.objects.get(service=search)
    assert (alert.state, alert.notify_count, alert.v1_id) == ("open", 4, 1)
    assert alert.external_reference_id == "medic-Search-Indexer"
    assert alert.dedup_key == "medic-Search-Indexer" and alert.next_notify_at is not None

    cron = Service.objects.get(heartbeat_name="legacy-cron")
    assert not cron.active and cron.status == "paused"
    assert cron.last_heartbeat_at == now - timedelta(days=10)

    report = Service.objects.get(heartbeat_name="batch-report")
    assert report.service_name == "batch-report" and report.team == "site-reliabilty"
    assert report.status == "new" and report.last_heartbeat_at is None
    assert report.next_deadline_at == now - timedelta(days=7) + timedelta(minutes=60)
    closed = Alert.objects.get(service=report)
    assert closed.state == "resolved" and closed.notify_count == 2
    assert closed.resolved_at == now - timedelta(days=5) + timedelta(hours=1)

    imported = Heartbeat.objects.filter(source="import")
    assert imported.count() == 5 and not imported.filter(v1_id__isnull=True).exists()

    before = _snapshot()
    second = _import()
    assert "services:   created 0, updated 0, unchanged 4, skipped 0" in second
    assert "heartbeats: created 0, updated 0, unchanged 5, skipped 1" in second
    assert "alerts:     created 0, updated 0, unchanged 2, skipped 0" in second
    assert "changed for 0 service(s)" in second
    assert _snapshot() == before


def test_the_v1_api_serves_imported_data(v1):
    from medic.apikeys import api_key_create
    from tests.conftest import ApiClient

    _import()
    reader = ApiClient(api_key_create(name="r", scopes=["read"]).secret)
    row = reader.get("/service/search-indexer").json()["results"][0]
    assert (row["heartbeat_name"], row["muted"], row["down"]) == ("Search-Indexer", 1, 1)
    alerts = reader.get("/alerts", {"active": "1"}).json()["results"]
    assert [a["alert_name"] for a in alerts] == ["Search-Indexer"]


def test_dry_run_reports_and_writes_nothing(v1):
    before = _snapshot()
    out = _import("--dry-run")
    assert out.startswith("Dry run, nothing was written.")
    assert "services:   created 4, updated 0, unchanged 0, skipped 0" in out
    assert "heartbeats: created 5" in out
    assert _snapshot() == before


def test_v1_changes_between_runs_are_followed(v1):
    _import()
    search_id = v1["ids"]["search"]
    # v1 closed the alert, opened two newer ones for the same service (it allowed that)
    _sql(
        f"UPDATE {SCHEMA}.alerts SET active = 0, closed_date = now(), alert_cycle = 6 "
        "WHERE alert_id = 1"
    )
    for minutes in (30, 20):
        _insert(
            "alerts",
            alert_name="again",
            service_id=search_id,
            active=1,
            alert_cycle=1,
            created_date=v1["now"] - timedelta(minutes=minutes),
        )
    out = _import()
    assert "alerts:     created 2, updated 1, unchanged 1, skipped 0" in out
    states = dict(Alert.objects.filter(v1_id__in=[1, 3, 4]).values_list("v1_id", "state"))
    assert states == {1: "resolved", 3: "resolved", 4: "open"}
    assert Alert.objects.get(v1_id=1).notify_count == 6


def test_all_heartbeats_with_heartbeat_days_0(v1):
    out = _import("--heartbeat-days", "0")
    assert "heartbeats: created 6, updated 0, unchanged 0, skipped 1" in out


def test_missing_schema_is_a_clear_error():
    with pytest.raises(CommandError, match="Schema 'medic_v1_absent' does not exist"):
        call_command("import_v1", "--dsn", _dsn(), "--schema", "medic_v1_absent")


def test_missing_table_is_a_clear_error(v1):
    _sql(f'DROP TABLE {SCHEMA}."heartbeatEvents"')
    with pytest.raises(CommandError, match="lacks the v1 table"):
        call_command("import_v1", "--dsn", _dsn(), "--schema", SCHEMA)


def test_bad_dsn_is_a_command_error_without_traceback():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "import_v1",
            "--dsn",
            "postgresql://nobody@127.0.0.1:1/nothing",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "CommandError: Cannot connect to the v1 database" in result.stderr
    assert "Traceback" not in result.stderr


def test_odd_v1_rows_are_adjusted_or_skipped_with_warnings(v1):
    now = v1["now"]
    twin = _insert(
        "services", heartbeat_name="PAYMENTS-api", service_name="dup", active=1, alert_interval=5
    )
    _insert('"heartbeatEvents"', service_id=twin, time=now - timedelta(seconds=5), status="UP")
    _insert(
        "services",
        heartbeat_name="odd-priority",
        active=1,
        alert_interval=5,
        priority="urgent",
        threshold=0,
    )
    _insert("services", heartbeat_name="no-interval", active=1, alert_interval=0)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_v1", "--dsn", _dsn(), "--schema", SCHEMA, stdout=out, stderr=err)
    assert "services:   created 5, updated 0, unchanged 0, skipped 2" in out.getvalue()
    warnings = err.getvalue()
    assert "differs only by case" in warnings and "PAYMENTS-api" in warnings
    assert "priority 'urgent' is not p1..p5; imported as p3" in warnings
    assert "threshold 0 raised to 1" in warnings
    assert "alert_interval 0 is not positive" in warnings
    odd = Service.objects.get(heartbeat_name="odd-priority")
    assert (odd.priority, odd.threshold) == ("p3", 1)
    assert not Service.objects.filter(heartbeat_name__in=["no-interval", "PAYMENTS-api"]).exists()
    # the twin's heartbeat went to the service it merged into
    payments = Service.objects.get(heartbeat_name="Payments-API")
    assert payments.heartbeats.filter(v1_id__isnull=False).count() == 4
    assert payments.last_heartbeat_at == now - timedelta(seconds=5)


def test_negative_heartbeat_days_is_refused():
    with pytest.raises(CommandError, match="--heartbeat-days"):
        call_command("import_v1", "--dsn", _dsn(), "--heartbeat-days", "-1")
