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

The web front (medic/front.py, the production server) uses the same handler for the same
requests, many at a time: ``eligible`` and ``takes`` decide, on the event loop, which requests
are the handler's; ``answer_together`` answers a batch of them on one thread, storing their beats
with one statement (see its docstring).

``bench/ingest/contract.py`` (run in CI by tests/test_ingest_contract.py) sends the same requests
through this handler, alone and in batches, and through Django's, and requires the same status
line, headers and body. ``MEDIC_HEARTBEAT_ROUTE=0`` leaves it unmounted: every request goes
through Django.
"""

from __future__ import annotations

import functools
import io
import re

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.http import HttpResponse
from django.urls import Resolver404, resolve, set_script_prefix, set_urlconf
from django.utils import timezone
from django.utils.log import log_response
from django.utils.module_loading import import_string

from heartbeats import groupcommit
from heartbeats.api import HeartbeatCreate
from heartbeats.models import HeartbeatSource
from medic.errors import MedicError

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
        """The view at the end of the middleware chain: what the request was given to answer
        with (``request.medic_answer``), or the lean path in full."""
        given = getattr(request, "medic_answer", None)
        if given is not None:
            return given(request)
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
        if not self.eligible(environ):
            return self.fallback(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)  # lean_request: at most 16 KiB
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if not self.takes(environ, body):
            return self.fallback(environ, start_response)
        return super().__call__(environ, start_response)

    @staticmethod
    def eligible(environ: dict) -> bool:
        """From the headers alone: a request the lean path may answer, once its body is read."""
        return (
            PATH.fullmatch(environ.get("PATH_INFO", "")) is not None
            and not environ.get("SCRIPT_NAME")
            and HeartbeatCreate.lean_request(environ)
        )

    @staticmethod
    def takes(environ: dict, body: bytes) -> bool:
        """For an ``eligible`` request and its whole body: whether this handler answers it (the
        body is what the lean path accepts). Keeps the service and the beat's fields in the
        environ."""
        fields = HeartbeatCreate.lean_fields(environ, body)
        if fields is None:
            return False
        service = PATH.fullmatch(environ["PATH_INFO"]).group(1)
        environ["medic.heartbeat"] = (service, fields)
        return True

    def answer_together(self, environs: list[dict]) -> list[Answer]:
        """Answer many heartbeat requests (each ``takes`` and not yet answered) at once, as
        answering each alone would, but storing their beats with one statement.

        Each request goes through the middleware chain twice: first with a view that only notes
        that the chain let it through (a request the middleware answers itself, a host not
        allowed for example, gets that answer and nothing else happens), then, once the beats
        are stored, with a view that gives the request its outcome, so the response passes
        through the middleware as any other. In between, in order: each let-through request's
        key is authenticated and checked for its scope, the rate limits of all of them charged
        with one round trip (``HeartbeatCreate.lean_authorize_many``); the authorized beats are
        stored together (``groupcommit.store_together``: one per service; the others, and the
        beats it leaves to the general path, afterwards, in order, through
        ``heartbeat_record``). Django's request signals are sent once for the whole batch (the
        database connection is checked before, released after).
        """
        set_script_prefix(get_script_name(environs[0]))
        signals.request_started.send(sender=self.__class__, environ=environs[0])
        try:
            set_urlconf(settings.ROOT_URLCONF)
            requests = [self.request_class(environ) for environ in environs]
            answers: list[Answer | None] = [None] * len(requests)
            through: list[int] = []
            for n, request in enumerate(requests):
                request.medic_answer = _let_through
                response = self.chain(request)
                if getattr(request, "medic_through", False):
                    through.append(n)
                else:
                    answers[n] = self._finish(request, response)
            outcomes = self._store_together([requests[n] for n in through])
            for n, outcome in zip(through, outcomes, strict=True):
                request = requests[n]
                request.medic_answer = outcome
                answers[n] = self._finish(request, self.chain(request))
            return answers
        finally:
            signals.request_finished.send(sender=self.__class__)

    @staticmethod
    def _store_together(requests: list) -> list:
        """For each request (let through by the middleware), the view that answers it."""
        outcomes: list = [None] * len(requests)
        todo: list[int] = []
        for n, refusal in enumerate(HeartbeatCreate.lean_authorize_many(requests)):
            if refusal is not None:
                outcomes[n] = functools.partial(_refused, refusal)
            else:
                todo.append(n)
        if todo and groupcommit.enabled():
            first: dict[str, int] = {}
            for n in todo:
                first.setdefault(requests[n].environ["medic.heartbeat"][0].lower(), n)
            together = list(first.values())
            at = timezone.now()
            beats = []
            for n in together:
                service, (beat_status, message) = requests[n].environ["medic.heartbeat"]
                beats.append(
                    groupcommit.Beat(service, beat_status, message, HeartbeatSource.V2, at)
                )
            try:
                results = groupcommit.store_together(beats)
            except Exception as exc:  # every beat of the batch fails as a single beat would
                for n in together:
                    outcomes[n] = functools.partial(_raise, exc)
            else:
                for n, result, beat in zip(together, results, beats, strict=True):
                    if result is not None:
                        body = HeartbeatCreate.lean_stored(result, beat.status, at)
                        outcomes[n] = functools.partial(_accepted, body)
        for n in todo:
            if outcomes[n] is not None:
                continue
            service, fields = requests[n].environ["medic.heartbeat"]
            try:
                body = HeartbeatCreate.lean_record(service, fields)
            except MedicError as exc:
                outcomes[n] = functools.partial(_refused, exc)
            except Exception as exc:  # answered as the view raising it would be
                outcomes[n] = functools.partial(_raise, exc)
            else:
                outcomes[n] = functools.partial(_accepted, body)
        return outcomes

    def _finish(self, request, response) -> Answer:
        """As ``get_response`` and ``WSGIHandler.__call__`` end a request: 4xx/5xx logged, the
        status, headers (cookies included) and body."""
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        headers = [
            *response.items(),
            *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
        ]
        return response.status_code, headers, response.content


Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body


def _let_through(request):
    request.medic_through = True
    return HttpResponse(status=204)  # never sent: the request is answered after its beat


def _accepted(body: dict, request):
    return HeartbeatCreate.lean_accepted(body)


def _refused(exc: MedicError, request):
    return HeartbeatCreate.lean_refusal(exc)


def _raise(exc: Exception, request):
    raise exc


def handler(django_application) -> IngestHandler | None:
    """The ingest handler in front of ``django_application``; None (Django alone) when
    ``MEDIC_HEARTBEAT_ROUTE=0`` or when the heartbeat view does not answer lean."""
    if not settings.MEDIC_HEARTBEAT_ROUTE or not IngestHandler.available():
        return None
    return IngestHandler(fallback=django_application)


def mount(django_application, ingest: IngestHandler | None):
    """The WSGI application: ``POST /v2/heartbeat/...`` to the ingest handler, the rest to
    Django (everything to Django when there is no ingest handler)."""
    if ingest is None:
        return django_application

    def application(environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").startswith(
            PREFIX
        ):
            return ingest(environ, start_response)
        return django_application(environ, start_response)

    return application
