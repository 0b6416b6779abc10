"""The heartbeat route: ``POST /v2/heartbeat/{service}`` answered without Django's URL
resolution and without the middleware such a request never uses.

Heartbeats are most of Medic's traffic and each one is small, so the fixed cost of a Django
request (resolving the URL, nine middleware layers, building and unwinding their wrappers) is a
third of the CPU a heartbeat costs in the web process (docs/performance.md). This WSGI wrapper
answers the requests the lean heartbeat view handles itself (an API key presented, a body of
plain strings, JSON or any ``Accept``) by calling that view's own code through the middleware
that matters for it, built from ``settings.MIDDLEWARE`` with Django's own classes and exception
handling: security headers, rate-limit headers, host validation and ``Content-Length``,
``X-Frame-Options``. It leaves out only the middleware that does nothing for such a request
(static files; sessions, CSRF, users and messages, none of which the lean view reads; the view
is CSRF-exempt). It sends ``request_started`` and ``request_finished`` as Django does, so
database connections are checked and recycled the same way, and logs 4xx/5xx answers as
Django does.

Everything else (other paths and methods, names outside ``[A-Za-z0-9._~-]``, no key, bodies
the lean view declines, a script prefix) goes to Django unchanged, the body it may have read
put back first. ``bench/ingest/contract.py`` (run in CI by ``tests/test_ingest_contract.py``)
sends the same requests both ways and requires identical answers. The route switches itself
off (everything goes to Django) if the URL no longer resolves to the lean view, if a kept
middleware has view, exception or template hooks (they need Django's resolver), or when
``MEDIC_HEARTBEAT_ROUTE=0``.
"""

from __future__ import annotations

import io
import logging
import re

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name
from django.urls import Resolver404, resolve, set_script_prefix
from django.utils.log import log_response
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

PATH = re.compile(r"/v2/heartbeat/([A-Za-z0-9._~-]{1,255})")

# Middleware that does nothing for a request the lean heartbeat view answers.
NOT_ON_THIS_ROUTE = frozenset(
    {
        "whitenoise.middleware.WhiteNoiseMiddleware",  # static files only
        "django.contrib.sessions.middleware.SessionMiddleware",  # the session is never read
        "django.middleware.csrf.CsrfViewMiddleware",  # the view is csrf_exempt
        "django.contrib.auth.middleware.AuthenticationMiddleware",  # request.user never read
        "django.contrib.messages.middleware.MessageMiddleware",  # no messages
    }
)


class HeartbeatRoute:
    def __init__(self, django_app: WSGIHandler) -> None:
        self.django = django_app
        self.view = self._lean_view() if settings.MEDIC_HEARTBEAT_ROUTE else None
        self.chain = self._chain() if self.view is not None else None

    @staticmethod
    def _lean_view():
        try:
            match = resolve("/v2/heartbeat/probe")
        except Resolver404:
            return None
        if match.kwargs != {"service": "probe"} or not hasattr(match.func, "lean_answer"):
            logger.warning("heartbeat route off: /v2/heartbeat/{service} is not the lean view")
            return None
        return match.func

    def _chain(self):
        view = self.view

        def endpoint(request):
            return view.lean_answer(request, request.medic_service, request.medic_fields)

        handler = convert_exception_to_response(endpoint)
        for path in reversed(settings.MIDDLEWARE):
            if path in NOT_ON_THIS_ROUTE:
                continue
            middleware = import_string(path)(handler)
            hooks = ("process_view", "process_exception", "process_template_response")
            if any(hasattr(middleware, hook) for hook in hooks):
                logger.warning("heartbeat route off: middleware %s needs Django's resolver", path)
                return None
            handler = convert_exception_to_response(middleware)
        return handler

    def __call__(self, environ, start_response):
        if (
            self.chain is None
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("SCRIPT_NAME")
            or (match := PATH.fullmatch(environ.get("PATH_INFO", ""))) is None
        ):
            return self.django(environ, start_response)
        request = WSGIRequest(environ)
        fields = self.view.lean_fields(request)
        if fields is None:
            if hasattr(request, "_body"):  # read while deciding: Django reads it again
                environ["wsgi.input"] = io.BytesIO(request._body)
            return self.django(environ, start_response)

        # From here on, as WSGIHandler.__call__ and BaseHandler.get_response do.
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=self.django.__class__, environ=environ)
        request.medic_service = match.group(1)
        request.medic_fields = fields
        response = self.chain(request)
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        response._handler_class = self.django.__class__
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
        ]
        start_response(status, headers)
        return response  # its close() sends request_finished
