"""Fixtures of the browser tests: gunicorn on the test database with the collected static files
(tests/e2e's start_web), and Debian's Chromium through Playwright."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from django.db import connection, connections
from playwright.sync_api import expect, sync_playwright

from tests.dashboard.browser.kit import CHROMIUM, CHROMIUM_ARGS, SHOTS
from tests.e2e.conftest import ROOT, process_env, start_web, start_worker  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The web process checks passwords with the production hashers: keep them here."""


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=process_env(STATIC_ROOT=str(root)),
        check=True,
    )
    return str(root)


@pytest.fixture
def _sessions_closed():
    """After the web processes stop (this teardown runs after start_web's), wait until their
    database sessions are gone, so the test database can be dropped at the end of the run."""
    yield
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.1)


@pytest.fixture
def web(_sessions_closed, start_web, static_root) -> str:  # noqa: F811 (the imported fixture)
    return start_web(STATIC_ROOT=static_root, MEDIC_API_KEY_RECHECK_SECONDS="1")


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the ORM calls made between
    # browser steps are plain synchronous code all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Assertions wait for what the page shows, however long the server takes: the test command
    # runs these beside other workers, the fuzzer and the agent build on two cores, where a
    # debounced validation round trip has taken longer than Playwright's default 5 s.
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        # While Playwright's loop is current, Django keys connections by that context: close
        # the one the test body opened, or it outlives the test and blocks dropping the database.
        connections.close_all()
