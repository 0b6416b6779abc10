"""The v1 API: the unprefixed endpoints that deployed v1 clients call (docs/api-v1.md).

Plain Django views rather than DRF: the heartbeat path stays lean, and every answer, errors
included, is v1's envelope ``{"success", "message", "results"}`` byte for byte. The messages are
v1's own, since clients log them and some match on them. Writes go through
``heartbeats.services``; this module only translates between v1's vocabulary and v2's.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from alerting.models import Alert, AlertState
from heartbeats.models import Heartbeat, HeartbeatSource, Service, ServiceStatus
from heartbeats.services import heartbeat_record, service_create, service_update
from medic import ratelimit
from medic.auth import authenticate, presented_key, require_scope
from medic.errors import Conflict, InvalidInput, MedicError, NotFound
from medic.ids import parse_id
from medic.limits import MAX_ALERT_INTERVAL_MINUTES
from medic.metrics import V1_ANONYMOUS_HEARTBEATS
from medic.models import ApiKey, actor_label
from medic.text import storable

logger = logging.getLogger("medic.v1")

# v1's own wording (clients log these; some match on them).
POSTED = "Heartbeat Posted Successfully."
REGISTERED = "Heartbeat successfully registered."
ALREADY_REGISTERED = "Heartbeat is already registered."
UPDATED = "Successfully posted update"
INVALID_HEARTBEAT = (
    "You have provided invalid request data. Please ensure your request contains data in both "
    "`heartbeat_name` and `status` JSON fields."
)
INVALID_SERVICE = (
    "You have provided invalid request data. Please ensure your request contains the following "
    "required JSON fields - `heartbeat_name`, `service_name`, `alert_interval` & `environment`"
)
INVALID_UPDATE = (
    "You have provided invalid request data. Please ensure your request contains data in the "
    "correct JSON fields."
)
INVALID_ACTIVE = "Invalid 'active' parameter"
NOT_JSON = "The request body is not valid JSON."
METHOD_NOT_ALLOWED = "Method not allowed."

MAX_COUNT = 250
ALERTS_DEFAULT_COUNT = 100
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


class V1Error(MedicError):
    """An error in v1's words, rendered as v1's envelope with ``status``."""

    code = "v1"

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --- Envelope ---------------------------------------------------------------------------------


def envelope(success: bool, message: str, results: Any, *, status: int = 200) -> JsonResponse:
    # JsonResponse serialises with json.dumps' default separators, as v1 (Flask + json.dumps)
    # did: a client comparing bytes sees v1's exact body.
    return JsonResponse(
        {"success": success, "message": message, "results": results}, status=status, safe=False
    )


def _error_response(exc: MedicError) -> JsonResponse:
    status = exc.status
    message = exc.message
    if isinstance(exc, InvalidInput) and exc.fields:
        details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.fields.items())
        message = f"You have provided invalid request data: {details}"
    if status in (409, 422):  # v1 knew only 400 for a request it would not carry out
        status = 400
    response = envelope(False, message, "", status=status)
    for name, value in exc.headers.items():
        response[name] = value
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="medic"'
    return response


Handler = Callable[..., HttpResponse]


def _dispatch(request: HttpRequest, handlers: dict[str, Handler], **kwargs) -> HttpResponse:
    method = "GET" if request.method == "HEAD" else request.method
    handler = handlers.get(method or "")
    if handler is None:
        response = envelope(False, METHOD_NOT_ALLOWED, "", status=405)
        response["Allow"] = ", ".join(sorted(handlers))
        return response
    try:
        return handler(request, **kwargs)
    except MedicError as exc:
        return _error_response(exc)


# --- Authentication ---------------------------------------------------------------------------


def _authorize(request: HttpRequest, scope: str) -> ApiKey:
    key = authenticate(request)
    require_scope(key, scope)
    return key


class SourceLogThrottle:
    """At most one log line per source per ``interval`` seconds, in a bounded, thread-safe map.

    Anonymous heartbeats arrive every few seconds from each client: logging each one would drown
    the log, logging none would hide who still needs a key. Beyond ``max_sources`` the source
    logged longest ago is forgotten, so traffic from many addresses cannot grow the process.
    """

    def __init__(self, *, interval: float = 60.0, max_sources: int = 10_000) -> None:
        self.interval = interval
        self.max_sources = max_sources
        self.clock: Callable[[], float] = time.monotonic
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, list] = OrderedDict()  # source -> [logged_at, suppressed]

    def hit(self, source: str) -> int | None:
        """None when this hit must not be logged; else how many hits were held back before it."""
        now = self.clock()
        with self._lock:
            entry = self._seen.get(source)
            if entry is not None and now - entry[0] < self.interval:
                entry[1] += 1
                return None
            suppressed = entry[1] if entry is not None else 0
            self._seen[source] = [now, 0]
            self._seen.move_to_end(source)
            while len(self._seen) > self.max_sources:
                self._seen.popitem(last=False)
            return suppressed

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


anonymous_log_throttle = SourceLogThrottle()


def _heartbeat_key(request: HttpRequest) -> ApiKey | None:
    """The key of a heartbeat request, or None for an anonymous one the operator allows.

    Only a request without any key header is anonymous: a wrong key is refused as everywhere.
    """
    if settings.MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS and presented_key(request) is None:
        address = ratelimit.client_address(request)
        request.medic_ratelimit = ratelimit.hit("anonymous", address)
        return None
    return _authorize(request, "write")


def _note_anonymous(request: HttpRequest, heartbeat_name: str) -> None:
    V1_ANONYMOUS_HEARTBEATS.inc()
    source = ratelimit.client_address(request)
    held_back = anonymous_log_throttle.hit(source)
    if held_back is None:
        return
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:200]
    logger.warning(
        "v1 heartbeat without an API key from %s for heartbeat_name %r (user agent %r; %d more "
        "from this address since the previous line): give this client a write-scoped key",
        source,
        heartbeat_name,
        user_agent,
        held_back,
        extra={"source": source, "heartbeat_name": heartbeat_name, "user_agent": user_agent},
    )


# --- Input ------------------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _json_object(request: HttpRequest, invalid_message: str) -> dict[str, Any]:
    # v1 read the body whatever its Content-Type, so this does too.
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise V1Error("The request body is too large.", status=413) from exc
    try:
        body = json.loads(raw or b"", parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise V1Error(NOT_JSON) from exc
    if not isinstance(body, dict):
        raise V1Error(invalid_message)
    if not all(storable(k) and (not isinstance(v, str) or storable(v)) for k, v in body.items()):
        raise V1Error(invalid_message)  # NUL or a lone surrogate: nothing can store it
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str) and storable(v),
    "int": _is_int,
    "number": _is_number,
    "flag": lambda v: _is_int(v) and v in (0, 1),
}


def _validate_types(
    body: dict[str, Any], spec: dict[str, str], required: tuple[str, ...], message: str
) -> None:
    """v1's request schemas: required fields present, every known field of its JSON type."""
    for name in required:
        if name not in body:
            raise V1Error(message)
    for name, kind in spec.items():
        if name in body and not _CHECKS[kind](body[name]):
            raise V1Error(message)
    interval = body.get("alert_interval")
    if interval is not None and interval > MAX_ALERT_INTERVAL_MINUTES:
        raise InvalidInput(
            fields={"alert_interval": [f"At most {MAX_ALERT_INTERVAL_MINUTES} minutes."]}
        )


def _int_param(raw: str) -> int:
    if not _INTEGER.match(raw):
        raise V1Error(INVALID_ACTIVE)
    return int(raw)


def _max_count(raw: str | None) -> int:
    """v1: default 250, capped at 250, anything that is not an integer means 250."""
    if raw is None or not _INTEGER.match(raw):
        return MAX_COUNT
    value = int(raw)
    return MAX_COUNT if value < 0 else min(value, MAX_COUNT)


# --- Lookup and rows --------------------------------------------------------------------------


def _service_named(name: str) -> Service | None:
    """v1 looks services up by heartbeat name only (never by id), ignoring case."""
    return (
        Service.objects.annotate(_lname=Lower("heartbeat_name")).filter(_lname=name.lower()).first()
    )


def _write_ref(name: str) -> str | int:
    # The service layer reads an all-digit reference as an id first; v1 meant the name (imported
    # v1 services may have such names), so those are resolved to their id here.
    if parse_id(name) is None:
        return name
    service = _service_named(name)
    if service is None:
        raise NotFound(code="service_not_found")
    return service.pk


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _minutes(value: float) -> int | float:
    # v1 stored whole minutes: a typed client (Go, TypeScript) expects 5, not 5.0.
    return int(value) if float(value).is_integer() else value


def service_row(service: Service) -> dict[str, Any]:
    return {
        "service_id": service.pk,
        "heartbeat_name": service.heartbeat_name,
        "service_name": service.service_name,
        "active": int(service.active),
        "alert_interval": _minutes(service.alert_interval),
        "threshold": service.threshold,
        "team": service.team,
        "priority": service.priority,
        "muted": int(service.muted),
        "down": int(service.status == ServiceStatus.DOWN),
        # v1 stored NULL when no runbook was given.
        "runbook": service.runbook or None,
        "date_added": _iso(service.date_added),
        "date_modified": _iso(service.date_modified),
        # v1 HEAD's columns: NULL when unmuted; whole milliseconds; v1's team_id and schedule_id
        # were read by nothing and have no Medic 2 counterpart (teams are matched by name).
        "date_muted": _iso(service.date_muted) if service.muted else None,
        "team_id": None,
        "schedule_id": None,
        "max_duration_ms": service.max_duration_seconds * 1000
        if service.max_duration_seconds
        else None,
        "grace_period_seconds": service.grace_period_seconds,
    }


def alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.pk,
        "alert_name": alert.service.heartbeat_name,
        "service_id": alert.service_id,
        "active": int(alert.state == AlertState.OPEN),
        # v1 stored NULL when no incident was opened (muted, or PagerDuty failed).
        "external_reference_id": alert.external_reference_id or None,
        "alert_cycle": alert.notify_count,
        "created_date": _iso(alert.opened_at),
        "closed_date": _iso(alert.resolved_at),
    }


# --- /heartbeat -------------------------------------------------------------------------------


def _heartbeat_post(request: HttpRequest) -> HttpResponse:
    key = _heartbeat_key(request)
    body = _json_object(request, INVALID_HEARTBEAT)
    name, status = body.get("heartbeat_name"), body.get("status")
    service_name = body.get("service_name")
    if (
        not isinstance(name, str)
        or not name.strip()
        or not isinstance(status, str)
        or not status.strip()
        or not (service_name is None or isinstance(service_name, str))
    ):
        raise V1Error(INVALID_HEARTBEAT)
    try:
        # Every v1 heartbeat counts toward the threshold whatever its status text, as in v1.
        heartbeat_record(service_ref=_write_ref(name), status=status, source=HeartbeatSource.V1)
    except NotFound as exc:
        raise V1Error(f"{name} is not listed as a registered service.", status=404) from exc
    except Conflict as exc:
        if exc.code != "service_inactive":
            raise
        raise V1Error(
            f"{name} was located, but is marked inactive. Does this need to be re-enabled?"
        ) from exc
    if key is None:
        _note_anonymous(request, name)
    return envelope(True, POSTED, "", status=201)


def _heartbeat_list(request: HttpRequest) -> HttpResponse:
    _authorize(request, "read")
    params = request.GET
    count = _max_count(params.get("maxCount"))
    rows = Heartbeat.objects.all()
    if params.get("heartbeat_name"):
        service = _service_named(params["heartbeat_name"])
        if service is None:
            return envelope(True, "", [])
        rows = rows.filter(service=service)
    if params.get("service_name"):
        rows = rows.filter(service__service_name=params["service_name"])
    values = rows.order_by("-time", "-id").values_list(
        "id",
        "service__heartbeat_name",
        "service__service_name",
        "time",
        "status",
        "service__team",
        "service__priority",
    )[:count]
    results = [
        {
            "heartbeat_id": pk,
            "heartbeat_name": heartbeat_name,
            "service_name": service_name,
            "time": _iso(at),
            "status": status,
            "team": team,
            "priority": priority,
        }
        for pk, heartbeat_name, service_name, at, status, team, priority in values
    ]
    return envelope(True, "", results)


@csrf_exempt
def heartbeat(request: HttpRequest) -> HttpResponse:
    return _dispatch(request, {"GET": _heartbeat_list, "POST": _heartbeat_post})


# --- /service ---------------------------------------------------------------------------------

_CREATE_SPEC = {
    "heartbeat_name": "str",
    "service_name": "str",
    "environment": "str",
    "alert_interval": "int",
    "threshold": "int",
    "team": "str",
    "priority": "str",
    "runbook": "str",
}
_UPDATE_SPEC = {
    "service_name": "str",
    "active": "flag",
    "alert_interval": "number",
    "threshold": "int",
    "team": "str",
    "priority": "str",
    "muted": "flag",
    "runbook": "str",
    "down": "flag",
}


def _service_post(request: HttpRequest) -> HttpResponse:
    key = _authorize(request, "write")
    body = _json_object(request, INVALID_SERVICE)
    _validate_types(
        body, _CREATE_SPEC, ("heartbeat_name", "service_name", "alert_interval"), INVALID_SERVICE
    )
    environment = body.get("environment") or ""
    name = f"{environment}-{body['heartbeat_name']}" if environment else body["heartbeat_name"]
    if _service_named(name) is not None:
        return envelope(True, ALREADY_REGISTERED, "")
    try:
        service_create(
            actor=actor_label(key),
            heartbeat_name=name,
            service_name=body["service_name"],
            alert_interval=float(body["alert_interval"]),
            threshold=body.get("threshold", 1),
            team=body.get("team", "site-reliability"),
            # v1 stored any text; v2 keeps p1..p5, and clients wrote both "P2" and "p2".
            priority=body.get("priority", "p3").lower(),
            runbook=body.get("runbook", ""),
        )
    except Conflict as exc:
        if exc.code != "service_exists":
            raise
        return envelope(True, ALREADY_REGISTERED, "")  # registered concurrently
    return envelope(True, REGISTERED, "", status=201)


def _service_list(request: HttpRequest) -> HttpResponse:
    _authorize(request, "read")
    params = request.GET
    services = Service.objects.order_by("id")
    if params.get("service_name"):
        services = services.filter(service_name=params["service_name"])
    if params.get("active") is not None:
        active = _int_param(params["active"])
        services = services.filter(active=active == 1) if active in (0, 1) else services.none()
    return envelope(True, "", [service_row(s) for s in services])


@csrf_exempt
def service(request: HttpRequest) -> HttpResponse:
    return _dispatch(request, {"GET": _service_list, "POST": _service_post})


def _service_detail_get(request: HttpRequest, heartbeat_name: str) -> HttpResponse:
    _authorize(request, "read")
    found = _service_named(heartbeat_name)
    return envelope(True, "", [service_row(found)] if found is not None else [])


def _service_detail_post(request: HttpRequest, heartbeat_name: str) -> HttpResponse:
    key = _authorize(request, "write")
    found = _service_named(heartbeat_name)
    if found is None:
        # A v1 quirk clients rely on: an unknown name is a 200 that says it failed.
        return envelope(
            False,
            f"The heartbeat registration specified: {heartbeat_name} was not located. "
            "Does it exist?",
            "",
        )
    body = _json_object(request, INVALID_UPDATE)
    _validate_types(body, _UPDATE_SPEC, (), INVALID_UPDATE)
    changes: dict[str, Any] = {name: body[name] for name in _UPDATE_SPEC if name in body}
    for flag in ("active", "muted", "down"):
        if flag in changes:
            changes[flag] = changes[flag] == 1
    if "alert_interval" in changes:
        changes["alert_interval"] = float(changes["alert_interval"])
    if "priority" in changes:
        changes["priority"] = changes["priority"].lower()
    # A v1 mute carries no duration: service_update mutes for MEDIC_DEFAULT_MUTE_HOURS, the way
    # v1 unmuted by itself after about a day.
    service_update(service_ref=found.pk, actor=actor_label(key), **changes)
    return envelope(True, UPDATED, "")


@csrf_exempt
def service_detail(request: HttpRequest, heartbeat_name: str) -> HttpResponse:
    return _dispatch(
        request,
        {"GET": _service_detail_get, "POST": _service_detail_post},
        heartbeat_name=heartbeat_name,
    )


# --- /alerts ----------------------------------------------------------------------------------


def _alert_list(request: HttpRequest) -> HttpResponse:
    _authorize(request, "read")
    alerts = Alert.objects.select_related("service").order_by("-opened_at", "-id")
    raw = request.GET.get("active")
    if raw is None:
        alerts = alerts[:ALERTS_DEFAULT_COUNT]
    else:
        # As in v1, a filtered list is not truncated.
        active = _int_param(raw)
        if active in (0, 1):
            alerts = alerts.filter(state=AlertState.OPEN if active else AlertState.RESOLVED)
        else:
            alerts = alerts.none()
    return envelope(True, "", [alert_row(a) for a in alerts])


@csrf_exempt
def alerts(request: HttpRequest) -> HttpResponse:
    return _dispatch(request, {"GET": _alert_list})


# --- /docs/swagger.json -----------------------------------------------------------------------


def _envelope_schema(results: dict) -> dict:
    return {
        "type": "object",
        "required": ["success", "message", "results"],
        "properties": {
            "success": {"type": "boolean"},
            "message": {"type": "string"},
            "results": results,
        },
    }


_EMPTY = {"type": "string", "enum": [""]}
_ERROR_RESPONSES = {
    "401": {"description": "No API key, or an unknown one.", "schema": _envelope_schema(_EMPTY)},
    "403": {"description": "The key lacks the scope.", "schema": _envelope_schema(_EMPTY)},
}


def _ok(description: str, results: dict | None = None) -> dict:
    return {"description": description, "schema": _envelope_schema(results or _EMPTY)}


def _list_of(definition: str) -> dict:
    return {"type": "array", "items": {"$ref": f"#/definitions/{definition}"}}


def _query(name: str, kind: str, description: str) -> dict:
    return {
        "name": name,
        "in": "query",
        "type": kind,
        "required": False,
        "description": description,
    }


def _body(definition: str) -> dict:
    return {
        "name": "body",
        "in": "body",
        "required": True,
        "schema": {"$ref": f"#/definitions/{definition}"},
    }


_FLAG = {"type": "integer", "enum": [0, 1]}
_TIME = {"type": "string", "format": "date-time"}

SWAGGER: dict[str, Any] = {
    "swagger": "2.0",
    "info": {
        "title": "Medic v1 API",
        "version": "1.0",
        "description": "The v1 endpoints, served by Medic 2 for existing clients. Every call "
        "needs an API key (`Authorization: Bearer mdk_...` or `X-API-Key`): GET needs the read "
        "scope, POST the write scope. `POST /heartbeat` may be allowed without a key during a "
        "migration (MEDIC_V1_ALLOW_ANONYMOUS_HEARTBEATS). The v2 API is described at /v2/schema/.",
    },
    "basePath": "/",
    "schemes": ["http", "https"],
    "consumes": ["application/json"],
    "produces": ["application/json"],
    "securityDefinitions": {
        "bearer": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "`Bearer mdk_...`",
        },
        "apiKey": {"type": "apiKey", "name": "X-API-Key", "in": "header"},
    },
    "security": [{"bearer": []}, {"apiKey": []}],
    "paths": {
        "/heartbeat": {
            "post": {
                "summary": "Post a heartbeat (counted whatever its status text).",
                "parameters": [_body("HeartbeatIn")],
                "responses": {
                    "201": _ok("Heartbeat Posted Successfully."),
                    "400": _ok("Invalid body, or the service is inactive."),
                    "404": _ok("The heartbeat name is not registered."),
                    **_ERROR_RESPONSES,
                },
            },
            "get": {
                "summary": "Heartbeats, newest first.",
                "parameters": [
                    _query("heartbeat_name", "string", "Case-insensitive."),
                    _query("service_name", "string", "Exact."),
                    _query("maxCount", "integer", "Default 250, at most 250."),
                ],
                "responses": {"200": _ok("Heartbeats.", _list_of("Heartbeat")), **_ERROR_RESPONSES},
            },
        },
        "/service": {
            "post": {
                "summary": "Register a service.",
                "parameters": [_body("ServiceIn")],
                "responses": {
                    "201": _ok("Heartbeat successfully registered."),
                    "200": _ok("Heartbeat is already registered."),
                    "400": _ok("Invalid body."),
                    **_ERROR_RESPONSES,
                },
            },
            "get": {
                "summary": "Registered services.",
                "parameters": [
                    _query("service_name", "string", "Exact."),
                    _query("active", "integer", "0 or 1."),
                ],
                "responses": {
                    "200": _ok("Services.", _list_of("Service")),
                    "400": _ok("`active` is not an integer."),
                    **_ERROR_RESPONSES,
                },
            },
        },
        "/service/{heartbeat_name}": {
            "parameters": [
                {"name": "heartbeat_name", "in": "path", "type": "string", "required": True}
            ],
            "get": {
                "summary": "One service (case-insensitive name); empty results when unknown.",
                "responses": {"200": _ok("The service.", _list_of("Service")), **_ERROR_RESPONSES},
            },
            "post": {
                "summary": "Partial update. An unknown name answers 200 with success false.",
                "parameters": [_body("ServiceUpdate")],
                "responses": {
                    "200": _ok("Successfully posted update"),
                    "400": _ok("A field of the wrong type or value."),
                    **_ERROR_RESPONSES,
                },
            },
        },
        "/alerts": {
            "get": {
                "summary": "Alerts, newest first; the newest 100 without `active`.",
                "parameters": [_query("active", "integer", "1 open, 0 closed.")],
                "responses": {
                    "200": _ok("Alerts.", _list_of("Alert")),
                    "400": _ok("`active` is not an integer."),
                    **_ERROR_RESPONSES,
                },
            },
        },
        "/docs/swagger.json": {
            "get": {
                "summary": "This description.",
                "responses": {"200": {"description": "Swagger 2.0"}, **_ERROR_RESPONSES},
            }
        },
    },
    "definitions": {
        "HeartbeatIn": {
            "type": "object",
            "required": ["heartbeat_name", "status"],
            "properties": {
                "heartbeat_name": {"type": "string"},
                "service_name": {"type": "string"},
                "status": {"type": "string", "description": "Free text: UP, DOWN, DEGRADED..."},
            },
        },
        "Heartbeat": {
            "type": "object",
            "properties": {
                "heartbeat_id": {"type": "integer"},
                "heartbeat_name": {"type": "string"},
                "service_name": {"type": "string"},
                "time": _TIME,
                "status": {"type": "string"},
                "team": {"type": "string"},
                "priority": {"type": "string"},
            },
        },
        "ServiceIn": {
            "type": "object",
            "required": ["heartbeat_name", "service_name", "alert_interval"],
            "properties": {
                "heartbeat_name": {"type": "string"},
                "service_name": {"type": "string"},
                "environment": {
                    "type": "string",
                    "description": "Stored name becomes {environment}-{heartbeat_name}.",
                },
                "alert_interval": {"type": "integer", "description": "Minutes."},
                "threshold": {"type": "integer", "default": 1},
                "team": {"type": "string", "default": "site-reliability"},
                "priority": {"type": "string", "enum": ["p1", "p2", "p3", "p4", "p5"]},
                "runbook": {"type": "string"},
            },
        },
        "ServiceUpdate": {
            "type": "object",
            "properties": {
                "service_name": {"type": "string"},
                "active": _FLAG,
                "alert_interval": {"type": "number", "description": "Minutes."},
                "threshold": {"type": "integer"},
                "team": {"type": "string"},
                "priority": {"type": "string", "enum": ["p1", "p2", "p3", "p4", "p5"]},
                "muted": {**_FLAG, "description": "1 mutes for MEDIC_DEFAULT_MUTE_HOURS."},
                "runbook": {"type": "string"},
                "down": {**_FLAG, "description": "0 marks a down service up."},
            },
        },
        "Service": {
            "type": "object",
            "properties": {
                "service_id": {"type": "integer"},
                "heartbeat_name": {"type": "string"},
                "service_name": {"type": "string"},
                "active": _FLAG,
                "alert_interval": {"type": "number"},
                "threshold": {"type": "integer"},
                "team": {"type": "string"},
                "priority": {"type": "string"},
                "muted": _FLAG,
                "down": _FLAG,
                "runbook": {"type": "string", "x-nullable": True},
                "date_added": _TIME,
                "date_modified": _TIME,
                "date_muted": {**_TIME, "x-nullable": True},
                "team_id": {"type": "integer", "x-nullable": True},
                "schedule_id": {"type": "integer", "x-nullable": True},
                "max_duration_ms": {"type": "integer", "x-nullable": True},
                "grace_period_seconds": {"type": "integer"},
            },
        },
        "Alert": {
            "type": "object",
            "properties": {
                "alert_id": {"type": "integer"},
                "alert_name": {"type": "string", "description": "The heartbeat name."},
                "service_id": {"type": "integer"},
                "active": _FLAG,
                "external_reference_id": {"type": "string", "x-nullable": True},
                "alert_cycle": {"type": "integer"},
                "created_date": _TIME,
                "closed_date": {**_TIME, "x-nullable": True},
            },
        },
    },
}


def _swagger_get(request: HttpRequest) -> HttpResponse:
    _authorize(request, "read")
    return JsonResponse(SWAGGER)


@csrf_exempt
def swagger(request: HttpRequest) -> HttpResponse:
    return _dispatch(request, {"GET": _swagger_get})
