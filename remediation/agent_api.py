"""``/v2/agent/*``: the medic-agent protocol (agent-rs/src/client.rs), as async Django views.

Served in production by the agent gateway (remediation.gateway, uvicorn): a long poll waits on an
asyncio event (remediation.wakeup) and holds no thread; database work runs on the event loop's
shared thread pool. The same URLs also answer through the WSGI app (gunicorn, the test client),
where a poll holds its request thread as any WSGI request does.

Only keys of scope ``agent`` bound to an enabled agent are accepted, for their own agent's jobs;
errors use the v2 envelope. The DRF classes at the end are never routed: they describe these
endpoints in the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.views import APIView

from medic.auth import authenticate
from medic.errors import (
    Forbidden,
    InvalidInput,
    MalformedRequest,
    MedicError,
    error_response,
    to_medic_error,
)
from medic.ids import parse_id
from medic.models import ApiKeyScope
from medic.refusals import refused
from remediation import agents, jobs, selectors, wakeup
from remediation.metrics import LONG_POLLS
from remediation.models import SkipReason

MAX_BODY_BYTES = 8 * 1024 * 1024  # two 1 MiB output tails, JSON-escaped at worst
_background: set[asyncio.Future] = set()  # tasks nobody awaits, kept from garbage collection


# --- Input ------------------------------------------------------------------------------------


class ScriptRecordIn(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,128}$")
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$")


class RegisterIn(serializers.Serializer):
    hostname = serializers.CharField(max_length=255)
    os = serializers.CharField(max_length=32)
    arch = serializers.CharField(max_length=32)
    agent_version = serializers.CharField(max_length=32)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=50, required=False, default=list
    )
    scripts = serializers.ListField(
        child=ScriptRecordIn(), max_length=1000, required=False, default=list
    )


class ResultIn(serializers.Serializer):
    exit_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField(min_value=0)
    stdout_tail = serializers.CharField(allow_blank=True, trim_whitespace=False, default="")
    stderr_tail = serializers.CharField(allow_blank=True, trim_whitespace=False, default="")
    timed_out = serializers.BooleanField(default=False)
    signal = serializers.IntegerField(allow_null=True, required=False, default=None)


class SkippedIn(serializers.Serializer):
    reason = serializers.ChoiceField(choices=SkipReason.choices)
    detail = serializers.CharField(allow_blank=True, trim_whitespace=False, default="")


RegisteredOut = inline_serializer(
    "AgentRegistered",
    {"agent_id": serializers.CharField(), "poll_wait_seconds": serializers.IntegerField()},
)
JobOut = inline_serializer(
    "AgentJob",
    {
        "id": serializers.CharField(),
        "script": inline_serializer(
            "AgentJobScript",
            {
                "name": serializers.CharField(),
                "version": serializers.IntegerField(),
                "sha256": serializers.CharField(),
            },
        ),
        "args": serializers.DictField(),
        "timeout_seconds": serializers.IntegerField(),
        "limits": inline_serializer(
            "AgentJobLimits",
            {
                "cpu_seconds": serializers.IntegerField(),
                "memory_mb": serializers.IntegerField(),
                "open_files": serializers.IntegerField(),
                "processes": serializers.IntegerField(),
                "output_bytes": serializers.IntegerField(),
            },
        ),
    },
)
ReportOut = inline_serializer(
    "AgentReportAccepted", {"id": serializers.CharField(), "state": serializers.CharField()}
)


# --- Plumbing ---------------------------------------------------------------------------------


def _pooled(fn, *args, **kwargs):
    # Executor threads never see Django's request signals: check their connection here.
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


def _runner(request):
    """How this request runs database work.

    Under ASGI: on the loop's shared thread pool (not thread-sensitive), so a waiting poll holds
    no thread. Under WSGI the request already has a thread: run there, on its connection and
    inside its transaction (what the test client relies on).
    """
    if isinstance(request, ASGIRequest):

        async def run(fn, *args, **kwargs):
            return await sync_to_async(_pooled, thread_sensitive=False)(fn, *args, **kwargs)

    else:

        async def run(fn, *args, **kwargs):
            return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)

    return run


def agent_endpoint(*methods: str):
    """Method check, error envelope and rate-limit headers for an async agent view."""

    def decorate(view):
        @functools.wraps(view)
        async def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = error_response(
                    MedicError(
                        f"Method {request.method} not allowed.", code="method_not_allowed"
                    ).with_status(405)
                )
                response["Allow"] = ", ".join(methods)
                return response
            try:
                request.get_host()
                response = await view(request, *args, **kwargs)
            except DisallowedHost:
                response = error_response(MedicError("Invalid Host header.", code="bad_host"))
            except Exception as exc:
                error = to_medic_error(exc)
                if error is None:
                    raise
                response = error_response(error)
                if error.status == 401:
                    response["WWW-Authenticate"] = 'Bearer realm="medic"'
            decision = getattr(request, "medic_ratelimit", None)
            if decision is not None and decision.limit:
                for name, value in decision.headers().items():
                    response.headers.setdefault(name, value)
            # The gateway has no CommonMiddleware to add it; without it uvicorn would chunk.
            response.headers.setdefault("Content-Length", str(len(response.content)))
            return response

        return csrf_exempt(wrapper)

    return decorate


async def _agent(request, run):
    key = await run(authenticate, request)
    if ApiKeyScope.AGENT.value not in key.scopes:
        await run(refused, "insufficient_scope")
        raise Forbidden(
            "Only agent keys (scope 'agent') may use /v2/agent/*.", code="insufficient_scope"
        )
    agent = await run(selectors.agent_for_key, key.pk)
    if agent is None:
        raise Forbidden("This key is not bound to an agent.", code="agent_not_bound")
    if not agent.enabled:
        raise Forbidden(f"Agent '{agent.name}' is disabled.", code="agent_disabled")
    return agent


def _body(request, serializer_class):
    length = request.META.get("CONTENT_LENGTH") or "0"
    if parse_id(length) is None or int(length) > MAX_BODY_BYTES:
        raise MedicError("The request body is too large.", code="too_large").with_status(413)
    raw = request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise MedicError("The request body is too large.", code="too_large").with_status(413)
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest() from exc
    if not isinstance(data, dict):
        raise MalformedRequest("The request body must be a JSON object.")
    # Output tails are whatever a script printed, NUL included; DRF refuses NUL in strings and
    # PostgreSQL cannot store it, so it is replaced rather than the report refused.
    data = {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in data.items()}
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _wait_seconds(request) -> int:
    raw = request.GET.get("wait")
    if raw is None or raw == "":
        return settings.MEDIC_AGENT_POLL_WAIT_SECONDS
    if parse_id(raw) is None:
        raise InvalidInput(fields={"wait": ["A whole number of seconds (0 or more)."]})
    # Clamped rather than refused: an agent configured for longer waits still works.
    return min(int(raw), settings.MEDIC_AGENT_POLL_MAX_WAIT_SECONDS)


# 1 TiB: more than any agent could hold, small enough for a bigint and a gauge.
MAX_RSS_BYTES = 1 << 40
_VERSION = re.compile(r"^[0-9A-Za-z.+_-]{1,32}$")


def _poll_report(request) -> tuple[int | None, str | None]:
    """The resident memory (``rss_bytes``) and version (``version``) a poll reports. Both are
    optional (older agents send neither; agents without /proc send no memory); a value that is
    there must be well formed."""
    errors = {}
    rss = request.GET.get("rss_bytes")
    if rss is not None:
        rss = parse_id(rss)
        if rss is None or rss > MAX_RSS_BYTES:
            errors["rss_bytes"] = [f"A whole number of bytes from 0 to {MAX_RSS_BYTES}."]
    version = request.GET.get("version")
    if version is not None and not _VERSION.match(version):
        errors["version"] = ["1 to 32 letters, digits and . + _ -."]
    if errors:
        raise InvalidInput(fields=errors)
    return rss, version


async def _claim(run, agent_id: int) -> dict | None:
    task = asyncio.ensure_future(run(jobs.job_claim_next, agent_id=agent_id))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # The poll went away (client disconnected, server stopping) while a job was being
        # claimed for it: put that job back, it never left the server.
        def put_back(done: asyncio.Future) -> None:
            if not done.cancelled() and done.exception() is None and done.result():
                release = asyncio.ensure_future(run(jobs.job_release, job_id=done.result()["id"]))
                _background.add(release)
                release.add_done_callback(_background.discard)

        task.add_done_callback(put_back)
        raise


# --- Views ------------------------------------------------------------------------------------


@agent_endpoint("POST")
async def agent_register(request):
    run = _runner(request)
    agent = await _agent(request, run)
    data = _body(request, RegisterIn)
    agent = await run(
        agents.agent_register,
        agent_id=agent.pk,
        hostname=data["hostname"],
        os=data["os"],
        arch=data["arch"],
        agent_version=data["agent_version"],
        labels=data["labels"],
        scripts=data["scripts"],
    )
    return JsonResponse(
        {"agent_id": agent.name, "poll_wait_seconds": settings.MEDIC_AGENT_POLL_WAIT_SECONDS}
    )


@agent_endpoint("GET")
async def agent_jobs(request):
    """Long poll: a job as soon as one is queued for this agent, else 204 after ``wait``."""
    run = _runner(request)
    agent = await _agent(request, run)
    wait = _wait_seconds(request)
    rss, version = _poll_report(request)
    await run(agents.agent_seen, agent_id=agent.pk, memory_rss_bytes=rss, agent_version=version)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    if not isinstance(request, ASGIRequest):
        # WSGI (gunicorn without the gateway, the test client): the request owns a thread and
        # a short-lived event loop; check the database once a second instead of subscribing.
        while True:
            job = await _claim(run, agent.pk)
            if job is not None or loop.time() >= deadline:
                return JsonResponse(job) if job else HttpResponse(status=204)
            await asyncio.sleep(min(1.0, max(0.0, deadline - loop.time())))
    with wakeup.hub().waiter(agent.pk) as event:
        while True:
            event.clear()
            job = await _claim(run, agent.pk)
            if job is not None:
                return JsonResponse(job)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return HttpResponse(status=204)
            LONG_POLLS.inc()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, wakeup.recheck_delay()))
            finally:
                LONG_POLLS.dec()


@agent_endpoint("POST")
async def agent_job_result(request, job_id: str):
    run = _runner(request)
    agent = await _agent(request, run)
    data = _body(request, ResultIn)
    job = await run(
        jobs.job_report_result,
        agent_id=agent.pk,
        job_id=job_id,
        result=jobs.Result(**data),
    )
    return JsonResponse({"id": str(job.pk), "state": job.state})


@agent_endpoint("POST")
async def agent_job_skipped(request, job_id: str):
    run = _runner(request)
    agent = await _agent(request, run)
    data = _body(request, SkippedIn)
    job = await run(
        jobs.job_report_skipped,
        agent_id=agent.pk,
        job_id=job_id,
        reason=data["reason"],
        detail=data["detail"],
    )
    return JsonResponse({"id": str(job.pk), "state": job.state})


# --- OpenAPI description (never routed) -------------------------------------------------------

_JOB_ID = OpenApiParameter("job_id", str, OpenApiParameter.PATH, description="The job's id.")


class _AgentDoc(APIView):
    def _served_elsewhere(self):
        raise NotImplementedError("served by remediation.agent_api's async views")


class RegisterDoc(_AgentDoc):
    @extend_schema(
        operation_id="agent_register",
        tags=["agent"],
        request=RegisterIn,
        responses={200: RegisteredOut},
        description="An agent (re)starting: its host, version, labels and the scripts its host "
        "registered. Agent keys only (scope `agent`).",
    )
    def post(self, request):
        self._served_elsewhere()


class JobsDoc(_AgentDoc):
    @extend_schema(
        operation_id="agent_jobs_poll",
        tags=["agent"],
        parameters=[
            OpenApiParameter(
                "wait",
                int,
                description="Seconds to hold the request open when no job is queued "
                "(clamped to MEDIC_AGENT_POLL_MAX_WAIT_SECONDS).",
            ),
            OpenApiParameter(
                "rss_bytes",
                int,
                description="The agent's resident memory in bytes (VmRSS), optional; stored "
                "at most once per MEDIC_AGENT_HEARTBEAT_SECONDS.",
            ),
            OpenApiParameter(
                "version",
                str,
                description="The agent's version (1 to 32 of A-Z a-z 0-9 . + _ -), optional.",
            ),
        ],
        responses={200: JobOut, 204: OpenApiResponse(description="No job within the wait.")},
        description="Long poll for the next job of the calling agent.",
    )
    def get(self, request):
        self._served_elsewhere()


class ResultDoc(_AgentDoc):
    @extend_schema(
        operation_id="agent_job_result",
        tags=["agent"],
        parameters=[_JOB_ID],
        request=ResultIn,
        responses={200: ReportOut},
        description="The outcome of a job the agent ran. Repeats are accepted and change nothing.",
    )
    def post(self, request, job_id: str):
        self._served_elsewhere()


class SkippedDoc(_AgentDoc):
    @extend_schema(
        operation_id="agent_job_skipped",
        tags=["agent"],
        parameters=[_JOB_ID],
        request=SkippedIn,
        responses={200: ReportOut},
        description="The agent refused a job (not registered on the host, hash mismatch, "
        "invalid arguments, shutting down). Every refusal but shutting_down is alerted.",
    )
    def post(self, request, job_id: str):
        self._served_elsewhere()


def _documented_by(view, doc: type[APIView]):
    # drf-spectacular lists URL patterns whose callback carries a DRF view class (as
    # ``as_view()`` sets it); the async view is what actually serves the URL.
    view.cls = doc
    view.initkwargs = {}
    return view


register_view = _documented_by(agent_register, RegisterDoc)
jobs_view = _documented_by(agent_jobs, JobsDoc)
result_view = _documented_by(agent_job_result, ResultDoc)
skipped_view = _documented_by(agent_job_skipped, SkippedDoc)
