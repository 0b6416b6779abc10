"""Sign in and out with Django's session authentication, with a lockout on failed sign-ins.

Failed sign-ins are counted per username and per client address in a sliding window of
``MEDIC_LOGIN_FAILURE_WINDOW_MINUTES`` (``medic.ratelimit``: Redis when configured, else a file
shared by the embedded mode's processes). Once either count reaches its limit, further attempts
are refused with 429 *before* the password is checked, until the oldest failure leaves the
window. A successful sign-in
clears the username's count (not the address's: one valid account must not reset the budget of
an address that is guessing others).
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.contrib.auth import views as auth_views

from medic import ratelimit
from medic.metrics import AUTH_FAILURES

logger = logging.getLogger(__name__)


def _subjects(request) -> tuple[str, str, str]:
    username = (request.POST.get("username") or "").strip()[:150]
    address = ratelimit.client_address(request)
    return username, f"login-user:{username.lower()}", f"login-addr:{address}"


def lockout_seconds(request) -> int:
    """Seconds until this request's username or address may try again; 0 when it may now."""
    window = settings.MEDIC_LOGIN_FAILURE_WINDOW_MINUTES * 60
    return max(ratelimit.failures_wait(key, limit, window) for key, limit in _limits(request))


def record_failure(request) -> None:
    window = settings.MEDIC_LOGIN_FAILURE_WINDOW_MINUTES * 60
    for key, limit in _limits(request):
        ratelimit.failures_record(key, limit, window)


def _limits(request) -> tuple[tuple[str, int], ...]:
    _, user_key, address_key = _subjects(request)
    return (
        (user_key, settings.MEDIC_LOGIN_MAX_FAILURES_PER_USER),
        (address_key, settings.MEDIC_LOGIN_MAX_FAILURES_PER_ADDRESS),
    )


def wait_text(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class Login(auth_views.LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True
    extra_context = {"title": "Sign in"}

    def post(self, request, *args, **kwargs):
        wait = lockout_seconds(request)
        if wait:
            return self.refuse(request, wait)
        return super().post(request, *args, **kwargs)

    def refuse(self, request, wait: int):
        username, _, _ = _subjects(request)
        address = ratelimit.client_address(request)
        AUTH_FAILURES.labels(reason="login_locked").inc()
        logger.warning(
            "dashboard sign-in refused for username %r from %s: too many failed attempts "
            "(locked for %d more seconds)",
            username,
            address,
            wait,
            extra={"username": username, "source": address, "retry_after": wait},
        )
        form = self.get_form_class()(request, initial={"username": username})
        context = self.get_context_data(
            form=form,
            locked_message=(f"Too many failed sign-in attempts, try again in {wait_text(wait)}."),
        )
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response

    def form_invalid(self, form):
        codes = {e.code for e in form.non_field_errors().as_data()}
        if "invalid_login" in codes:
            username, _, _ = _subjects(self.request)
            address = ratelimit.client_address(self.request)
            record_failure(self.request)
            AUTH_FAILURES.labels(reason="login_failed").inc()
            logger.warning(
                "dashboard sign-in failed for username %r from %s",
                username,
                address,
                extra={"username": username, "source": address},
            )
        return super().form_invalid(form)

    def form_valid(self, form):
        _, user_key, _ = _subjects(self.request)
        ratelimit.failures_clear(user_key)
        return super().form_valid(form)


class Logout(auth_views.LogoutView):
    http_method_names = ["post", "options"]
