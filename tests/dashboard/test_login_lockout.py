"""Failed sign-ins at /ui/login: after the limit for a username or a client address, further
attempts get 429 and a message saying when to try again, without the password being checked; a
successful sign-in clears the username's count. Counted in medic_auth_failures_total and logged
with username and address, never the password."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from medic import ratelimit
from tests.dashboard.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-in attempts, try again in 15 minutes."


def _sign_in(username: str, password: str, address: str = "127.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        "/ui/login", {"username": username, "password": password}
    )


def _failures(reason: str) -> float:
    return REGISTRY.get_sample_value("medic_auth_failures_total", {"reason": reason}) or 0.0


def test_five_failures_lock_the_username_even_for_the_right_password(db, caplog):
    make_user("vera", "viewer")
    failed, locked = _failures("login_failed"), _failures("login_locked")
    for _ in range(5):
        response = _sign_in("vera", "wrong guess")
        assert response.status_code == 200
        assert b"Please enter a correct username and password" in response.content
    with caplog.at_level(logging.WARNING, logger="dashboard.views.auth"):
        response = _sign_in("vera", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in response.wsgi_request.session  # not signed in
    assert b'value="vera"' in response.content  # the username stays in the form
    assert _failures("login_failed") - failed == 5
    assert _failures("login_locked") - locked == 1
    assert any(
        "refused for username 'vera' from 127.0.0.1" in r.getMessage() for r in caplog.records
    )
    assert PASSWORD not in caplog.text
    # from another address too: it is the username that is locked (case does not matter)
    assert _sign_in("VERA", PASSWORD, address="10.0.0.7").status_code == 429


def test_failures_are_logged_without_the_password(db, caplog):
    make_user("vera", "viewer")
    with caplog.at_level(logging.WARNING, logger="dashboard.views.auth"):
        _sign_in("vera", "hunter2-secret")
    record = next(r for r in caplog.records if "sign-in failed" in r.getMessage())
    assert record.username == "vera" and record.source == "127.0.0.1"
    assert "hunter2-secret" not in caplog.text


def test_a_successful_sign_in_clears_the_username_count(db):
    make_user("vera", "viewer")
    for _ in range(4):
        _sign_in("vera", "wrong")
    response = _sign_in("vera", PASSWORD)
    assert response.status_code == 302  # the fifth attempt: right, and not locked
    for _ in range(4):
        assert _sign_in("vera", "wrong").status_code == 200  # counting from zero again
    assert _sign_in("vera", PASSWORD).status_code == 302


def test_twenty_failures_from_one_address_lock_that_address(db):
    make_user("vera", "viewer")
    for i in range(20):
        assert _sign_in(f"guess-{i}", "wrong", address="203.0.113.9").status_code == 200
    response = _sign_in("vera", PASSWORD, address="203.0.113.9")
    assert response.status_code == 429 and LOCKED in response.content.decode()
    # another address is not affected; a success there does not unlock the first address
    assert _sign_in("vera", PASSWORD, address="198.51.100.4").status_code == 302
    assert _sign_in("vera", PASSWORD, address="203.0.113.9").status_code == 429


def test_blank_fields_are_not_failures(db):
    for _ in range(10):
        response = Client().post("/ui/login", {"username": "vera", "password": ""})
        assert response.status_code == 200
    make_user("vera", "viewer")
    assert _sign_in("vera", PASSWORD).status_code == 302


def test_limits_come_from_settings(db, settings):
    make_user("vera", "viewer")
    settings.MEDIC_LOGIN_MAX_FAILURES_PER_USER = 2
    settings.MEDIC_LOGIN_FAILURE_WINDOW_MINUTES = 1
    _sign_in("vera", "wrong")
    _sign_in("vera", "wrong")
    response = _sign_in("vera", PASSWORD)
    assert response.status_code == 429
    assert "try again in 1 minute." in response.content.decode()
    settings.MEDIC_LOGIN_MAX_FAILURES_PER_USER = 0  # 0: no limit
    assert _sign_in("vera", PASSWORD).status_code == 302


def test_failures_are_forgotten_one_window_after_another(limiter_store, clock):
    # Two failures lock for 120 s; each failure weighs a whole window, after the one before it.
    ratelimit.failures_clear("test")
    ratelimit.failures_record("test", 2, 120)
    assert ratelimit.failures_wait("test", 2, 120) == 0
    clock.advance(30)
    ratelimit.failures_record("test", 2, 120)
    assert ratelimit.failures_wait("test", 2, 120) == 90  # the first failure is 120 s old
    clock.advance(89)
    assert ratelimit.failures_wait("test", 2, 120) == 1
    clock.advance(1)
    assert ratelimit.failures_wait("test", 2, 120) == 0  # one failure still weighs
    ratelimit.failures_record("test", 2, 120)
    assert ratelimit.failures_wait("test", 2, 120) == 120  # one more try per window
    clock.advance(240)
    ratelimit.failures_record("test", 2, 120)
    assert ratelimit.failures_wait("test", 2, 120) == 0  # idle for two windows: all forgotten
    ratelimit.failures_clear("test")
    assert ratelimit.failures_wait("test", 1, 120) == 0


def test_an_unreachable_limiter_lets_sign_in_through(db):
    class Broken:
        def hit(self, *args):
            raise ConnectionError("redis is down")

        peek = delete = clear = hit_many = hit

    make_user("vera", "viewer")
    ratelimit.configure(store=Broken())
    errors = REGISTRY.get_sample_value("medic_rate_limit_backend_errors_total") or 0
    assert _sign_in("vera", "wrong").status_code == 200
    assert _sign_in("vera", PASSWORD).status_code == 302
    assert (REGISTRY.get_sample_value("medic_rate_limit_backend_errors_total") or 0) > errors


def test_the_django_admin_login_is_behind_the_same_lockout(db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "", PASSWORD)

    def admin_sign_in(password: str):
        return Client(REMOTE_ADDR="192.0.2.5").post(
            "/admin/login/?next=/admin/", {"username": "root", "password": password}
        )

    for _ in range(5):
        response = admin_sign_in("wrong")
        assert response.status_code == 200 and "_auth_user_id" not in response.wsgi_request.session
    response = admin_sign_in(PASSWORD)
    assert response.status_code == 200  # the form again, not the redirect of a signed-in admin
    assert "_auth_user_id" not in response.wsgi_request.session
    assert LOCKED in response.content.decode()
    # failures at the admin lock the portal too (one lock-out for every way in)
    assert _sign_in("root", PASSWORD).status_code == 429
