"""Real Medic processes (gunicorn web, Celery worker with embedded beat) on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(**extra: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DATABASE_URL=(
            f"postgresql://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT']}/"
            f"{db['NAME']}"
        ),
        SLACK_BOT_TOKEN=settings.SLACK_BOT_TOKEN,
        SLACK_API_BASE_URL=settings.SLACK_API_BASE_URL,
        SLACK_DEFAULT_CHANNEL=settings.SLACK_DEFAULT_CHANNEL,
        PAGERDUTY_ROUTING_KEY=settings.PAGERDUTY_ROUTING_KEY,
        PAGERDUTY_EVENTS_URL=settings.PAGERDUTY_EVENTS_URL,
        MEDIC_LOG_FORMAT="text",
        MEDIC_RATE_LIMIT_HEARTBEAT="100000",
        MEDIC_RATE_LIMIT_MANAGEMENT="100000",
        MEDIC_RATE_LIMIT_UNAUTHENTICATED="100000",
    )
    env.update(extra)
    return env


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, 15)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, 9)
                self.popen.wait(5)
        self._fh.close()


@pytest.fixture
def start_worker(tmp_path):
    procs: list[Proc] = []

    def start(*, beat: bool = True, metrics_port: int = 0, **extra_env: str) -> Proc:
        args = [
            str(BIN / "celery"),
            "-A",
            "medic",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            args += ["--beat", "--schedule", str(tmp_path / "beat-schedule")]
        env = process_env(
            MEDIC_WORKER_METRICS_ADDR=f"127.0.0.1:{metrics_port}" if metrics_port else "",
            **extra_env,
        )
        proc = Proc(args, env, tmp_path / f"worker-{len(procs)}.log")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def start_web(tmp_path):
    procs: list[Proc] = []

    def start(*, workers: int = 2, **env: str) -> str:
        port = free_port()
        args = [
            str(BIN / "gunicorn"),
            "medic.front:application",
            "--config",
            "deploy/gunicorn.conf.py",  # the production web server, as the image runs it
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ]
        env.setdefault("GUNICORN_THREADS", "2")
        proc = Proc(args, process_env(**env), tmp_path / f"web-{len(procs)}.log")
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/health/live", timeout=1)
                return url
            except OSError:
                if proc.popen.poll() is not None:
                    break
                time.sleep(0.2)
        raise AssertionError("web did not start:\n" + proc.output())

    yield start
    for proc in procs:
        proc.stop()
