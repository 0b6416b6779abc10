"""v2 API of the remediation audit log (read scope): a filtered, cursor-paginated list and a
streaming export (JSON Lines or CSV) with the same filters. Details are masked once more on the
way out, so a secret stored after a row was written does not show in it either."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.views import APIView

from medic.errors import MedicError
from medic.pagination import CursorPage
from remediation.audit import selectors
from remediation.audit.masking import masker as secrets_masker
from remediation.audit.models import AuditEntry

EXPORT_FORMATS = ("json", "csv")
CSV_COLUMNS = [
    "id",
    "created_at",
    "actor",
    "event",
    "object_type",
    "object_id",
    "playbook",
    "service",
    "execution_id",
    "details",
]
# Rows per chunk written to the client: few large writes rather than one per row.
LINES_PER_CHUNK = 500


class InvalidFilter(MedicError):
    status = 400
    code = "invalid_filter"
    default_message = "Some filters are invalid."


class AuditFilterIn(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    actor = serializers.CharField(required=False, max_length=150)
    event = serializers.RegexField(
        r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$", required=False, max_length=64
    )
    playbook = serializers.CharField(required=False, max_length=200)
    service = serializers.CharField(required=False, max_length=200)
    execution = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since >= until:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


FILTER_PARAMS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Inclusive lower bound."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Exclusive upper bound."),
    OpenApiParameter("actor", str, description='Exact, e.g. "key:ops#3", "system".'),
    OpenApiParameter("event", str, description='Exact ("job.finished") or a family ("job.*").'),
    OpenApiParameter("playbook", str),
    OpenApiParameter("service", str, description="Heartbeat name of the service."),
    OpenApiParameter("execution", int, description="Execution id."),
]


def audit_filter_parse(params, allowed: set[str]) -> selectors.AuditFilter:
    """The audit filter from query parameters (a QueryDict or any mapping of str to str), as
    ``GET /v2/audit`` and the portal's audit page read them. Parameters outside the filters and
    ``allowed`` are refused, like invalid values, with ``InvalidFilter`` naming each one."""
    fields = AuditFilterIn().fields
    errors: dict[str, list[str]] = {}
    for name in sorted(set(params) - allowed - set(fields)):
        errors[name] = ["Unknown filter."]
    values = {k: params[k] for k in params if k in fields}
    for name in ("since", "until"):
        # An unencoded "+01:00" offset arrives as " 01:00".
        if name in values:
            values[name] = values[name].replace(" ", "+")
    data = AuditFilterIn(data=values)
    if not data.is_valid():
        for name, messages in data.errors.items():
            errors[name] = [str(m) for m in messages]
    if errors:
        raise InvalidFilter(fields=errors)
    v = data.validated_data
    return selectors.AuditFilter(
        since=v.get("since"),
        until=v.get("until"),
        actor=v.get("actor"),
        event=v.get("event"),
        playbook=v.get("playbook"),
        service=v.get("service"),
        execution_id=v.get("execution"),
    )


def audit_row(entry: AuditEntry, mask: Callable[[Any], Any]) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor,
        "event": entry.event,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "playbook": entry.playbook or None,
        "service": entry.service or None,
        "execution_id": entry.execution_id,
        "details": mask(entry.details),
    }


class AuditEntryOut(serializers.Serializer):
    """The shape of ``audit_row`` (documentation of the response)."""

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField()
    event = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    playbook = serializers.CharField(allow_null=True)
    service = serializers.CharField(allow_null=True)
    execution_id = serializers.IntegerField(allow_null=True)
    details = serializers.JSONField()


class AuditPage(CursorPage):
    # The id is unique and grows with every insert: pages stay stable while rows are added.
    ordering = "-id"


class AuditList(APIView):
    @extend_schema(
        operation_id="audit_list",
        parameters=[
            *FILTER_PARAMS,
            OpenApiParameter("limit", int, description="Page size (at most 500)."),
            OpenApiParameter("cursor", str),
        ],
        responses=AuditEntryOut(many=True),
    )
    def get(self, request):
        filters = audit_filter_parse(request.query_params, {"limit", "cursor"})
        paginator = AuditPage()
        page = paginator.paginate_queryset(selectors.audit_list(filters), request, view=self)
        mask = secrets_masker()
        return paginator.get_paginated_response([audit_row(entry, mask) for entry in page])


class _FormatIsOurs(DefaultContentNegotiation):
    """``?format=`` picks the export's format here, not a DRF renderer (errors render JSON)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _Echo:
    def write(self, value: str) -> str:
        return value


def _chunks(lines: Iterable[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= LINES_PER_CHUNK:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _json_lines(rows: Iterable[AuditEntry], mask) -> Iterator[str]:
    for entry in rows:
        yield json.dumps(audit_row(entry, mask), cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"


def _csv_lines(rows: Iterable[AuditEntry], mask) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in rows:
        row = audit_row(entry, mask)
        row["details"] = json.dumps(row["details"], cls=DjangoJSONEncoder, ensure_ascii=False)
        yield writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])


class AuditExport(APIView):
    content_negotiation_class = _FormatIsOurs

    @extend_schema(
        operation_id="audit_export",
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(EXPORT_FORMATS),
                description="json: JSON Lines (one entry per line); csv: a header row, then one "
                "row per entry with details as JSON. Default json.",
            ),
            *FILTER_PARAMS,
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="JSON Lines, oldest first."
            ),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, oldest first."),
        },
        description="Streams every matching entry, oldest first, with constant memory on the "
        "server whatever the size.",
    )
    def get(self, request):
        fmt = request.query_params.get("format", "json")
        if fmt not in EXPORT_FORMATS:
            raise InvalidFilter(fields={"format": [f"One of {', '.join(EXPORT_FORMATS)}."]})
        return audit_export_response(audit_filter_parse(request.query_params, {"format"}), fmt)


def audit_export_response(filters: selectors.AuditFilter, fmt: str) -> StreamingHttpResponse:
    """Every entry matching ``filters``, oldest first, streamed as JSON Lines (``json``) or CSV:
    the body of ``GET /v2/audit/export`` and of the portal's Export links."""
    rows = selectors.audit_export_rows(filters)
    mask = secrets_masker()
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        body, content_type, ext = _csv_lines(rows, mask), "text/csv; charset=utf-8", "csv"
    else:
        body, content_type, ext = _json_lines(rows, mask), "application/x-ndjson", "jsonl"
    response = StreamingHttpResponse(_chunks(body), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="medic-audit-{stamp}.{ext}"'
    response["Cache-Control"] = "no-store"
    return response
