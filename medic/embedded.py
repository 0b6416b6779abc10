"""Which mode a management command runs in when nothing says so.

`make run` starts Medic with ``MEDIC_EMBEDDED=1`` and its SQLite database in ``var/``. A command
typed in that checkout afterwards (``.venv/bin/python manage.py create_api_key ...``) must reach
the same database without the user repeating the variable. The production guard in settings
(``SECRET_KEY``, ``DATABASE_URL``, ``DEBUG``) stays as it is: the embedded mode is chosen only when
the environment names no mode and no database at all *and* the checkout holds the database that
`make run` created. A production host always sets ``DATABASE_URL`` and never has that file.

Read by manage.py only (before Django's settings are imported): gunicorn and Celery are started
with the mode set explicitly.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

_MODE_VARIABLES = ("MEDIC_EMBEDDED", "DATABASE_URL", "DATABASE_URL_FILE")


def embedded_database(environ: MutableMapping[str, str], base_dir: Path) -> Path:
    """Where `make run` keeps its SQLite database for this environment."""
    return Path(environ.get("MEDIC_VAR_DIR") or base_dir / "var") / "medic.sqlite3"


def embedded_checkout_detect(environ: MutableMapping[str, str], base_dir: Path) -> bool:
    """Set ``MEDIC_EMBEDDED=1`` in *environ* when this is a `make run` checkout; return whether
    it did."""
    if any(name in environ for name in _MODE_VARIABLES):
        return False
    if not embedded_database(environ, base_dir).is_file():
        return False
    environ["MEDIC_EMBEDDED"] = "1"
    return True


def detect() -> bool:
    return embedded_checkout_detect(os.environ, Path(__file__).resolve().parent.parent)
