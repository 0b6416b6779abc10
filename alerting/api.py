"""v2 API for alerts and their deliveries (read-only: alerts open and close by themselves)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alerting.models import Alert, AlertState, Delivery, DeliveryAttempt
from heartbeats.models import Priority
from heartbeats.services import service_get
from medic.errors import NotFound, one_of
from medic.pagination import CursorPage


class AlertSerializer(serializers.ModelSerializer):
    service = serializers.IntegerField(source="service_id", read_only=True)
    heartbeat_name = serializers.CharField(source="service.heartbeat_name", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "service",
            "heartbeat_name",
            "dedup_key",
            "state",
            "reason",
            "priority",
            "summary",
            "opened_at",
            "resolved_at",
            "notify_count",
            "last_notified_at",
            "next_notify_at",
            "suppressed",
        ]


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "status_code", "response_body", "error"]


class DeliverySerializer(serializers.ModelSerializer):
    attempt_log = AttemptSerializer(source="attempt_rows", many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "channel",
            "target",
            "status",
            "attempts",
            "response_code",
            "error",
            "suppressed_reason",
            "created_at",
            "next_attempt_at",
            "completed_at",
            "attempt_log",
        ]


class AlertList(APIView):
    @extend_schema(
        operation_id="alerts_list",
        parameters=[
            OpenApiParameter("state", str, enum=AlertState.values),
            OpenApiParameter("service", str, description="Id or heartbeat name."),
            OpenApiParameter("priority", str),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses=AlertSerializer(many=True),
    )
    def get(self, request):
        qs = Alert.objects.select_related("service")
        params = request.query_params
        if params.get("state") is not None:  # "" too: a blank filter is not "any"
            if params["state"] not in AlertState.values:
                raise one_of("state", AlertState.values)
            qs = qs.filter(state=params["state"])
        if params.get("service"):
            qs = qs.filter(service=service_get(params["service"]))
        if params.get("priority") is not None:  # "" too: a blank filter is not "any"
            if params["priority"].lower() not in Priority.values:
                raise one_of("priority", Priority.values)
            qs = qs.filter(priority=params["priority"].lower())
        paginator = CursorPage()
        paginator.ordering = ("-opened_at", "-id")
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AlertSerializer(page, many=True).data)


def _alert(alert_id: int) -> Alert:
    alert = Alert.objects.select_related("service").filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(f"No alert with id {alert_id}.", code="alert_not_found")
    return alert


class AlertDetail(APIView):
    @extend_schema(operation_id="alerts_retrieve", responses=AlertSerializer)
    def get(self, request, alert_id: int):
        return Response(AlertSerializer(_alert(alert_id)).data)


class AlertDeliveries(APIView):
    @extend_schema(operation_id="alerts_deliveries", responses=DeliverySerializer(many=True))
    def get(self, request, alert_id: int):
        alert = _alert(alert_id)
        deliveries = alert.deliveries.prefetch_related("attempt_rows").order_by("created_at", "id")
        return Response({"results": DeliverySerializer(deliveries, many=True).data})
