"""The ingest handler: the WSGI handler for ``POST /v2/heartbeat/{service}``.

Heartbeats are most of Medic's traffic and each one is small, so the fixed cost of a Django
request (resolving the URL, a dozen middleware layers) is a large share of the CPU a heartbeat
costs in the web process (docs/performance.md). The WSGI entry point (medic/wsgi.py) mounts this
handler in front of Django for that path prefix. It is Django's own ``WSGIHandler`` with two
differences:

- its middleware is the short list below, ``INGEST_MIDDLEWARE``, built with Django's own
  exception handling around each layer: security headers, content security policy, rate-limit
  headers, the query-string check, host validation and ``Content-Length``, ``X-Frame-Options``.
  The project's other middleware does nothing for such a request and is listed, with why, in
  ``NOT_FOR_INGEST`` (bench/ingest/contract.py fails when a middleware is in neither list);
- the view is fixed: the lean heartbeat path of ``HeartbeatCreate`` (heartbeats/api.py), the same
  code the URL ``/v2/heartbeat/{service}`` runs inside Django.

It answers only what that lean path answers itself: a POST under the prefix with a service name
of ``[A-Za-z0-9._~-]``, an API key, a JSON body of plain strings of at most 16 KiB (or none),
JSON or any ``Accept``, no script prefix. Everything else (the DRF view's cases, other paths
under the prefix such as ``/start`` and ``/complete``) goes to the Django application it was
given, with the body it may have read put back. Signals (``request_started``,
``request_finished``), database connection handling and the logging of 4xx/5xx answers are
Django's own (``WSGIHandler.__call__``, ``HttpResponse.close``).

``bench/ingest/contract.py`` (run in CI by tests/test_ingest_contract.py) sends the same requests
through this handler and through Django's and requires the same status line, headers and body.
``MEDIC_HEARTBEAT_ROUTE=0`` leaves it unmounted: every request goes through Django.
"""

from __future__ import annotations

import io
import re

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.urls import Resolver404, resolve, set_urlconf
from django.utils.log import log_response
from django.utils.module_loading import import_string

from heartbeats.api import HeartbeatCreate

PREFIX = "/v2/heartbeat/"
PATH = re.compile(r"/v2/heartbeat/([A-Za-z0-9._~-]{1,255})")

# In settings.MIDDLEWARE order.
INGEST_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "medic.csp.ContentSecurityPolicyMiddleware",
    "medic.auth.RateLimitHeadersMiddleware",
    "medic.text.UnstorableQueryMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
NOT_FOR_INGEST = {
    "medic.probes.ProbeMiddleware": "answers /health/* and /metrics only",
    "whitenoise.middleware.WhiteNoiseMiddleware": "static files only",
    "django.contrib.sessions.middleware.SessionMiddleware": "the session is never read",
    "django.middleware.csrf.CsrfViewMiddleware": "the heartbeat view is csrf_exempt",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "request.user is never read",
    "django.contrib.messages.middleware.MessageMiddleware": "no messages",
}


class IngestHandler(WSGIHandler):
    """Django's WSGI handler with the ingest middleware and the lean heartbeat view; requests it
    does not answer go to ``fallback`` (the Django application)."""

    def __init__(self, fallback) -> None:
        self.fallback = fallback
        super().__init__()  # calls load_middleware

    @staticmethod
    def available() -> bool:
        """Whether the URL ``/v2/heartbeat/{service}`` is the heartbeat view and that view
        answers lean (its policies are the ones the lean path hard-codes)."""
        try:
            match = resolve(PREFIX + "probe")
        except Resolver404:
            return False
        return (
            getattr(match.func, "view_class", None) is HeartbeatCreate
            and match.kwargs == {"service": "probe"}
            and HeartbeatCreate.lean()
        )

    def load_middleware(self, is_async: bool = False) -> None:
        handler = convert_exception_to_response(self.answer)
        for path in reversed(INGEST_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self.chain = handler

    @staticmethod
    def answer(request):
        service, fields = request.environ["medic.heartbeat"]
        return HeartbeatCreate.lean_answer(request, service, fields)

    def get_response(self, request):
        # As BaseHandler.get_response. No file of the request needs closing: the body was read
        # into bytes before the request was built.
        set_urlconf(settings.ROOT_URLCONF)
        response = self.chain(request)
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        return response

    def __call__(self, environ, start_response):
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("SCRIPT_NAME") or not HeartbeatCreate.lean_request(environ):
            return self.fallback(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)  # lean_request: at most 16 KiB
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        fields = HeartbeatCreate.lean_fields(environ, body)
        if fields is None:
            return self.fallback(environ, start_response)
        environ["medic.heartbeat"] = (match.group(1), fields)
        return super().__call__(environ, start_response)


def mount(django_application):
    """The WSGI application: ``POST /v2/heartbeat/...`` to the ingest handler, the rest to
    Django. Django alone when ``MEDIC_HEARTBEAT_ROUTE=0`` or when the heartbeat view does not
    answer lean."""
    if not settings.MEDIC_HEARTBEAT_ROUTE or not IngestHandler.available():
        return django_application
    ingest = IngestHandler(fallback=django_application)

    def application(environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").startswith(
            PREFIX
        ):
            return ingest(environ, start_response)
        return django_application(environ, start_response)

    return application
