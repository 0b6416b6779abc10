"""v2 API for routing configuration: teams, notification targets, routing rules, working hours,
and the route explanation. Objects are addressed by id or name."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from alerting import config as cfg
from alerting.models import (
    Channel,
    NotificationEvent,
    NotificationTarget,
    RoutingMode,
    RoutingRule,
    RoutingWhen,
    Team,
    WorkingHours,
)
from alerting.routing import route_for
from alerting.schedules import ScheduleError, parse_schedule
from alerting.transports import _VAR, DEFAULT_BODY, TEMPLATE_VARIABLES
from heartbeats.models import Priority
from heartbeats.services import service_get
from medic.errors import InvalidParameter, one_of
from medic.ids import looks_like_id
from medic.models import actor_label
from medic.pagination import NumberedPage

_NAME = {"max_length": 100, "allow_blank": False}


def _no_slash(value: str) -> str:
    if "/" in value or looks_like_id(value):
        raise serializers.ValidationError("Must not contain '/' or be only digits.")
    return value


class RefField(serializers.CharField):
    """An id or a name in requests; the object's name in responses."""

    def __init__(self, getter, **kwargs):
        self.getter = getter
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return self.getter(str(data))

    def to_representation(self, value):
        return getattr(value, "name", None) or getattr(value, "heartbeat_name", str(value))


# --- Teams ------------------------------------------------------------------------------------


class TeamSerializer(serializers.ModelSerializer):
    name = serializers.CharField(validators=[_no_slash], **_NAME)
    slack_channel_id = serializers.RegexField(
        r"^[A-Z0-9]{6,20}$",
        required=False,
        allow_blank=True,
        error_messages={"invalid": "A Slack channel id such as C0123ABCD (not a #name)."},
    )

    class Meta:
        model = Team
        fields = ["id", "name", "slack_channel_id", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


# --- Working hours ----------------------------------------------------------------------------


class WorkingHoursSerializer(serializers.ModelSerializer):
    name = serializers.CharField(validators=[_no_slash], **_NAME)
    spec = serializers.JSONField(help_text="See docs/working-hours.md.")
    description = serializers.SerializerMethodField()

    class Meta:
        model = WorkingHours
        fields = ["id", "name", "spec", "description", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_description(self, obj) -> str:
        try:
            return parse_schedule(obj.spec).describe()
        except ScheduleError:
            return "invalid"


# --- Notification targets ---------------------------------------------------------------------


class TargetSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(validators=[_no_slash], **_NAME)
    kind = serializers.ChoiceField(choices=Channel.choices)
    enabled = serializers.BooleanField(default=True)
    # slack
    channel = serializers.CharField(required=False, allow_blank=True, max_length=64)
    bot_token = serializers.CharField(required=False, allow_blank=True, write_only=True)
    # pagerduty
    routing_key = serializers.CharField(required=False, allow_blank=True, write_only=True)
    # webhook
    url = serializers.URLField(required=False, max_length=2000)
    method = serializers.ChoiceField(choices=["POST", "PUT", "PATCH"], required=False)
    headers = serializers.DictField(child=serializers.CharField(max_length=2000), required=False)
    secret_headers = serializers.DictField(
        child=serializers.CharField(max_length=2000, allow_blank=True),
        required=False,
        write_only=True,
        help_text="Encrypted at rest, never returned. An empty value removes the header.",
    )
    body_template = serializers.JSONField(required=False)
    timeout_seconds = serializers.FloatField(required=False, min_value=0.5, max_value=30)
    signing_secret = serializers.CharField(
        required=False, write_only=True, min_length=16, max_length=200
    )
    # output only
    secret_fields = serializers.ListField(child=serializers.CharField(), read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    CONFIG = {
        Channel.SLACK: ("channel",),
        Channel.PAGERDUTY: (),
        Channel.WEBHOOK: ("url", "method", "headers", "body_template", "timeout_seconds"),
    }
    SECRETS = {
        Channel.SLACK: ("bot_token",),
        Channel.PAGERDUTY: ("routing_key",),
        Channel.WEBHOOK: ("secret_headers", "signing_secret"),
    }

    def validate_url(self, value: str) -> str:
        if urlsplit(value).scheme not in {"http", "https"}:
            raise serializers.ValidationError("Use an http or https URL.")
        return value

    def validate_headers(self, value: dict) -> dict:
        reserved = {
            "content-type",
            "content-length",
            "host",
            "x-medic-signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
        bad = [h for h in value if h.lower() in reserved]
        if bad:
            raise serializers.ValidationError(f"Medic sets these headers itself: {bad}.")
        return value

    def validate_body_template(self, value):
        if not isinstance(value, dict | list):
            raise serializers.ValidationError("A JSON object or array.")
        unknown = sorted(set(_VAR.findall(str(value))) - set(TEMPLATE_VARIABLES))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown variable(s) {', '.join(unknown)}; available: "
                f"{', '.join(sorted(TEMPLATE_VARIABLES))}."
            )
        return value

    def validate(self, data):
        kind = data.get("kind") or (self.instance.kind if self.instance else None)
        allowed = set(self.CONFIG[kind]) | set(self.SECRETS[kind])
        common = {"name", "kind", "enabled"}
        foreign = sorted(k for k in data if k not in allowed | common)
        if foreign:
            raise serializers.ValidationError(
                {k: [f"Not a setting of a {kind} target."] for k in foreign}
            )
        if kind == Channel.WEBHOOK and not self.instance and not data.get("url"):
            raise serializers.ValidationError({"url": ["Required for a webhook target."]})
        data["config"] = {k: data.pop(k) for k in self.CONFIG[kind] if k in data}
        data["secrets"] = {k: data.pop(k) for k in self.SECRETS[kind] if k in data}
        return data

    def to_representation(self, target: NotificationTarget):
        out = {
            "id": target.pk,
            "name": target.name,
            "kind": target.kind,
            "enabled": target.enabled,
            **target.config,
            "secret_fields": cfg.secret_names(target),
            "created_at": target.created_at,
            "updated_at": target.updated_at,
        }
        if target.kind == Channel.WEBHOOK:
            out.setdefault("method", "POST")
            out.setdefault("body_template", DEFAULT_BODY)
        return out


# --- Routing rules ----------------------------------------------------------------------------


class RuleSerializer(serializers.ModelSerializer):
    name = serializers.CharField(validators=[_no_slash], **_NAME)
    service = RefField(service_get, required=False, allow_null=True)
    schedule = RefField(cfg.working_hours_get, required=False, allow_null=True)
    priorities = serializers.ListField(
        child=serializers.ChoiceField(choices=Priority.values), required=False
    )
    when = serializers.ChoiceField(choices=RoutingWhen.choices, required=False)
    mode = serializers.ChoiceField(choices=RoutingMode.choices, required=False)
    targets = serializers.ListField(
        child=RefField(cfg.target_get),
        allow_empty=False,
        write_only=True,
        help_text="Ids or names, in order (responses list the names).",
    )

    class Meta:
        model = RoutingRule
        fields = [
            "id",
            "name",
            "position",
            "enabled",
            "service",
            "team",
            "priorities",
            "when",
            "schedule",
            "mode",
            "stop",
            "targets",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_representation(self, rule):
        data = super().to_representation(rule)
        data["targets"] = [link.target.name for link in rule.rule_targets.all()]
        return data


def _actor(request) -> str:
    return actor_label(request.auth)


class _ListCreate(APIView):
    model = None
    serializer_class = None

    def list_queryset(self):
        return self.model.objects.all()

    def get(self, request):
        paginator = NumberedPage()
        page = paginator.paginate_queryset(self.list_queryset(), request, view=self)
        return paginator.get_paginated_response(self.serializer_class(page, many=True).data)

    def post(self, request):
        data = self.serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        obj = self.create(data.validated_data, _actor(request))
        return Response(self.output(obj), status=status.HTTP_201_CREATED)

    def output(self, obj) -> dict:
        return self.serializer_class(obj).data


class _Detail(APIView):
    serializer_class = None

    def get(self, request, ref: str):
        return Response(self.serializer_class(self.fetch(ref)).data)

    def patch(self, request, ref: str):
        instance = self.fetch(ref)
        data = self.serializer_class(instance, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            self.serializer_class(self.update(ref, data.validated_data, _actor(request))).data
        )

    def delete(self, request, ref: str):
        self.remove(ref, _actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["teams"])
@extend_schema_view(
    get=extend_schema(operation_id="teams_list", responses=TeamSerializer(many=True)),
    post=extend_schema(
        operation_id="teams_create", request=TeamSerializer, responses={201: TeamSerializer}
    ),
)
class TeamList(_ListCreate):
    model, serializer_class = Team, TeamSerializer

    def create(self, data, actor):
        return cfg.team_create(actor=actor, **data)


@extend_schema(tags=["teams"])
@extend_schema_view(
    get=extend_schema(operation_id="teams_retrieve", responses=TeamSerializer),
    patch=extend_schema(
        operation_id="teams_update", request=TeamSerializer, responses=TeamSerializer
    ),
    delete=extend_schema(operation_id="teams_destroy", responses={204: None}),
)
class TeamDetail(_Detail):
    serializer_class = TeamSerializer
    fetch = staticmethod(cfg.team_get)

    def update(self, ref, data, actor):
        return cfg.team_update(ref=ref, actor=actor, **data)

    def remove(self, ref, actor):
        cfg.team_delete(ref=ref, actor=actor)


@extend_schema(tags=["working-hours"])
@extend_schema_view(
    get=extend_schema(
        operation_id="working_hours_list", responses=WorkingHoursSerializer(many=True)
    ),
    post=extend_schema(
        operation_id="working_hours_create",
        request=WorkingHoursSerializer,
        responses={201: WorkingHoursSerializer},
    ),
)
class WorkingHoursList(_ListCreate):
    model, serializer_class = WorkingHours, WorkingHoursSerializer

    def create(self, data, actor):
        return cfg.working_hours_create(actor=actor, **data)


@extend_schema(tags=["working-hours"])
@extend_schema_view(
    get=extend_schema(operation_id="working_hours_retrieve", responses=WorkingHoursSerializer),
    patch=extend_schema(
        operation_id="working_hours_update",
        request=WorkingHoursSerializer,
        responses=WorkingHoursSerializer,
    ),
    delete=extend_schema(operation_id="working_hours_destroy", responses={204: None}),
)
class WorkingHoursDetail(_Detail):
    serializer_class = WorkingHoursSerializer
    fetch = staticmethod(cfg.working_hours_get)

    def update(self, ref, data, actor):
        return cfg.working_hours_update(ref=ref, actor=actor, **data)

    def remove(self, ref, actor):
        cfg.working_hours_delete(ref=ref, actor=actor)


class TargetCreated(TargetSerializer):
    signing_secret = serializers.CharField(
        read_only=True, help_text="Webhooks only: generated when none was given; shown once."
    )


@extend_schema(tags=["notification-targets"])
@extend_schema_view(
    get=extend_schema(
        operation_id="notification_targets_list", responses=TargetSerializer(many=True)
    )
)
class TargetList(_ListCreate):
    """Targets hold secrets: changing them needs the admin scope."""

    model, serializer_class = NotificationTarget, TargetSerializer

    @property
    def required_scope(self):
        return "admin" if self.request.method == "POST" else None

    @extend_schema(
        operation_id="notification_targets_create",
        request=TargetSerializer,
        responses={201: TargetCreated},
    )
    def post(self, request):
        return super().post(request)

    def create(self, data, actor):
        target, generated = cfg.target_create(actor=actor, **data)
        target.generated_secret = generated
        return target

    def output(self, target) -> dict:
        data = TargetSerializer(target).data
        if target.generated_secret:
            data["signing_secret"] = target.generated_secret
        return data


@extend_schema(tags=["notification-targets"])
@extend_schema_view(
    get=extend_schema(operation_id="notification_targets_retrieve", responses=TargetSerializer),
    patch=extend_schema(
        operation_id="notification_targets_update",
        request=TargetSerializer,
        responses=TargetSerializer,
    ),
    delete=extend_schema(operation_id="notification_targets_destroy", responses={204: None}),
)
class TargetDetail(_Detail):
    serializer_class = TargetSerializer
    fetch = staticmethod(cfg.target_get)

    @property
    def required_scope(self):
        return "admin" if self.request.method in {"PATCH", "DELETE"} else None

    def update(self, ref, data, actor):
        return cfg.target_update(ref=ref, actor=actor, **data)

    def remove(self, ref, actor):
        cfg.target_delete(ref=ref, actor=actor)


@extend_schema(tags=["routing-rules"])
@extend_schema_view(
    get=extend_schema(operation_id="routing_rules_list", responses=RuleSerializer(many=True)),
    post=extend_schema(
        operation_id="routing_rules_create", request=RuleSerializer, responses={201: RuleSerializer}
    ),
)
class RuleList(_ListCreate):
    model, serializer_class = RoutingRule, RuleSerializer

    def list_queryset(self):
        return RoutingRule.objects.select_related("service", "schedule").prefetch_related(
            "rule_targets__target"
        )

    def create(self, data, actor):
        return cfg.rule_create(actor=actor, **data)


@extend_schema(tags=["routing-rules"])
@extend_schema_view(
    get=extend_schema(operation_id="routing_rules_retrieve", responses=RuleSerializer),
    patch=extend_schema(
        operation_id="routing_rules_update", request=RuleSerializer, responses=RuleSerializer
    ),
    delete=extend_schema(operation_id="routing_rules_destroy", responses={204: None}),
)
class RuleDetail(_Detail):
    serializer_class = RuleSerializer
    fetch = staticmethod(cfg.rule_get)

    def update(self, ref, data, actor):
        return cfg.rule_update(ref=ref, actor=actor, **data)

    def remove(self, ref, actor):
        cfg.rule_delete(ref=ref, actor=actor)


class RouteTargetOut(serializers.Serializer):
    channel = serializers.CharField()
    destination = serializers.CharField()
    target = serializers.CharField(allow_null=True)


class RouteGroupOut(serializers.Serializer):
    rule = serializers.CharField(allow_null=True)
    mode = serializers.CharField()
    targets = RouteTargetOut(many=True)


class RouteOut(serializers.Serializer):
    service = serializers.CharField()
    at = serializers.DateTimeField()
    event = serializers.CharField()
    priority = serializers.CharField()
    default_route = serializers.BooleanField()
    groups = RouteGroupOut(many=True)
    reasons = serializers.ListField(child=serializers.CharField())


def route_explanation(service, *, at, event: str, priority: str | None = None) -> dict:
    route = route_for(service=service, event=event, at=at, priority=priority)
    return {
        "service": service.heartbeat_name,
        "at": at,
        "event": event,
        "priority": priority or service.priority,
        "default_route": route.is_default,
        "groups": [
            {
                "rule": g.rule.name if g.rule else None,
                "mode": g.mode,
                "targets": [
                    {
                        "channel": t.channel,
                        "destination": t.destination,
                        "target": t.target.name if t.target else None,
                    }
                    for t in g.targets
                ],
            }
            for g in route.groups
        ],
        "reasons": route.reasons,
    }


@extend_schema(tags=["routing-rules"])
class ServiceRoute(APIView):
    """Which targets an alert for this service would reach, and why — without sending one."""

    @extend_schema(
        operation_id="services_route",
        parameters=[
            OpenApiParameter(
                "at", OpenApiTypes.DATETIME, description="ISO-8601 time with offset; default now."
            ),
            OpenApiParameter("event", str, enum=NotificationEvent.values),
            OpenApiParameter("priority", str, enum=Priority.values),
        ],
        responses=RouteOut,
    )
    def get(self, request, service: str):
        params = request.query_params
        at = timezone.now()
        if params.get("at") is not None:  # "" too: a blank time is not "now"
            at = parse_datetime(params["at"].replace(" ", "+"))
            if at is None or at.tzinfo is None:
                raise InvalidParameter(
                    fields={"at": ["ISO-8601 with an offset, e.g. 2026-11-27T22:00Z"]}
                )
        event = params.get("event", NotificationEvent.TRIGGER)
        if event not in NotificationEvent.values:
            raise one_of("event", NotificationEvent.values)
        priority = params.get("priority")
        if priority is not None and priority not in Priority.values:
            raise one_of("priority", Priority.values)
        return Response(
            RouteOut(
                route_explanation(service_get(service), at=at, event=event, priority=priority)
            ).data
        )
