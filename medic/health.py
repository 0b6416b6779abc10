"""Health endpoints (no key needed) and the Prometheus endpoint (read scope)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from medic.auth import authenticate, require_scope
from medic.errors import MedicError, error_response


def _now() -> str:
    return timezone.now().isoformat()


def _check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"status": "unhealthy", "error": exc.__class__.__name__}
    return {"status": "healthy", "latency_ms": round((time.monotonic() - started) * 1000, 2)}


def _check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return {"status": "healthy", "kind": url.split("://", 1)[0]}
    import redis

    started = time.monotonic()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
    except Exception as exc:
        return {"status": "unhealthy", "kind": "redis", "error": exc.__class__.__name__}
    return {
        "status": "healthy",
        "kind": "redis",
        "latency_ms": round((time.monotonic() - started) * 1000, 2),
    }


def _integration(configured: bool) -> dict:
    return {"status": "configured" if configured else "not_configured"}


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    components = {
        "database": _check_database(),
        "broker": _check_broker(),
        "slack": _integration(bool(settings.SLACK_BOT_TOKEN)),
        "pagerduty": _integration(bool(settings.PAGERDUTY_ROUTING_KEY)),
    }
    healthy = all(c["status"] != "unhealthy" for c in components.values())
    return JsonResponse(
        {
            "status": "healthy" if healthy else "unhealthy",
            "timestamp": _now(),
            "version": settings.VERSION,
            "components": components,
        },
        status=200 if healthy else 503,
    )


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive", "timestamp": _now()})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    database = _check_database()
    broker = _check_broker()
    ok = database["status"] == "healthy" and broker["status"] == "healthy"
    return JsonResponse(
        {
            "status": "ready" if ok else "not_ready",
            "timestamp": _now(),
            "database": database["status"],
            "broker": broker["status"],
        },
        status=200 if ok else 503,
    )


@require_GET
def network(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=204)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    try:
        require_scope(authenticate(request), "read")
    except MedicError as exc:
        return error_response(exc)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
