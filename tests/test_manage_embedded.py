"""manage.py in a `make run` checkout reaches the embedded database without MEDIC_EMBEDDED=1
typed again; anywhere else the production guard stays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOW_DB = "from django.conf import settings; print(settings.DATABASES['default']['NAME'])"


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _clean_env(var_dir: Path) -> dict[str, str]:
    # What a user's shell has: no Medic or Django settings at all.
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["MEDIC_VAR_DIR"] = str(var_dir)
    return env


def test_checkout_with_the_embedded_database_runs_commands_on_it(tmp_path):
    (tmp_path / "medic.sqlite3").touch()
    result = _manage(_clean_env(tmp_path), "shell", "-v", "0", "-c", SHOW_DB)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "medic.sqlite3")


def test_without_the_embedded_database_the_guard_refuses(tmp_path):
    result = _manage(_clean_env(tmp_path), "shell", "-v", "0", "-c", SHOW_DB)
    assert result.returncode == 1
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in result.stderr
    assert not (tmp_path / "medic.sqlite3").exists()


def test_a_configured_database_keeps_the_production_guard(tmp_path):
    (tmp_path / "medic.sqlite3").touch()
    env = _clean_env(tmp_path) | {"DATABASE_URL": "postgresql://medic@127.0.0.1:1/medic"}
    result = _manage(env, "shell", "-v", "0", "-c", SHOW_DB)
    assert result.returncode == 1
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in result.stderr


def test_an_explicit_mode_is_left_alone(tmp_path):
    (tmp_path / "medic.sqlite3").touch()
    env = _clean_env(tmp_path) | {"MEDIC_EMBEDDED": "0"}
    result = _manage(env, "shell", "-v", "0", "-c", SHOW_DB)
    assert result.returncode == 1
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in result.stderr
