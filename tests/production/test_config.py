"""Settings the compose deployment relies on, checked in fresh interpreters (settings are read
once, at start-up), and the probe paths and metrics behaviour behind its health checks."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

from medic.metrics import SWEEP_LAST_RUN, Timestamp

ROOT = Path(__file__).resolve().parents[2]
KEY = "k1:" + base64.b64encode(b"k" * 32).decode()


def _settings(env: dict[str, str], expr: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "medic.settings"}
    code = f"import django; django.setup(); from django.conf import settings; print({expr})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True
    )


PRODUCTION = {"SECRET_KEY": "s" * 48, "DATABASE_URL": "postgresql://medic@db:5432/medic"}


def test_production_refuses_to_start_without_encryption_keys():
    done = _settings(PRODUCTION, "settings.MEDIC_ENCRYPTION_KEYS")
    assert done.returncode != 0
    assert "MEDIC_ENCRYPTION_KEYS (or MEDIC_ENCRYPTION_KEYS_FILE) must be set" in done.stderr


def test_production_reads_encryption_keys_and_database_password_from_files(tmp_path):
    (tmp_path / "keys").write_text(KEY + "\n")
    (tmp_path / "pw").write_text("from-a-secret\n")
    env = {
        **PRODUCTION,
        "MEDIC_ENCRYPTION_KEYS_FILE": str(tmp_path / "keys"),
        "DATABASE_PASSWORD_FILE": str(tmp_path / "pw"),
    }
    done = _settings(
        env, "repr((settings.MEDIC_ENCRYPTION_KEYS, settings.DATABASES['default']['PASSWORD']))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr((KEY, "from-a-secret"))


def test_transaction_pooling_turns_off_server_side_cursors():
    # Behind PgBouncer in transaction mode a cursor declared outside a transaction would be gone
    # at its next fetch (docs/scaling.md); everything else keeps its defaults.
    expr = "settings.DATABASES['default'].get('DISABLE_SERVER_SIDE_CURSORS', False)"
    env = {**PRODUCTION, "MEDIC_ENCRYPTION_KEYS": KEY}
    pooled = _settings({**env, "DATABASE_TRANSACTION_POOLING": "1"}, expr)
    direct = _settings(env, expr)
    assert pooled.returncode == 0, pooled.stderr
    assert (pooled.stdout.strip(), direct.stdout.strip()) == ("True", "False")


def test_embedded_mode_starts_without_encryption_keys(tmp_path):
    done = _settings(
        {"MEDIC_EMBEDDED": "1", "MEDIC_VAR_DIR": str(tmp_path)},
        "repr(settings.MEDIC_ENCRYPTION_KEYS)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "''"


@pytest.mark.django_db
@override_settings(ALLOWED_HOSTS=["medic.example.com"])
def test_probes_answer_any_host_and_other_paths_keep_host_validation():
    client = Client(HTTP_HOST="web:8000")
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").json()["status"] == "ready"
    assert client.get("/metrics").status_code == 401  # still needs a read key
    assert client.get("/health").status_code == 400
    assert client.post("/health/ready").status_code == 400  # only GET skips validation
    assert Client(HTTP_HOST="medic.example.com").get("/health").status_code == 200


def test_sweep_timestamp_is_exported_only_once_a_sweep_ran():
    gauge = Timestamp("medic_test_last_run_timestamp_seconds", "test")
    [family] = gauge.collect()
    assert family.samples == []  # declared, but no sample to read as "last ran in 1970"
    gauge.set(1234.5)
    [family] = gauge.collect()
    assert [s.value for s in family.samples] == [1234.5]
    assert isinstance(SWEEP_LAST_RUN, Timestamp)


def test_beat_health_check_needs_a_recent_sweep_pass():
    import time

    from django.core.cache import cache
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from medic.healthchecks import SWEEP_KEY, sweep_ran

    cache.delete(SWEEP_KEY)
    with pytest.raises(CommandError, match="no sweep pass recorded yet"):
        call_command("medic_healthcheck", "beat")
    sweep_ran(time.time() - 120)
    with pytest.raises(CommandError, match=r"finished 12\d s ago \(limit 60 s\)"):
        call_command("medic_healthcheck", "beat", "--max-age", "60")
    sweep_ran()
    call_command("medic_healthcheck", "beat", "--max-age", "60")


def test_worker_health_check_fails_when_no_worker_answers():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="celery@nobody-here did not answer a broker ping"):
        call_command(
            "medic_healthcheck", "worker", "--node", "celery@nobody-here", "--timeout", "1"
        )
