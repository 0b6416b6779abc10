"""Loaded with `-p` before Django's settings: gives each pytest-xdist worker its own Redis
database, so workers never share a Celery queue, rate-limit counters or agent wake-ups.

pytest-django already gives each worker its own PostgreSQL test database (test_medic_gw0,
test_medic_gw1, ...); real processes started by a test inherit both through the environment.

Under root, each worker's sandboxed scripts also run as a user of its own (medic-sbx-gw0, ...):
RLIMIT_NPROC counts processes per real user across the machine, so with one shared sandbox user a
fork-bomb test on one worker would make another worker's scripts fail to fork.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... (set before conftests)
if _worker.startswith("gw"):
    _db = int(_worker[2:]) + 1  # database 0 is left to runs without xdist
    for _name in ("REDIS_URL", "CELERY_BROKER_URL", "MEDIC_RATE_LIMIT_REDIS_URL"):
        _url = os.environ.get(_name)
        if _url and _url.startswith("redis"):
            os.environ[_name] = re.sub(r"(/\d+)?$", f"/{_db}", _url, count=1)

    if os.geteuid() == 0 and "MEDIC_SANDBOX_USER" not in os.environ:
        _user = f"medic-sbx-{_worker}"
        try:
            pwd.getpwnam(_user)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    _user,
                ],
                check=True,
            )
        os.environ["MEDIC_SANDBOX_USER"] = _user
