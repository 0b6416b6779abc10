"""The embedded mode's limits hold across its web processes, and slow clients do not starve it:
`make run`'s web command (scripts/web.sh, two uvicorn processes in front of the WSGI application)
against a fresh var directory, SQLite and no Redis.

Requests are pinned to a worker by keeping a connection open: each connection is first probed
with an unlimited request (/health/live?probe=N) and the access log (a log configuration that
adds the process id) names the process that answered it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
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
        # A body that stalls is answered 408 after this long (medic/front.py).
        MEDIC_FRONT_BODY_SECONDS="3",
    )
    return env


def _access_log_with_pids(path: Path) -> Path:
    """uvicorn's logging, with the process id on each access line."""
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {
                    "access": {
                        "()": "uvicorn.logging.AccessFormatter",
                        "fmt": '"%(request_line)s" pid=%(process)d %(status_code)s',
                        "use_colors": False,
                    }
                },
                "handlers": {
                    "access": {
                        "class": "logging.StreamHandler",
                        "formatter": "access",
                        "stream": "ext://sys.stdout",
                    }
                },
                "loggers": {
                    "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False}
                },
            }
        )
    )
    return path


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
    """One kept-alive connection, and so one web process."""

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
    # The bootstrap key has a raised management limit (make run's first minutes); an ordinary
    # admin key has the default 20 a minute, which the limits test counts down.
    key = _manage(env, "create_api_key", "--name", "limits", "--scopes", "admin").split()[-1]
    assert key.startswith("mdk_"), key
    log_config = _access_log_with_pids(tmp_path / "log.json")
    proc = Proc(
        ["bash", "scripts/web.sh", "--log-config", str(log_config)], env, tmp_path / "web.log"
    )
    try:  # stopped even when it never comes up
        deadline = time.monotonic() + 60
        while not _healthy(port):
            assert proc.popen.poll() is None and time.monotonic() < deadline, proc.output()
            time.sleep(0.2)
        while proc.output().count("Started server process") < 2:  # both web processes
            assert proc.popen.poll() is None and time.monotonic() < deadline, proc.output()
            time.sleep(0.2)
        yield port, key, password, proc
    finally:
        proc.stop()


def _two_workers(port: int, proc: Proc) -> tuple[Worker, Worker]:
    """Open connections until two are held by different worker processes."""
    seen: dict[str, Worker] = {}
    for i in range(64):
        worker = Worker(port)
        assert worker.request("GET", f"/health/live?probe=c{i}")[0].status == 200
        for _ in range(50):  # the access line is written just after the response
            found = re.search(rf"probe=c{i} HTTP/1.1\" pid=(\d+)", proc.output())
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


def _slow_client(port: int, key: str) -> socket.socket:
    """A heartbeat whose headers arrive and whose body stops after its first bytes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(
        b"POST /v2/heartbeat/slow-job HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {key}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n"
        + b'{"status":'
    )
    return sock


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return data


def test_slow_clients_do_not_starve_the_health_probe(embedded):
    port, key, _, _ = embedded
    # Twelve connections that send their headers and part of a body, more than the eight
    # threads of the two web processes: before medic/front.py, seven were enough for the
    # probe to time out.
    slow = [_slow_client(port, key) for _ in range(12)]
    for _ in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health/live")
        response = conn.getresponse()
        assert response.status == 200 and b'"alive"' in response.read()
        conn.close()
    # A slow client that finishes is served like any other (no such service here: 404) ...
    slow[0].sendall(b' "DOWN", "message": "late"}' + b" " * 3)
    answer = _answer(slow[0])
    assert answer.startswith(b"HTTP/1.1 404") and b'"service_not_found"' in answer, answer
    # ... and one that stalls gets 408 in the error envelope once its time is up.
    answer = _answer(slow[1])
    assert answer.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in answer, answer
    for sock in slow:
        sock.close()


def test_make_run_is_quiet_when_idle_and_stops_promptly_on_ctrl_c(tmp_path):
    # `make run` as a newcomer runs it: no Celery warning about root, no log lines for sweeps
    # that found nothing, and Ctrl-C (SIGINT to the terminal's process group) returns within
    # seconds, not after the workers' 30 s graceful timeout.
    port = free_port()
    env = _embedded_env(tmp_path / "var", port)
    proc = Proc(["bash", "scripts/run.sh"], env, tmp_path / "run.log")
    try:
        deadline = time.monotonic() + 120
        while "celery@" not in proc.output() or not _healthy(port):
            assert proc.popen.poll() is None and time.monotonic() < deadline, proc.output()
            time.sleep(0.5)
        time.sleep(12)  # two sweep periods (5 s) with nothing to do
        os.killpg(proc.popen.pid, 2)
        proc.popen.wait(15)
    finally:
        proc.stop()
    out = proc.output()
    assert "superuser privileges" not in out and "SecurityWarning" not in out, out
    assert not re.search(r"heartbeats\.sweep.*INFO|INFO.*sweep", out), out
    assert "==> stopping Medic" in out


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health/live")
        return conn.getresponse().status == 200
    except OSError:
        return False
