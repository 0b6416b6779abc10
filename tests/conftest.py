"""Shared fixtures: API-key personas, an API client, local stand-ins for Slack/PagerDuty, and
real Celery worker processes for end-to-end tests."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from medic import ratelimit
from medic.apikeys import api_key_create, key_cache
from medic.celery import app as celery_app
from tests.receivers import Receiver


class ManualClock:
    """A clock that moves only when a test says so (the rate limiter runs on it)."""

    def __init__(self) -> None:
        self.at = float(int(time.time()))  # starts now, so X-RateLimit-Reset reads as a date

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["file", "redis"])
def limiter_store(request, settings, tmp_path, clock):
    """Each shared rate-limit store in turn, installed on the controlled clock."""
    if request.param == "redis":
        if not settings.MEDIC_RATE_LIMIT_REDIS_URL:
            pytest.skip("no Redis configured")
        store = ratelimit.RedisStore(settings.MEDIC_RATE_LIMIT_REDIS_URL)
    else:
        store = ratelimit.FileStore(tmp_path / "ratelimit.sqlite3")
    ratelimit.configure(store=store, clock=clock)
    store.clear()
    return store


@pytest.fixture(autouse=True)
def _isolate(settings, clock):
    # Tasks run inline unless a test starts a real worker (see tests/e2e).
    celery_app.conf.task_always_eager = True
    settings.SLACK_BOT_TOKEN = ""
    settings.PAGERDUTY_ROUTING_KEY = ""
    # Inline tasks cannot wait for a sending slot: pacing is off unless a test turns it on.
    settings.MEDIC_SLACK_PACE_PER_SECOND = 0
    settings.MEDIC_PAGERDUTY_PACE_PER_MINUTE = 0
    # Generous limits everywhere; tests of rate limiting set their own.
    for kind in ("HEARTBEAT", "MANAGEMENT", "UNAUTHENTICATED", "ANONYMOUS"):
        setattr(settings, f"MEDIC_RATE_LIMIT_{kind}", 100_000)
    # Rate limits and lock-outs run on a controlled clock: nothing a test asserts depends on
    # when it runs (a window boundary, a slow machine).
    ratelimit.configure(clock=clock)
    ratelimit.store().clear()
    key_cache.clear()
    yield
    key_cache.clear()
    ratelimit.configure()


class ApiClient(Client):
    """A Django test client that sends JSON and an API key."""

    def __init__(self, key: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.key = key

    def _auth(self, extra: dict) -> dict:
        if self.key and "HTTP_AUTHORIZATION" not in extra:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {self.key}"
        return extra

    def get(self, path, data=None, **extra):
        return super().get(path, data, **self._auth(extra))

    def delete(self, path, data="", **extra):
        return super().delete(path, data, **self._auth(extra))

    def post(self, path, data=None, content_type="application/json", **extra):
        return super().post(
            path, data if data is not None else {}, content_type, **self._auth(extra)
        )

    def patch(self, path, data=None, content_type="application/json", **extra):
        return super().patch(path, data or {}, content_type, **self._auth(extra))


def _key(scopes: list[str], name: str) -> str:
    return api_key_create(name=name, scopes=scopes, actor="tests").secret


@pytest.fixture
def admin_key(db) -> str:
    return _key(["admin"], "admin persona")


@pytest.fixture
def writer_key(db) -> str:
    return _key(["write"], "writer persona")


@pytest.fixture
def reader_key(db) -> str:
    return _key(["read"], "reader persona")


@pytest.fixture
def admin(admin_key) -> ApiClient:
    return ApiClient(admin_key)


@pytest.fixture
def writer(writer_key) -> ApiClient:
    return ApiClient(writer_key)


@pytest.fixture
def reader(reader_key) -> ApiClient:
    return ApiClient(reader_key)


@pytest.fixture
def outsider() -> ApiClient:
    return ApiClient(None)


@pytest.fixture
def slack(settings):
    """A local Slack Web API stand-in; Medic's Slack settings point at it."""
    with Receiver(default_body=b'{"ok": true, "ts": "1.0"}') as receiver:
        settings.SLACK_BOT_TOKEN = "xoxb-test-token"
        settings.SLACK_API_BASE_URL = receiver.url + "/api"
        settings.SLACK_DEFAULT_CHANNEL = "C0DEFAULT"
        yield receiver


@pytest.fixture
def pagerduty(settings):
    """A local PagerDuty Events API v2 stand-in."""
    with Receiver(
        default_status=202, default_body=b'{"status":"success","message":"Event processed"}'
    ) as receiver:
        settings.PAGERDUTY_ROUTING_KEY = "R0UTINGKEY0000000000000000000abcd"
        settings.PAGERDUTY_EVENTS_URL = receiver.url
        yield receiver
