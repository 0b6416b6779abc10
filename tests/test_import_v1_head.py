"""``manage.py import_v1`` against v1 at HEAD: every table of its schema (migrations 000-017),
filled as v1 writes them (alert times as America/Chicago wall-clock in zone-aware columns, secrets
sealed with AES-256-GCM under v1's key), then re-imported the way a rehearsal does."""

from __future__ import annotations

import base64
import io
import json
import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerting.models import Alert, NotificationTarget, RoutingRule, Team, WorkingHours
from compat.importer import v1_import
from heartbeats.maintenance import covers, occurrence_at, window_covering
from heartbeats.models import JobRun, MaintenanceWindow, Service
from medic.crypto import decrypt
from medic.models import AuditEvent
from remediation.models import Script
from remediation.secrets.models import Secret
from tests.test_import_v1 import _dsn, _sql, scratch_schema

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = "medic_v1_head_fixture"
CHICAGO = ZoneInfo("America/Chicago")
V1_KEY = os.urandom(32)

# v1 HEAD's tables, with v1's types, defaults and checks (v1-head schema, migrations 000-017).
DDL = f"""
CREATE SCHEMA {SCHEMA};
SET search_path TO {SCHEMA}, public;
CREATE TABLE teams (id SERIAL PRIMARY KEY, name text NOT NULL UNIQUE, slack_channel_id text,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE schedules (id SERIAL PRIMARY KEY, name text NOT NULL UNIQUE,
    timezone text NOT NULL, hours jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE services (
    service_id SERIAL PRIMARY KEY, heartbeat_name text NOT NULL UNIQUE, service_name text,
    active integer NOT NULL DEFAULT 1, alert_interval integer NOT NULL,
    threshold integer NOT NULL DEFAULT 1, team text NOT NULL DEFAULT 'site-reliability',
    priority text NOT NULL DEFAULT 'p3', muted integer NOT NULL DEFAULT 0,
    down integer NOT NULL DEFAULT 0, runbook text, date_added timestamptz,
    date_modified timestamptz, date_muted timestamptz,
    team_id integer REFERENCES teams(id) ON DELETE SET NULL,
    schedule_id integer REFERENCES schedules(id) ON DELETE SET NULL,
    max_duration_ms integer,
    grace_period_seconds integer DEFAULT 0 CHECK (grace_period_seconds >= 0));
CREATE TABLE "heartbeatEvents" (heartbeat_id SERIAL PRIMARY KEY,
    "time" timestamptz NOT NULL, status text NOT NULL,
    service_id integer NOT NULL REFERENCES services(service_id), run_id text);
CREATE TABLE alerts (alert_id SERIAL PRIMARY KEY, alert_name text,
    service_id integer NOT NULL REFERENCES services(service_id), active integer NOT NULL DEFAULT 1,
    external_reference_id text, alert_cycle integer NOT NULL,
    created_date timestamptz, closed_date timestamptz);
CREATE TABLE job_runs (id SERIAL PRIMARY KEY,
    service_id integer NOT NULL REFERENCES services(service_id) ON DELETE CASCADE,
    run_id text NOT NULL, started_at timestamptz NOT NULL, completed_at timestamptz,
    duration_ms integer,
    status text NOT NULL CHECK (status IN ('STARTED', 'COMPLETED', 'FAILED')),
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (service_id, run_id));
CREATE TABLE api_keys (id SERIAL PRIMARY KEY, name text NOT NULL UNIQUE, key_hash text NOT NULL,
    scopes text[] NOT NULL DEFAULT '{{read}}', expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE secrets (id SERIAL PRIMARY KEY, name text NOT NULL UNIQUE,
    encrypted_value bytea NOT NULL, nonce bytea NOT NULL, tag bytea NOT NULL,
    description text, created_by text,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE notification_targets (id SERIAL PRIMARY KEY,
    service_id integer NOT NULL REFERENCES services(service_id) ON DELETE CASCADE,
    type text NOT NULL, config jsonb NOT NULL, priority integer NOT NULL DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true, period text NOT NULL DEFAULT 'always',
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE webhooks (id SERIAL PRIMARY KEY,
    service_id integer REFERENCES services(service_id) ON DELETE CASCADE,
    url text NOT NULL CHECK (url ~ '^https?://'), headers jsonb NOT NULL DEFAULT '{{}}',
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE maintenance_windows (id SERIAL PRIMARY KEY, name text NOT NULL UNIQUE,
    start_time timestamptz NOT NULL, end_time timestamptz NOT NULL, recurrence text,
    timezone text NOT NULL DEFAULT 'UTC', service_ids integer[] NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (end_time > start_time));
CREATE TABLE playbooks (id SERIAL PRIMARY KEY, name text NOT NULL UNIQUE, description text,
    yaml_content text NOT NULL, version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE playbook_triggers (id SERIAL PRIMARY KEY,
    playbook_id integer NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    service_pattern text NOT NULL,
    consecutive_failures integer NOT NULL DEFAULT 1 CHECK (consecutive_failures >= 1),
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE playbook_executions (id SERIAL PRIMARY KEY,
    playbook_id integer NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    service_id integer REFERENCES services(service_id) ON DELETE SET NULL,
    status text NOT NULL CHECK (status IN ('pending_approval', 'running', 'waiting',
        'completed', 'failed', 'cancelled')),
    current_step integer NOT NULL DEFAULT 0, started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE playbook_step_results (id SERIAL PRIMARY KEY,
    execution_id integer NOT NULL REFERENCES playbook_executions(id) ON DELETE CASCADE,
    step_name text NOT NULL, step_index integer NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed',
        'skipped')),
    output text, error_message text, started_at timestamptz, completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (execution_id, step_index));
CREATE TABLE approval_requests (id SERIAL PRIMARY KEY,
    execution_id integer NOT NULL UNIQUE REFERENCES playbook_executions(id) ON DELETE CASCADE,
    requested_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by text, decided_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE remediation_audit_log (id SERIAL PRIMARY KEY,
    execution_id integer NOT NULL REFERENCES playbook_executions(id) ON DELETE CASCADE,
    action_type text NOT NULL, details jsonb NOT NULL DEFAULT '{{}}', actor text,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE webhook_deliveries (id SERIAL PRIMARY KEY,
    webhook_id integer NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    payload jsonb NOT NULL, status text NOT NULL DEFAULT 'pending', attempts integer DEFAULT 0,
    last_response_code integer, last_response_body text, last_attempt_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE registered_scripts (id SERIAL PRIMARY KEY, name text NOT NULL UNIQUE,
    content text NOT NULL, interpreter text NOT NULL DEFAULT 'bash',
    timeout_seconds integer NOT NULL DEFAULT 30,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE service_snapshots (id SERIAL PRIMARY KEY,
    service_id integer NOT NULL REFERENCES services(service_id) ON DELETE CASCADE,
    snapshot_data jsonb NOT NULL, action_type text NOT NULL, actor text,
    created_at timestamptz NOT NULL DEFAULT now(), restored_at timestamptz);
CREATE TABLE schema_migrations (version varchar(255) PRIMARY KEY, applied_at timestamptz);
RESET search_path;
"""


def _wall(at: datetime) -> datetime:
    """What v1's worker stores for the instant ``at``: Chicago wall-clock time, read in a UTC
    session (its ``now_cdt`` has no zone)."""
    return at.astimezone(CHICAGO).replace(tzinfo=None).replace(tzinfo=UTC)


def _insert(table: str, pk: str = "id", **values) -> int:
    columns = ", ".join(f'"{c}"' for c in values)
    marks = ", ".join(["%s"] * len(values))
    return _sql(
        f"INSERT INTO {SCHEMA}.{table} ({columns}) VALUES ({marks}) RETURNING {pk}",
        tuple(values.values()),
    )[0][0]


def _seal(value: str) -> dict:
    nonce = os.urandom(12)
    sealed = AESGCM(V1_KEY).encrypt(nonce, value.encode(), None)
    return {"encrypted_value": sealed[:-16], "nonce": nonce, "tag": sealed[-16:]}


def _import(*args: str, key: bool = True) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    env_key = base64.b64encode(V1_KEY).decode() if key else ""
    previous = os.environ.get("MEDIC_V1_SECRETS_KEY")
    os.environ["MEDIC_V1_SECRETS_KEY"] = env_key
    try:
        call_command(
            "import_v1", "--dsn", _dsn(), "--schema", SCHEMA, *args, stdout=out, stderr=err
        )
    finally:
        if previous is None:
            os.environ.pop("MEDIC_V1_SECRETS_KEY", None)
        else:
            os.environ["MEDIC_V1_SECRETS_KEY"] = previous
    return out.getvalue(), err.getvalue()


@pytest.fixture
def v1(transactional_db):
    yield from scratch_schema(DDL, SCHEMA, _seed)


def _seed() -> dict:
    now = timezone.now().replace(microsecond=0)
    team = _insert("teams", name="payments", slack_channel_id="C0PAY")
    schedule = _insert(
        "schedules",
        name="office",
        timezone="America/Chicago",
        hours=json.dumps(
            {
                "monday": [{"start": "09:00", "end": "17:00"}],
                "friday": [{"start": "22:00", "end": "02:00"}],  # past midnight
            }
        ),
    )
    svc = lambda **kw: _insert("services", pk="service_id", **kw)  # noqa: E731
    billing = svc(
        heartbeat_name="prod-billing",
        service_name="billing",
        alert_interval=5,
        team_id=team,
        schedule_id=schedule,
        grace_period_seconds=90,
        max_duration_ms=120_500,
        date_added=now - timedelta(days=90),
    )
    etl = svc(heartbeat_name="nightly-etl", service_name="etl", alert_interval=60)
    # The billing outage: opened 40 minutes ago, still open, 160 failing checks so far.
    opened = now - timedelta(minutes=40)
    alert = _insert(
        "alerts",
        pk="alert_id",
        alert_name="Medic - Heartbeat failure for prod-billing",
        service_id=billing,
        active=1,
        external_reference_id="medic-prod-billing",
        alert_cycle=160,
        created_date=_wall(opened),
    )
    _insert(
        '"heartbeatEvents"',
        pk="heartbeat_id",
        service_id=billing,
        time=now - timedelta(minutes=45),
        status="UP",
    )
    for run_id, status, started, done in (
        ("r-1", "COMPLETED", now - timedelta(hours=25), now - timedelta(hours=24)),
        ("r-2", "FAILED", now - timedelta(hours=2), now - timedelta(hours=1)),
        ("r-3", "STARTED", now - timedelta(minutes=30), None),
    ):
        _insert(
            "job_runs",
            service_id=etl,
            run_id=run_id,
            status=status,
            started_at=started,
            completed_at=done,
            duration_ms=int((done - started).total_seconds() * 1000) if done else None,
        )
        _insert(
            '"heartbeatEvents"',
            pk="heartbeat_id",
            service_id=etl,
            time=done or started,
            status=status,
            run_id=run_id,
        )
    # Active right now (for billing only), and a weekly one for everything.
    _insert(
        "maintenance_windows",
        name="db-upgrade",
        start_time=now - timedelta(minutes=10),
        end_time=now + timedelta(hours=1),
        service_ids=[billing],
    )
    _insert(
        "maintenance_windows",
        name="sunday-patching",
        start_time=datetime(2026, 1, 4, 2, 0, tzinfo=UTC),
        end_time=datetime(2026, 1, 4, 3, 30, tzinfo=UTC),
        recurrence="0 2 * * 0",
        timezone="America/Chicago",
    )
    _insert("secrets", name="PAGER_TOKEN", description="pager", **_seal("tok-123456"))
    _insert("secrets", name="DB_PASSWORD", **_seal("s3cret-pw"))
    _insert("api_keys", name="admin", key_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
    _insert(
        "notification_targets",
        service_id=billing,
        type="slack",
        config=json.dumps({"channel_id": "C0PAY"}),
    )
    _insert(
        "notification_targets",
        service_id=billing,
        type="pagerduty",
        config=json.dumps({"service_key": "R0UTINGKEY0000000000000000000001"}),
        priority=1,
        period="after_hours",
    )
    _insert(
        "webhooks",
        url="https://hooks.example/medic",
        headers=json.dumps({"Authorization": "Bearer hook-token"}),
    )
    _insert("playbooks", name="restart", yaml_content="name: restart\nsteps: []\n")
    _insert("registered_scripts", name="restart-svc", content="systemctl restart x")
    _insert("schema_migrations", pk="version", version="017", applied_at=now)
    return {"now": now, "opened": opened, "alert": alert, "billing": billing, "etl": etl}


def test_every_v1_table_is_imported_or_reported(v1):
    out, err = _import()
    assert "services:   created 2, updated 0, unchanged 0, skipped 0" in out
    assert "alerts:     created 1, updated 0, unchanged 0, skipped 0" in out
    assert "job_runs:   created 3, updated 0, unchanged 0, skipped 0" in out
    assert "maintenance_windows: created 2, updated 0, unchanged 0, skipped 0" in out
    assert "secrets:    created 2, updated 0, unchanged 0, skipped 0" in out
    assert "teams:      created 1, updated 0, unchanged 0, skipped 0" in out
    assert "team_id names team 'payments' but v1 alerted as team 'site-reliability'" in err
    assert Team.objects.get(name="payments").slack_channel_id == "C0PAY"
    assert "schedules:  created 1, updated 0, unchanged 0, skipped 0" in out
    assert WorkingHours.objects.get(name="office").spec == {
        "timezone": "America/Chicago",
        "windows": [
            {"days": ["monday"], "start": "09:00", "end": "17:00"},
            {"days": ["friday"], "start": "22:00", "end": "02:00"},
        ],
    }
    assert "1 v1 service(s) name a schedule" in err
    # Registered scripts: disabled, run locally, v1's interpreter as the #! line.
    assert "scripts:    created 1, updated 0, unchanged 0, skipped 0" in out
    script = Script.objects.get(name="restart-svc")
    version = script.versions.get(version=script.current_version)
    assert not script.enabled and version.run_local and version.timeout_seconds == 30
    assert version.body == "#!/bin/bash\nsystemctl restart x"
    # Targets and webhooks: disabled targets with disabled rules, for review.
    assert "targets:    created 3, updated 0, unchanged 0, skipped 0" in out
    targets = {t.name: t for t in NotificationTarget.objects.all()}
    assert targets["v1-target-1"].config == {"channel": "C0PAY"}
    assert decrypt(targets["v1-target-2"].secrets["routing_key"]).startswith("R0UTING")
    assert targets["v1-webhook-1"].config == {"url": "https://hooks.example/medic"}
    hook_header = targets["v1-webhook-1"].secrets["headers"]["Authorization"]
    assert decrypt(hook_header) == "Bearer hook-token"
    assert not any(t.enabled for t in targets.values())
    rules = {r.name: r for r in RoutingRule.objects.all()}
    assert not any(r.enabled for r in rules.values())
    assert rules["v1-target-2"].when == "after_hours" and rules["v1-target-2"].schedule.name == (
        "office"
    )
    assert (
        rules["v1-target-1"].service.heartbeat_name == "prod-billing"
        and rules["v1-webhook-1"].service is None
    )
    # A playbook Medic 2 cannot express is reported with why, not imported; v1's key hash is
    # copied (tests/test_import_v1_remediation.py has both in full).
    assert "playbooks:  created 0, updated 0, unchanged 0, skipped 1" in out
    assert "v1 playbook 1 (restart): not imported, it has no playbook_triggers row" in err
    assert "api_keys:   created 1, updated 0, unchanged 0, skipped 0" in out
    assert "row(s) not imported" not in out  # the v1 tables Medic 2 has no home for are empty
    assert "schema_migrations" not in out + err  # v1's bookkeeping, nothing to report

    billing = Service.objects.get(heartbeat_name="prod-billing")
    assert billing.grace_period_seconds == 90
    assert billing.max_duration_seconds == 121  # 120.5 s rounded up: never hung earlier

    # The open alert is at the instant of the failure, not six (here five or six) hours early.
    alert = Alert.objects.get(v1_id=v1["alert"])
    assert alert.opened_at == v1["opened"]
    assert alert.state == "open" and alert.notify_count == 160

    runs = {r.run_id: r for r in JobRun.objects.filter(service__heartbeat_name="nightly-etl")}
    assert {k: r.status for k, r in runs.items()} == {
        "r-1": "completed",
        "r-2": "failed",
        "r-3": "running",
    }
    assert runs["r-1"].duration_ms == 3_600_000 and runs["r-3"].deadline_at is None
    assert "1 v1 job run(s) still STARTED" in err

    # The window active in v1 is active in Medic 2, for the same service only. (Asked of each
    # window on its own: the weekly one covers every service on Sunday mornings, whenever this
    # runs.)
    now = timezone.now()
    etl = Service.objects.get(heartbeat_name="nightly-etl")
    upgrade = MaintenanceWindow.objects.get(name="db-upgrade")
    assert occurrence_at(upgrade, now) is not None
    assert covers(upgrade, billing) and not covers(upgrade, etl)
    weekly = MaintenanceWindow.objects.get(name="sunday-patching")
    assert weekly.cron_expression == "0 2 * * 0" and weekly.duration_minutes == 90
    assert weekly.time_zone == "America/Chicago" and weekly.scope == "all"
    chicago = ZoneInfo("America/Chicago")
    sunday = datetime(2026, 12, 6, 3, 0, tzinfo=chicago)  # 02:00-03:30 local, every Sunday
    assert occurrence_at(weekly, sunday) is not None
    assert occurrence_at(weekly, sunday + timedelta(hours=1)) is None
    assert occurrence_at(weekly, sunday + timedelta(days=1)) is None
    # What the alerting path asks, true at any instant: billing is covered now; etl only when
    # the weekly window happens to be open.
    assert window_covering(service=billing, at=now) is not None
    weekly_open = occurrence_at(weekly, now) is not None
    assert (window_covering(service=etl, at=now) is not None) == weekly_open

    # Secrets: opened with v1's key, sealed with Medic 2's.
    sealed = {s.name: s for s in Secret.objects.all()}
    assert decrypt(sealed["PAGER_TOKEN"].ciphertext) == "tok-123456"
    assert decrypt(sealed["DB_PASSWORD"].ciphertext) == "s3cret-pw"
    assert "tok-123456" not in sealed["PAGER_TOKEN"].ciphertext


def test_without_v1s_key_secrets_are_reported_not_imported(v1):
    out, err = _import(key=False)
    assert "secrets:    created 0, updated 0, unchanged 0, skipped 2" in out
    assert "2 v1 secret(s) not imported (PAGER_TOKEN, DB_PASSWORD)" in err
    assert not Secret.objects.exists()


def test_a_wrong_v1_key_is_reported_per_secret(v1, tmp_path):
    path = tmp_path / "v1.key"
    path.write_text(base64.b64encode(os.urandom(32)).decode())
    out, err = _import("--v1-secrets-key-file", str(path), key=False)
    assert "skipped 2" in out and "PAGER_TOKEN: not imported, it does not open" in err
    path.write_text("short")
    with pytest.raises(CommandError, match=r"not base64|decodes to"):
        _import("--v1-secrets-key-file", str(path), key=False)


def test_rehearsal_reruns_write_nothing_then_follow_v1(v1):
    _import()
    audits = AuditEvent.objects.count()
    snapshot = list(Alert.objects.values_list("pk", "state", "notify_count", "next_notify_at"))

    # Nothing new in v1: nothing written (no audit row), whatever time passed; the dry run
    # prints the same report.
    again, _ = _import()
    dry, _ = _import("--dry-run")
    assert "created 0, updated 0" in again and "updated 1" not in again
    assert dry.replace("Dry run, nothing was written. ", "") == again
    assert AuditEvent.objects.count() == audits
    assert list(Alert.objects.values_list("pk", "state", "notify_count", "next_notify_at")) == (
        snapshot
    )

    # Days later (a rehearsal re-run), deadlines have passed but v1 holds nothing new: still
    # nothing is written, statuses included.
    statuses = dict(Service.objects.values_list("heartbeat_name", "status"))
    assert statuses == {"prod-billing": "down", "nightly-etl": "up"}
    later = v1_import(
        dsn=_dsn(),
        schema=SCHEMA,
        secrets_key=base64.b64encode(V1_KEY).decode(),
        now=timezone.now() + timedelta(days=3),
    )
    assert not later.changed and later.recomputed == 0
    assert dict(Service.objects.values_list("heartbeat_name", "status")) == statuses
    assert AuditEvent.objects.count() == audits

    # v1 goes on: the outage is counted further, the stale run completes, a window moves, a
    # secret is rotated.
    _sql(f"UPDATE {SCHEMA}.alerts SET alert_cycle = 200 WHERE alert_id = %s", (v1["alert"],))
    done = v1["now"] + timedelta(minutes=5)
    _sql(
        f"UPDATE {SCHEMA}.job_runs SET status = 'COMPLETED', completed_at = %s, "
        "duration_ms = 2100000 WHERE run_id = 'r-3'",
        (done,),
    )
    _sql(
        f"UPDATE {SCHEMA}.maintenance_windows SET end_time = end_time + interval '1 hour' "
        "WHERE name = 'db-upgrade'"
    )
    sealed = _seal("tok-rotated")
    _sql(
        f"UPDATE {SCHEMA}.secrets SET encrypted_value = %s, nonce = %s, tag = %s "
        "WHERE name = 'PAGER_TOKEN'",
        (sealed["encrypted_value"], sealed["nonce"], sealed["tag"]),
    )
    dry, _ = _import("--dry-run")
    out, _ = _import()
    assert dry.replace("Dry run, nothing was written. ", "") == out
    assert "alerts:     created 0, updated 1, unchanged 0" in out
    assert "job_runs:   created 0, updated 1, unchanged 2" in out
    assert "maintenance_windows: created 0, updated 1, unchanged 1" in out
    assert "secrets:    created 0, updated 1, unchanged 1" in out
    assert "scripts:    created 0, updated 0, unchanged 1" in out
    alert = Alert.objects.get(v1_id=v1["alert"])
    assert alert.state == "open" and alert.notify_count == 200
    run = JobRun.objects.get(run_id="r-3")
    assert run.status == "completed" and run.ended_at == done
    assert decrypt(Secret.objects.get(name="PAGER_TOKEN").ciphertext) == "tok-rotated"

    # v1 closes the outage: the close time is corrected like the open time.
    closed = v1["now"] + timedelta(minutes=20)
    _sql(
        f"UPDATE {SCHEMA}.alerts SET active = 0, closed_date = %s WHERE alert_id = %s",
        (_wall(closed), v1["alert"]),
    )
    _import()
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.resolved_at == closed


@pytest.mark.parametrize(
    ("opened", "closed"),
    [
        # Spring forward: 01:30 CST (07:30 UTC) to 03:30 CDT (08:30 UTC), one real hour.
        (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), datetime(2026, 3, 8, 8, 30, tzinfo=UTC)),
        # Fall back: 00:30 CDT (05:30 UTC) to 02:15 CST (08:15 UTC): 1 h 45 on the wall clock,
        # 2 h 45 in fact.
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 8, 15, tzinfo=UTC)),
    ],
)
def test_alert_times_across_a_dst_change(v1, opened, closed):
    v1_id = _insert(
        "alerts",
        pk="alert_id",
        alert_name="Medic - Heartbeat failure for nightly-etl",
        service_id=v1["etl"],
        active=0,
        alert_cycle=3,
        created_date=_wall(opened),
        closed_date=_wall(closed),
    )
    _import()
    alert = Alert.objects.get(v1_id=v1_id)
    assert (alert.opened_at, alert.resolved_at) == (opened, closed)


def test_the_repeated_hour_is_read_as_daylight_time_and_the_zone_is_an_option(v1):
    # 01:30 on 2026-11-01 happens twice in Chicago; v1 stored no offset, so the first (CDT,
    # 06:30 UTC) is taken.
    first = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    v1_id = _insert(
        "alerts",
        pk="alert_id",
        service_id=v1["etl"],
        active=0,
        alert_cycle=1,
        created_date=_wall(first + timedelta(hours=1)),  # the second 01:30 (CST)
        closed_date=_wall(first + timedelta(hours=2)),
    )
    _import()
    assert Alert.objects.get(v1_id=v1_id).opened_at == first

    with pytest.raises(CommandError, match="Unknown time zone 'Mars/Base'"):
        _import("--v1-timezone", "Mars/Base")


def test_no_incident_is_null_in_the_v1_api_however_v1_wrote_it(v1, reader):
    # NULL (muted, or PagerDuty failed), '' and the text 'NULL' all mean "no incident" in v1.
    ids = [
        _insert(
            "alerts",
            pk="alert_id",
            alert_name="Medic - Heartbeat failure for nightly-etl",
            service_id=v1["etl"],
            active=0,
            alert_cycle=1,
            external_reference_id=ref,
            created_date=_wall(v1["now"] - timedelta(days=1, hours=i)),
            closed_date=_wall(v1["now"] - timedelta(days=1, hours=i) + timedelta(minutes=5)),
        )
        for i, ref in enumerate((None, "", "NULL"))
    ]
    _import()
    rows = {r["alert_id"]: r for r in reader.get("/alerts").json()["results"]}
    for v1_id in ids:
        alert = Alert.objects.get(v1_id=v1_id)
        assert rows[alert.pk]["external_reference_id"] is None
        assert alert.dedup_key.startswith("medic-nightly-etl")
    billing = Alert.objects.get(v1_id=v1["alert"])
    assert rows[billing.pk]["external_reference_id"] == "medic-prod-billing"
