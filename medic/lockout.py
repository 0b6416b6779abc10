"""Sign-in lock-out for every way to sign in (the portal's /ui/login, the Django admin, anything
that calls ``django.contrib.auth.authenticate``).

Failed sign-ins are counted per username (case-insensitive) and per client address in the rate
limiter's store (``medic.ratelimit``, GCRA: Redis, or the embedded mode's shared file), each
failure weighing ``MEDIC_LOGIN_FAILURE_WINDOW_MINUTES`` after the one before it. Once either
reaches its limit, sign-in is refused *before* the password is checked, for one window. A
successful sign-in clears the username's count, not the address's (one valid account must not
reset the budget of an address guessing others).

``LockoutBackend`` (the only authentication backend) enforces it, so no sign-in path can skip it;
the portal and the admin also ask ``wait_seconds`` first to answer 429 with a message.
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from medic import ratelimit
from medic.refusals import refused

logger = logging.getLogger(__name__)


def _limits(request, username: str) -> tuple[tuple[str, int], ...]:
    address = ratelimit.client_address(request)
    return (
        (
            f"login-user:{username.strip()[:150].lower()}",
            settings.MEDIC_LOGIN_MAX_FAILURES_PER_USER,
        ),
        (f"login-addr:{address}", settings.MEDIC_LOGIN_MAX_FAILURES_PER_ADDRESS),
    )


def _window() -> int:
    return settings.MEDIC_LOGIN_FAILURE_WINDOW_MINUTES * 60


def wait_seconds(request, username: str) -> int:
    """Seconds until this username and address may try again; 0 when they may now."""
    return max(
        ratelimit.failures_wait(key, limit, _window()) for key, limit in _limits(request, username)
    )


def record_failure(request, username: str) -> None:
    for key, limit in _limits(request, username):
        ratelimit.failures_record(key, limit, _window())
    address = ratelimit.client_address(request)
    refused("login_failed")
    logger.warning(
        "sign-in failed for username %r from %s at %s",
        username,
        address,
        request.path,
        extra={"username": username, "source": address},
    )


def record_success(request, username: str) -> None:
    user_key, _ = _limits(request, username)
    ratelimit.failures_clear(user_key[0])


def log_refusal(request, username: str, wait: int) -> None:
    address = ratelimit.client_address(request)
    refused("login_locked")
    logger.warning(
        "sign-in refused for username %r from %s: too many failed attempts "
        "(locked for %d more seconds)",
        username,
        address,
        wait,
        extra={"username": username, "source": address, "retry_after": wait},
    )


def wait_text(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def locked_message(seconds: int) -> str:
    return f"Too many failed sign-in attempts, try again in {wait_text(seconds)}."


class LockoutBackend(ModelBackend):
    """Django's model backend behind the lock-out: a locked username or address is refused
    without its password being checked; a wrong password counts as a failure."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or not username or not password:
            return super().authenticate(request, username=username, password=password, **kwargs)
        wait = wait_seconds(request, username)
        if wait:
            log_refusal(request, username, wait)
            raise PermissionDenied  # authenticate() then tries no other backend
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(request, username)
        else:
            record_success(request, username)
        return user
