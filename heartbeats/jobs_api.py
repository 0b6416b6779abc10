"""v2 API for job runs: start/complete/fail signals, run history, duration statistics."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from heartbeats import jobs
from heartbeats.models import JobRun
from heartbeats.selectors import duration_stats
from heartbeats.services import service_get
from medic.limits import MESSAGE_MAX_LENGTH
from medic.pagination import CursorPage


class RunSerializer(serializers.ModelSerializer):
    service = serializers.IntegerField(source="service_id", read_only=True)
    hung = serializers.BooleanField(source="hung_alerted", read_only=True)

    class Meta:
        model = JobRun
        fields = [
            "id",
            "service",
            "run_id",
            "status",
            "started_at",
            "ended_at",
            "duration_ms",
            "exit_code",
            "message",
            "output_tail",
            "deadline_at",
            "hung",
        ]


class SignalResponse(RunSerializer):
    duplicate = serializers.BooleanField(read_only=True)
    service_status = serializers.CharField(read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "duplicate", "service_status"]


class StartIn(serializers.Serializer):
    run_id = serializers.CharField(required=False, max_length=64, allow_blank=True)


class EndIn(StartIn):
    exit_code = serializers.IntegerField(
        required=False, min_value=-jobs.MAX_EXIT_CODE, max_value=jobs.MAX_EXIT_CODE
    )
    message = serializers.CharField(
        required=False, default="", max_length=MESSAGE_MAX_LENGTH, allow_blank=True
    )
    output_tail = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=1_000_000,
        trim_whitespace=False,
        help_text="The end of the job's output; Medic keeps the last 10 KB.",
    )
    duration_ms = serializers.IntegerField(
        required=False, min_value=0, max_value=jobs.MAX_RUN_DURATION_MS
    )


def _answer(result: jobs.SignalResult, created: bool) -> Response:
    data = RunSerializer(result.run).data
    data["duplicate"] = result.duplicate
    data["service_status"] = result.service.status
    code = status.HTTP_201_CREATED if created and not result.duplicate else status.HTTP_200_OK
    return Response(data, status=code)


def _body(serializer_class, request):
    data = serializer_class(data=request.data if request.body else {})
    data.is_valid(raise_exception=True)
    return data.validated_data


class JobStart(APIView):
    @extend_schema(
        operation_id="heartbeat_start",
        request=StartIn,
        responses={201: SignalResponse, 200: SignalResponse},
        description="Signal that a run started. Returns the run with its run_id (generated when "
        "none is sent). A repeated start of the same run_id answers 200 with duplicate=true.",
    )
    def post(self, request, service: str):
        body = _body(StartIn, request)
        return _answer(jobs.job_start(service_ref=service, run_id=body.get("run_id")), True)


class _JobEnd(APIView):
    succeeded = True

    def post(self, request, service: str):
        body = _body(EndIn, request)
        result = jobs.job_end(
            service_ref=service,
            succeeded=self.succeeded,
            run_id=body.get("run_id"),
            exit_code=body.get("exit_code"),
            message=body["message"],
            output_tail=body["output_tail"],
            duration_ms=body.get("duration_ms"),
        )
        return _answer(result, True)


class JobComplete(_JobEnd):
    succeeded = True

    @extend_schema(
        operation_id="heartbeat_complete",
        request=EndIn,
        responses={201: SignalResponse, 200: SignalResponse},
        description="Signal that a run completed. Without run_id the latest running run is "
        "closed. A repeated end answers 200 with duplicate=true and changes nothing.",
    )
    def post(self, request, service: str):
        return super().post(request, service)


class JobFail(_JobEnd):
    succeeded = False

    @extend_schema(
        operation_id="heartbeat_fail",
        request=EndIn,
        responses={201: SignalResponse, 200: SignalResponse},
        description="Signal that a run failed. Opens an alert once failure_threshold consecutive "
        "runs failed; the alert carries the exit code and output tail to every target.",
    )
    def post(self, request, service: str):
        return super().post(request, service)


class ServiceRuns(APIView):
    @extend_schema(
        operation_id="services_runs",
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("cursor", str)],
        responses=RunSerializer(many=True),
    )
    def get(self, request, service: str):
        runs = JobRun.objects.filter(service=service_get(service))
        paginator = CursorPage()
        paginator.ordering = ("-created_at", "-id")
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(RunSerializer(page, many=True).data)


class StatsOut(serializers.Serializer):
    service = serializers.CharField()
    count = serializers.IntegerField()
    avg_ms = serializers.FloatField(allow_null=True)
    min_ms = serializers.IntegerField(allow_null=True)
    max_ms = serializers.IntegerField(allow_null=True)
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True)
    reason = serializers.CharField(allow_null=True)


class ServiceStats(APIView):
    @extend_schema(operation_id="services_stats", responses=StatsOut)
    def get(self, request, service: str):
        target = service_get(service)
        return Response(
            StatsOut({"service": target.heartbeat_name, **duration_stats(service=target)}).data
        )
