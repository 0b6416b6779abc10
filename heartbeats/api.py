"""v2 API for services and heartbeats. Thin: serializers validate, services write."""

from __future__ import annotations

import functools
import json

from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from heartbeats import groupcommit
from heartbeats import services as svc
from heartbeats.models import Heartbeat, HeartbeatSource, Priority, Service, ServiceStatus
from medic.auth import (
    ApiKeyAuthentication,
    ScopePermission,
    authenticate,
    authenticate_many,
    presented_key_in,
    require_scope,
    scope_for,
)
from medic.durations import parse_duration
from medic.errors import InvalidParameter, MedicError, one_of
from medic.limits import MESSAGE_MAX_LENGTH, STATUS_MAX_LENGTH
from medic.models import actor_label
from medic.pagination import CursorPage, NumberedPage
from medic.text import storable


class ServiceSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    down = serializers.BooleanField(read_only=True)

    class Meta:
        model = Service
        fields = [
            "id",
            "heartbeat_name",
            "service_name",
            "active",
            "alert_interval",
            "threshold",
            "grace_period_seconds",
            "schedule_kind",
            "cron_expression",
            "schedule_timezone",
            "max_duration_seconds",
            "failure_threshold",
            "slow_run_factor",
            "consecutive_failures",
            "team",
            "priority",
            "runbook",
            "status",
            "down",
            "muted",
            "mute_until",
            "mute_reason",
            "muted_by",
            "last_heartbeat_at",
            "last_status",
            "next_deadline_at",
            "date_added",
            "date_modified",
        ]
        read_only_fields = [
            "id",
            "consecutive_failures",
            "status",
            "down",
            "muted",
            "mute_until",
            "mute_reason",
            "muted_by",
            "last_heartbeat_at",
            "last_status",
            "next_deadline_at",
            "date_added",
            "date_modified",
        ]
        extra_kwargs = {
            "alert_interval": {
                "min_value": 0.1,
                "max_value": svc.MAX_ALERT_INTERVAL_MINUTES,
                "required": False,
                "help_text": "Minutes: the interval (interval kind), the window (at_least), or "
                "how often an open alert repeats (cron; default: the cron period).",
            },
            "max_duration_seconds": {"min_value": 1, "max_value": svc.MAX_RUN_SECONDS},
            "failure_threshold": {"min_value": 1, "max_value": svc.MAX_FAILURE_THRESHOLD},
            "threshold": {"min_value": 1, "max_value": svc.MAX_THRESHOLD},
            "grace_period_seconds": {"min_value": 0, "max_value": svc.MAX_GRACE_SECONDS},
            "slow_run_factor": {"min_value": 1, "max_value": svc.MAX_SLOW_RUN_FACTOR},
            "service_name": {"required": False, "allow_blank": True},
        }
        # Uniqueness is case-insensitive and enforced by the service layer (409).
        validators: list = []

    def get_fields(self):
        fields = super().get_fields()
        fields["heartbeat_name"].validators = []
        return fields

    def validate(self, data):
        kind = data.get("schedule_kind") or getattr(self.instance, "schedule_kind", "interval")
        if self.instance is None and kind != "cron" and not data.get("alert_interval"):
            raise serializers.ValidationError(
                {"alert_interval": ["Required for interval and at_least schedules."]}
            )
        return data


class ServiceUpdateSerializer(ServiceSerializer):
    class Meta(ServiceSerializer.Meta):
        read_only_fields = [*ServiceSerializer.Meta.read_only_fields, "heartbeat_name"]


class HeartbeatSerializer(serializers.ModelSerializer):
    service = serializers.IntegerField(source="service_id", read_only=True)
    heartbeat_name = serializers.CharField(source="service.heartbeat_name", read_only=True)

    class Meta:
        model = Heartbeat
        fields = ["id", "service", "heartbeat_name", "time", "status", "message", "source"]


class HeartbeatIn(serializers.Serializer):
    status = serializers.CharField(
        required=False, default="UP", max_length=STATUS_MAX_LENGTH, allow_blank=False
    )
    message = serializers.CharField(
        required=False, default="", max_length=MESSAGE_MAX_LENGTH, allow_blank=True
    )


class MuteIn(serializers.Serializer):
    reason = serializers.CharField(required=False, default="", max_length=500, allow_blank=True)
    duration = serializers.JSONField(
        required=False,
        help_text="Seconds, or a string like 30m, 2h, 1d, 1h30m. Default 24h.",
    )

    def validate_duration(self, value):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


def _actor(request) -> str:
    return actor_label(request.auth)


def _parse_time(request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = parse_datetime(raw.replace(" ", "+"))
    if value is None or value.tzinfo is None:
        raise InvalidParameter(
            fields={name: ["Use an ISO-8601 time with an offset, e.g. 2026-11-27T08:00:00Z."]}
        )
    return value


class ServiceListCreate(APIView):
    @extend_schema(
        operation_id="services_list",
        parameters=[
            OpenApiParameter("status", str, enum=ServiceStatus.values),
            OpenApiParameter("team", str),
            OpenApiParameter("priority", str, enum=Priority.values),
            OpenApiParameter("active", bool),
            OpenApiParameter("muted", bool),
            OpenApiParameter("search", str, description="Substring of either name."),
            OpenApiParameter("page", int),
            OpenApiParameter("limit", int),
        ],
        responses=ServiceSerializer(many=True),
    )
    def get(self, request):
        qs = Service.objects.all().order_by("heartbeat_name", "id")
        params = request.query_params
        if params.get("status"):
            if params["status"] not in ServiceStatus.values:
                raise one_of("status", ServiceStatus.values)
            qs = qs.filter(status=params["status"])
        if params.get("team"):
            qs = qs.filter(team=params["team"])
        if params.get("priority"):
            if params["priority"].lower() not in Priority.values:
                raise one_of("priority", Priority.values)
            qs = qs.filter(priority=params["priority"].lower())
        for flag in ("active", "muted"):
            if params.get(flag) is not None:
                value = params[flag].lower()
                if value not in {"true", "false", "1", "0"}:
                    raise InvalidParameter(fields={flag: ["Use true or false."]})
                qs = qs.filter(**{flag: value in {"true", "1"}})
        if params.get("search"):
            term = params["search"]
            qs = qs.filter(Q(heartbeat_name__icontains=term) | Q(service_name__icontains=term))
        paginator = NumberedPage()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ServiceSerializer(page, many=True).data)

    @extend_schema(
        operation_id="services_create",
        request=ServiceSerializer,
        responses={201: ServiceSerializer},
    )
    def post(self, request):
        data = ServiceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service = svc.service_create(actor=_actor(request), **data.validated_data)
        return Response(ServiceSerializer(service).data, status=status.HTTP_201_CREATED)


class ServiceDetail(APIView):
    @extend_schema(operation_id="services_retrieve", responses=ServiceSerializer)
    def get(self, request, service: str):
        return Response(ServiceSerializer(svc.service_get(service)).data)

    @extend_schema(
        operation_id="services_update",
        request=ServiceUpdateSerializer,
        responses=ServiceSerializer,
    )
    def patch(self, request, service: str):
        current = svc.service_get(service)
        data = ServiceUpdateSerializer(current, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        updated = svc.service_update(
            service_ref=current.pk, actor=_actor(request), **data.validated_data
        )
        return Response(ServiceSerializer(updated).data)

    @extend_schema(operation_id="services_destroy", responses={204: None})
    def delete(self, request, service: str):
        svc.service_delete(service_ref=service, actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceMute(APIView):
    @extend_schema(operation_id="services_mute", request=MuteIn, responses=ServiceSerializer)
    def post(self, request, service: str):
        data = MuteIn(data=request.data)
        data.is_valid(raise_exception=True)
        muted = svc.service_mute(
            service_ref=service,
            reason=data.validated_data["reason"],
            duration=data.validated_data.get("duration"),
            actor=_actor(request),
        )
        return Response(ServiceSerializer(muted).data)


class ServiceUnmute(APIView):
    @extend_schema(operation_id="services_unmute", request=None, responses=ServiceSerializer)
    def post(self, request, service: str):
        return Response(
            ServiceSerializer(svc.service_unmute(service_ref=service, actor=_actor(request))).data
        )


_HEARTBEAT_LIST_PARAMS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Inclusive lower bound."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Exclusive upper bound."),
    OpenApiParameter("status", str),
    OpenApiParameter("limit", int),
    OpenApiParameter("cursor", str),
]


def _heartbeat_page(view, request, qs):
    since, until = _parse_time(request, "since"), _parse_time(request, "until")
    if since:
        qs = qs.filter(time__gte=since)
    if until:
        qs = qs.filter(time__lt=until)
    if request.query_params.get("status"):
        qs = qs.filter(status__iexact=request.query_params["status"])
    paginator = CursorPage()
    paginator.ordering = ("-time", "-id")
    page = paginator.paginate_queryset(qs.select_related("service"), request, view=view)
    return paginator.get_paginated_response(HeartbeatSerializer(page, many=True).data)


class HeartbeatList(APIView):
    @extend_schema(
        operation_id="heartbeats_list",
        parameters=[
            OpenApiParameter("service", str, description="Id or heartbeat name."),
            *_HEARTBEAT_LIST_PARAMS,
        ],
        responses=HeartbeatSerializer(many=True),
    )
    def get(self, request):
        qs = Heartbeat.objects.all()
        if request.query_params.get("service"):
            qs = qs.filter(service=svc.service_get(request.query_params["service"]))
        return _heartbeat_page(self, request, qs)


class ServiceHeartbeatList(APIView):
    @extend_schema(
        operation_id="services_heartbeats_list",
        parameters=_HEARTBEAT_LIST_PARAMS,
        responses=HeartbeatSerializer(many=True),
    )
    def get(self, request, service: str):
        return _heartbeat_page(
            self, request, Heartbeat.objects.filter(service=svc.service_get(service))
        )


class HeartbeatCreate(APIView):
    """``POST /v2/heartbeat/{service}``: the ingest hot path (see docs/performance.md)."""

    # Documented, and served when in doubt, as the DRF view below. The URL is routed to the lean
    # plain-Django function that ``as_view`` returns: for the common request (an API key; no
    # body or a JSON object of plain strings; JSON or any ``Accept``) it authenticates, records
    # and answers itself, without DRF's request wrapping, negotiation, parsers or serializers.
    # Every other request (no key, malformed or invalid bodies, other content types or ``Accept``
    # values, other methods) goes to the DRF view untouched, before any side effect. Both give
    # the same statuses, headers and bytes: bench/ingest/contract.py checks it on every
    # benchmark run. The WSGI ingest handler (heartbeats/ingest.py) answers the same requests
    # with the same ``lean_*`` methods, without Django's URL resolution.
    _renderer = JSONRenderer()
    _json_types = frozenset({"application/json", "application/json; charset=utf-8"})
    _any_accept = frozenset({"", "*/*", "application/json"})
    _max_fast_body = 16 * 1024

    @extend_schema(
        operation_id="heartbeat_create",
        request=HeartbeatIn,
        responses={
            201: inline_serializer(
                "HeartbeatAccepted",
                {
                    "id": serializers.IntegerField(),
                    "service": serializers.IntegerField(),
                    "heartbeat_name": serializers.CharField(),
                    "status": serializers.CharField(),
                    "time": serializers.DateTimeField(),
                    "service_status": serializers.CharField(),
                    "next_deadline_at": serializers.DateTimeField(),
                },
            )
        },
    )
    def post(self, request, service: str):
        body = HeartbeatIn(data=request.data if request.body else {})
        body.is_valid(raise_exception=True)
        result = svc.heartbeat_record(
            service_ref=service,
            status=body.validated_data["status"],
            message=body.validated_data["message"],
            source=HeartbeatSource.V2,
        )
        return Response(self.accepted(result), status=status.HTTP_201_CREATED)

    @staticmethod
    def accepted(result: svc.HeartbeatResult) -> dict:
        service = result.service
        return _accepted_body(
            heartbeat_id=result.heartbeat.pk,
            service_id=service.pk,
            heartbeat_name=service.heartbeat_name,
            status=result.heartbeat.status,
            time=result.heartbeat.time,
            service_status=service.status,
            next_deadline_at=service.next_deadline_at,
        )

    @classmethod
    def lean(cls) -> bool:
        """Whether the lean path may answer for this view. It hard-codes what DRF would do with
        the view's policies for a request that presents an API key (ApiKeyAuthentication first
        settles it). Change them (a throttle, another permission or renderer) and every request
        takes the DRF view again."""
        return (
            not cls.throttle_classes
            and list(cls.authentication_classes)[:1] == [ApiKeyAuthentication]
            and list(cls.permission_classes) == [ScopePermission]
            and list(cls.renderer_classes) == [JSONRenderer]
        )

    @classmethod
    @functools.cache
    def _policy(cls) -> tuple[str, str]:
        """The scope a heartbeat needs and the ``Allow`` header DRF sends, computed once."""
        scope = scope_for("POST", getattr(cls, "required_scope", None))
        return scope, ", ".join(cls().allowed_methods)

    @classmethod
    def as_view(cls, **initkwargs):
        drf_view = super().as_view(**initkwargs)
        if not cls.lean():
            return drf_view

        @functools.wraps(drf_view)  # keeps .cls/.initkwargs (OpenAPI) and .csrf_exempt
        def view(request, service: str):
            fields = None
            if cls.lean_request(request.META):
                fields = cls.lean_fields(request.META, request.body)
            if fields is None:
                return drf_view(request, service=service)
            return cls.lean_answer(request, service, fields)

        return view

    @classmethod
    def lean_request(cls, meta: dict) -> bool:
        """Whether the lean path may answer a request with these headers (WSGI environ or
        ``request.META``), before its body is read: a POST presenting an API key, JSON or any
        ``Accept``, no ``format=``, a body of at most 16 KiB."""
        length = meta.get("CONTENT_LENGTH") or "0"
        return (
            meta.get("REQUEST_METHOD") == "POST"
            and bool(presented_key_in(meta))
            and meta.get("HTTP_ACCEPT", "") in cls._any_accept
            and "format=" not in meta.get("QUERY_STRING", "")
            and length.isascii()
            and length.isdigit()
            and int(length) <= cls._max_fast_body
        )

    @classmethod
    def lean_answer(cls, request, service: str, fields: tuple[str, str]) -> HttpResponse:
        """Authenticate, rate-limit, store and answer, as the DRF view would."""
        try:
            cls.lean_authorize(request)
            body = cls._group_commit(service, fields) if groupcommit.enabled() else None
            if body is None:
                body = cls.lean_record(service, fields)
        except MedicError as exc:
            return cls.lean_refusal(exc)
        return cls.lean_accepted(body)

    @classmethod
    def lean_authorize(cls, request) -> None:
        """Authenticate the key, charge its rate limit (kept on the request for the headers)
        and check its scope; raises the MedicError to answer with."""
        scope, _ = cls._policy()
        require_scope(authenticate(request), scope)

    @classmethod
    def lean_authorize_many(cls, requests: list) -> list[MedicError | None]:
        """``lean_authorize`` for each request, in order, their rate limits charged with one
        round trip: per request None (authorized) or the MedicError to answer with."""
        scope, _ = cls._policy()
        refusals: list[MedicError | None] = []
        for key in authenticate_many(requests):
            if isinstance(key, MedicError):
                refusals.append(key)
                continue
            try:
                require_scope(key, scope)
            except MedicError as exc:
                refusals.append(exc)
            else:
                refusals.append(None)
        return refusals

    @classmethod
    def lean_record(cls, service: str, fields: tuple[str, str]) -> dict:
        """Store one beat through ``heartbeat_record`` (any service, any state); the 201 body."""
        result = svc.heartbeat_record(
            service_ref=service, status=fields[0], message=fields[1], source=HeartbeatSource.V2
        )
        return cls.accepted(result)

    @staticmethod
    def lean_stored(stored: groupcommit.Stored, beat_status: str, at) -> dict:
        """The 201 body of a beat the group commit stored (counted as ``heartbeat_record``
        counts one)."""
        svc.heartbeat_counted(beat_status)
        return _accepted_body(
            heartbeat_id=stored.heartbeat_id,
            service_id=stored.service_id,
            heartbeat_name=stored.heartbeat_name,
            status=beat_status,
            time=at,
            service_status=stored.service_status,
            next_deadline_at=stored.next_deadline_at,
        )

    @classmethod
    def lean_accepted(cls, body: dict) -> HttpResponse:
        return cls._respond(body, status.HTTP_201_CREATED, cls._policy()[1])

    @classmethod
    def lean_refusal(cls, exc: MedicError) -> HttpResponse:
        headers = dict(exc.headers)
        if exc.status == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="medic"')
        return cls._respond(exc.as_dict(), exc.status, cls._policy()[1], headers)

    @classmethod
    def _group_commit(cls, service: str, fields: tuple[str, str]) -> dict | None:
        """The answer for a beat the process's group commit stored (heartbeats/groupcommit.py),
        or None when it is for ``heartbeat_record`` to decide. ``fields`` passed
        ``lean_fields``: stripped, non-empty status, storable, within the documented lengths."""
        beat_status, message = fields
        at = timezone.now()
        stored = groupcommit.batcher().store(
            ref=service, status=beat_status, message=message, source=HeartbeatSource.V2, at=at
        )
        if stored is None:
            return None
        return cls.lean_stored(stored, beat_status, at)

    @classmethod
    def _respond(
        cls, data: dict, status_code: int, allow: str, headers: dict | None = None
    ) -> HttpResponse:
        response = HttpResponse(
            cls._renderer.render(data), status=status_code, content_type="application/json"
        )
        for name, value in (headers or {}).items():
            response[name] = value
        response["Allow"] = allow
        return response

    @classmethod
    def lean_fields(cls, meta: dict, body: bytes) -> tuple[str, str] | None:
        """(status, message) as HeartbeatIn would validate them, for a request that passed
        ``lean_request``; None: leave it to the DRF view.

        Pure (it reads the headers and the body, nothing else), so declining costs nothing but
        the parse: DRF then answers in its own order (authentication first) with its own
        messages.
        """
        if not body:
            return "UP", ""
        if meta.get("CONTENT_TYPE", "").lower() not in cls._json_types:
            return None
        try:
            data = json.loads(body.decode(), parse_constant=cls._reject_constant)
        except ValueError:
            return None
        if type(data) is not dict:
            return None
        status_, message = data.get("status", "UP"), data.get("message", "")
        if type(status_) is not str or type(message) is not str:
            return None
        status_, message = status_.strip(), message.strip()
        if not 0 < len(status_) <= STATUS_MAX_LENGTH or len(message) > MESSAGE_MAX_LENGTH:
            return None
        for value in (status_, message):
            if not storable(value):
                return None
        return status_, message

    @staticmethod
    def _reject_constant(name: str):
        raise ValueError(f"{name} is not valid JSON")  # NaN, Infinity: as DRF's strict parser


def _accepted_body(
    *,
    heartbeat_id: int,
    service_id: int,
    heartbeat_name: str,
    status: str,
    time,
    service_status: str,
    next_deadline_at,
) -> dict:
    """The 201 body of a stored heartbeat, whichever path stored it."""
    return {
        "id": heartbeat_id,
        "service": service_id,
        "heartbeat_name": heartbeat_name,
        "status": status,
        "time": time,
        "service_status": service_status,
        "next_deadline_at": next_deadline_at,
    }
