"""v2 API for maintenance windows."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from heartbeats import maintenance
from heartbeats.models import MaintenanceWindow
from heartbeats.services import service_get
from medic.errors import InvalidParameter
from medic.models import actor_label
from medic.pagination import NumberedPage


class ServiceRef(serializers.CharField):
    def to_internal_value(self, data):
        return service_get(str(data))

    def to_representation(self, value):
        return value.heartbeat_name


class OccurrenceOut(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class WindowSerializer(serializers.ModelSerializer):
    timezone = serializers.CharField(source="time_zone", required=False, default="UTC")
    services = serializers.ListField(
        child=ServiceRef(),
        required=False,
        write_only=True,
        help_text="Ids or heartbeat names (scope 'services'); responses list the names.",
    )
    active_now = serializers.SerializerMethodField()
    next_occurrences = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "name",
            "description",
            "timezone",
            "starts_at",
            "ends_at",
            "cron_expression",
            "duration_minutes",
            "scope",
            "services",
            "team",
            "pattern",
            "notify",
            "active_now",
            "next_occurrences",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        extra_kwargs = {"duration_minutes": {"min_value": 1}}

    def to_representation(self, window):
        data = super().to_representation(window)
        data["services"] = [s.heartbeat_name for s in window.services.all()]
        return data

    def get_active_now(self, window) -> bool:
        return maintenance.occurrence_at(window, timezone.now()) is not None

    @extend_schema_field(OccurrenceOut(many=True))
    def get_next_occurrences(self, window) -> list:
        return [
            {"starts_at": a, "ends_at": b}
            for a, b in maintenance.occurrences(window, timezone.now(), 5)
        ]


def _fields(data: dict) -> dict:
    if "time_zone" in data:
        data["time_zone"] = data.pop("time_zone")
    return data


class WindowList(APIView):
    @extend_schema(
        operation_id="maintenance_windows_list",
        parameters=[
            OpenApiParameter("active", bool, description="Only windows open now."),
            OpenApiParameter(
                "upcoming", bool, description="Only windows with an occurrence still to start."
            ),
            OpenApiParameter("service", str, description="Windows covering this service."),
        ],
        responses=WindowSerializer(many=True),
    )
    def get(self, request):
        now = timezone.now()
        windows = list(MaintenanceWindow.objects.prefetch_related("services"))
        params = request.query_params
        for flag in ("active", "upcoming"):
            if params.get(flag) not in (None, "true", "false", "1", "0"):
                raise InvalidParameter(fields={flag: ["Use true or false."]})
        if params.get("active") in ("true", "1"):
            windows = [w for w in windows if maintenance.occurrence_at(w, now)]
        if params.get("upcoming") in ("true", "1"):
            windows = [
                w
                for w in windows
                if any(start > now for start, _ in maintenance.occurrences(w, now, 2))
            ]
        if params.get("service"):
            service = service_get(params["service"])
            windows = [w for w in windows if maintenance.covers(w, service)]
        paginator = NumberedPage()
        page = paginator.paginate_queryset(windows, request, view=self)
        return paginator.get_paginated_response(WindowSerializer(page, many=True).data)

    @extend_schema(
        operation_id="maintenance_windows_create",
        request=WindowSerializer,
        responses={201: WindowSerializer},
    )
    def post(self, request):
        data = WindowSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        window = maintenance.window_create(
            actor=actor_label(request.auth), **_fields(dict(data.validated_data))
        )
        return Response(WindowSerializer(window).data, status=status.HTTP_201_CREATED)


class WindowDetail(APIView):
    @extend_schema(operation_id="maintenance_windows_retrieve", responses=WindowSerializer)
    def get(self, request, ref: str):
        return Response(WindowSerializer(maintenance.window_get(ref)).data)

    @extend_schema(
        operation_id="maintenance_windows_update",
        request=WindowSerializer,
        responses=WindowSerializer,
    )
    def patch(self, request, ref: str):
        current = maintenance.window_get(ref)
        data = WindowSerializer(current, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        window = maintenance.window_update(
            ref=current.pk, actor=actor_label(request.auth), **_fields(dict(data.validated_data))
        )
        return Response(WindowSerializer(window).data)

    @extend_schema(operation_id="maintenance_windows_destroy", responses={204: None})
    def delete(self, request, ref: str):
        maintenance.window_delete(ref=ref, actor=actor_label(request.auth))
        return Response(status=status.HTTP_204_NO_CONTENT)
