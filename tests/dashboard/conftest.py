"""Dashboard personas (anonymous, no role, viewer, operator, admin, superuser) and a small world
of one object of each kind, so every page has something to show."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from alerting import config as cfg
from alerting.models import Alert, Delivery, DeliveryAttempt
from dashboard.roles import groups_ensure
from heartbeats.services import heartbeat_record, service_create
from medic.apikeys import api_key_create

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2's production work factor costs ~0.5 s per user; these tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(username: str, group: str | None = None, superuser: bool = False) -> User:
    groups_ensure(Group)
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    else:
        user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(db) -> Client:
    return logged_in(make_user("vera", "viewer"))


@pytest.fixture
def operator(db) -> Client:
    return logged_in(make_user("otto", "operator"))


@pytest.fixture
def admin_user(db) -> Client:
    return logged_in(make_user("ada", "admin"))


@pytest.fixture
def superuser(db) -> Client:
    return logged_in(make_user("root", superuser=True))


@pytest.fixture
def norole(db) -> Client:
    return logged_in(make_user("nobody"))


@pytest.fixture
def world(db) -> dict:
    """One of everything, linked the way real data is."""
    team = cfg.team_create(name="payments", slack_channel_id="C0PAYMENTS", actor="tests")
    service = service_create(
        heartbeat_name="billing-cron", alert_interval=5, team="payments", priority="p2"
    )
    heartbeat_record(service_ref=service.pk)
    quiet = service_create(heartbeat_name="quiet-job", alert_interval=10, team="payments")
    schedule = cfg.working_hours_create(
        name="office",
        spec={
            "timezone": "Europe/Berlin",
            "windows": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
            ],
        },
        actor="tests",
    )
    target, _ = cfg.target_create(
        name="ops-hook",
        kind="webhook",
        config={"url": "https://hooks.example.com/medic"},
        secrets={"signing_secret": "s" * 20},
        actor="tests",
    )
    rule = cfg.rule_create(
        name="payments-p2", team="payments", priorities=["p2"], targets=[target], actor="tests"
    )
    now = timezone.now()
    alert = Alert.objects.create(
        service=quiet,
        dedup_key="medic-quiet-job",
        reason="never_reported",
        priority="p3",
        summary="quiet-job: never sent a heartbeat",
        opened_at=now - timedelta(hours=2),
        resolved_at=now - timedelta(hours=1),
        state="resolved",
        notify_count=1,
    )
    delivery = Delivery.objects.create(
        alert=alert,
        event="trigger",
        channel="webhook",
        target="https://hooks.example.com/medic",
        status="succeeded",
        attempts=2,
        created_at=alert.opened_at,
    )
    DeliveryAttempt.objects.create(
        delivery=delivery, number=1, status_code=503, error="HTTP 503", duration_ms=40
    )
    DeliveryAttempt.objects.create(delivery=delivery, number=2, status_code=200, duration_ms=35)
    key = api_key_create(name="ci", scopes=["write"], actor="tests").key
    return {
        "team": team,
        "service": service,
        "quiet": quiet,
        "schedule": schedule,
        "target": target,
        "rule": rule,
        "alert": alert,
        "key": key,
    }
