"""The embedded mode's limits hold across its web processes: `make run`'s web command
(scripts/web.sh, two gunicorn workers) against a fresh var directory, SQLite and no Redis.

Requests are pinned to a worker by keeping a connection open: each connection is first probed
with an unlimited request (/health/live?probe=N) and the access log names the worker that
answered it.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Proc, free_port


def _embedded_env(var: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "MEDIC_", "CELERY_", "SECRET_KEY"))
    }
    env.update(
        MEDIC_EMBEDDED="1",
        MEDIC_VAR_DIR=str(var),
        HOME=str(var.parent / "home"),
        PORT=str(port),
        MEDIC_LOG_FORMAT="text",
        # Connections stay open while the test probes others; the access log names the worker
        # process that answered each probe.
        GUNICORN_CMD_ARGS="--keep-alive 60 --access-logformat '%(q)s pid=%(p)s %(s)s'",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Worker:
    """One kept-alive connection, and so one gunicorn worker."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None, **headers: str):
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        content = response.read().decode()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response, content

    def sign_in(self, username: str, password: str) -> int:
        _, page = self.request("GET", "/ui/login")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = f"username={username}&password={password}&csrfmiddlewaretoken={token}"
        response, _ = self.request(
            "POST",
            "/ui/login",
            body,
            **{"Content-Type": "application/x-www-form-urlencoded", "Referer": "http://x/"},
        )
        return response.status


@pytest.fixture
def embedded(tmp_path):
    var = tmp_path / "var"
    port = free_port()
    env = _embedded_env(var, port)
    _manage(env, "migrate", "--no-input", "-v", "0")
    out = _manage(env, "medic_bootstrap")
    password = re.search(r"Admin user created: admin / (\S+)", out).group(1)
    key = re.search(r"Admin API key created \(shown once\): (\S+)", out).group(1)
    proc = Proc(["bash", "scripts/web.sh"], env, tmp_path / "web.log")
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health/live")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        assert proc.popen.poll() is None and time.monotonic() < deadline, proc.output()
        time.sleep(0.2)
    yield port, key, password, proc
    proc.stop()


def _two_workers(port: int, proc: Proc) -> tuple[Worker, Worker]:
    """Open connections until two are held by different worker processes."""
    seen: dict[str, Worker] = {}
    for i in range(64):
        worker = Worker(port)
        assert worker.request("GET", f"/health/live?probe=c{i}")[0].status == 200
        for _ in range(50):  # the access line is written just after the response
            found = re.search(rf"probe=c{i} pid=<?(\d+)", proc.output())
            if found:
                break
            time.sleep(0.05)
        seen.setdefault(found.group(1), worker)
        if len(seen) == 2:
            return tuple(seen.values())
    raise AssertionError("every connection went to one worker:\n" + proc.output())


def test_limits_and_lockouts_are_shared_by_the_embedded_web_processes(embedded):
    port, key, password, proc = embedded
    first, second = _two_workers(port, proc)

    # 20 management requests a minute per key, counted once across both workers.
    remaining = []
    for i in range(20):
        worker = (first, second)[i % 2]
        response, _ = worker.request("GET", "/v2/services", Authorization=f"Bearer {key}")
        assert response.status == 200, response.status
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == list(range(19, -1, -1))
    for worker in (first, second):
        response, body = worker.request("GET", "/v2/services", Authorization=f"Bearer {key}")
        assert response.status == 429
        assert '"rate_limited"' in body and 1 <= int(response.headers["Retry-After"]) <= 60

    # Five failed sign-ins on one worker lock the user out on the other too.
    for _ in range(5):
        assert first.sign_in("admin", "wrong") == 200
    assert second.sign_in("admin", password) == 429


def test_the_readme_commands_work_in_the_embedded_checkout_and_production_stays_guarded(tmp_path):
    var = tmp_path / "var"
    env = _embedded_env(var, 0)
    _manage(env, "migrate", "--no-input", "-v", "0")
    # as the README shows it: no MEDIC_EMBEDDED=1 in front
    plain = {k: v for k, v in env.items() if k != "MEDIC_EMBEDDED"}
    out = _manage(plain, "create_api_key", "--name", "backup-host", "--scopes", "write")
    assert "mdk_" in out
    # a configured database means production: its checks are as strict as before
    production = dict(plain, DATABASE_URL="postgresql://medic@127.0.0.1:1/medic")
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=production,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "SECRET_KEY" in done.stderr


def test_the_embedded_secret_is_random_and_private(tmp_path):
    secrets = []
    for name in ("one", "two"):
        var = tmp_path / name
        _manage(_embedded_env(var, 0), "check")
        path = var / "secret_key"
        assert path.stat().st_mode & 0o777 == 0o600
        secrets.append(path.read_text().strip())
        _manage(_embedded_env(var, 0), "check")  # a second start keeps it
        assert path.read_text().strip() == secrets[-1]
    assert secrets[0] != secrets[1] and min(len(s) for s in secrets) >= 32
    assert "development-secret" not in secrets[0]


def test_web_servers_leave_no_control_socket_in_the_home_directory(embedded, tmp_path):
    # gunicorn's default control socket is one per user (~/.gunicorn/gunicorn.ctl): two instances
    # on one host would replace each other's. make run's web command and production's config
    # turn it off.
    import runpy

    assert embedded[3].popen.poll() is None
    assert not (tmp_path / "home" / ".gunicorn").exists()
    assert runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))["control_socket_disable"]
