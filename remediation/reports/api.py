"""``GET /v2/reports/outcomes`` (and its first name ``/v2/reports/success-metrics``): the PRD's
success metrics over a period (read scope), docs/outcomes.md."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from medic.errors import MedicError
from remediation.reports import csvout, selectors, series

DEFAULT_DAYS = 30
MAX_DAYS = 366


class InvalidPeriod(MedicError):
    status = 400
    code = "invalid_period"
    default_message = "The period is invalid."


class PeriodIn(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    team = serializers.CharField(required=False, max_length=100)


class OutcomesIn(serializers.Serializer):
    # ``from`` is a Python keyword: the fields are named in __init__.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.DateTimeField(required=False)
        self.fields["to"] = serializers.DateTimeField(required=False)
        self.fields["team"] = serializers.CharField(required=False, max_length=100)
        self.fields["format"] = serializers.ChoiceField(choices=["json", "csv"], required=False)


def period_from(params, *, now=None, form=PeriodIn, start="since", end="until"):
    """A Period from since/until/team (or the names ``form`` uses; the end defaults to now, the
    start to 30 days before the end); raises InvalidPeriod with the fields at fault."""
    fields = form().fields
    unknown = sorted(set(params) - set(fields))
    data = form(data={k: v for k, v in params.items() if k in fields})
    errors = {name: ["Unknown parameter."] for name in unknown}
    if not data.is_valid():
        errors.update({name: [str(m) for m in msgs] for name, msgs in data.errors.items()})
    if errors:
        raise InvalidPeriod(fields=errors)
    v = data.validated_data
    until = v.get(end) or now or timezone.now()
    since = v.get(start) or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise InvalidPeriod(fields={end: [f"Must be later than {start}."]})
    if until - since > timedelta(days=MAX_DAYS):
        raise InvalidPeriod(fields={start: [f"The period is at most {MAX_DAYS} days."]})
    return selectors.Period(since=since, until=until, team=v.get("team") or None)


class SuccessMetrics(APIView):
    @extend_schema(
        operation_id="reports_success_metrics",
        parameters=[
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                description="Inclusive (default: 30 days before until).",
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATETIME, description="Exclusive (default: now)."
            ),
            OpenApiParameter("team", str, description="Only this team's services."),
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="The first name of GET /v2/reports/outcomes, kept for its clients: the "
        "same body (without the per-bucket series), with the period as since/until. "
        "Definitions: docs/outcomes.md.",
    )
    def get(self, request):
        return Response(selectors.success_metrics(period_from(request.query_params)))


def wants_csv(request) -> bool:
    if request.query_params.get("format") == "csv":
        return True
    if request.query_params.get("format") == "json":
        return False
    accept = request.headers.get("Accept", "")
    return "text/csv" in accept and "application/json" not in accept


class Outcomes(APIView):
    def perform_content_negotiation(self, request, force=False):
        # Accept: text/csv is answered below, not refused with 406 by the JSON renderers.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="reports_outcomes",
        parameters=[
            OpenApiParameter(
                "from", OpenApiTypes.DATETIME, description="Inclusive (default: 30 days before to)."
            ),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="Exclusive (default: now)."),
            OpenApiParameter("team", str, description="Only this team's services."),
            OpenApiParameter(
                "format",
                str,
                enum=["json", "csv"],
                description="csv: one row per figure (also chosen by Accept: text/csv).",
            ),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
        },
        description="The PRD's outcomes over a period: MTTR by how alerts ended (with the "
        "same-length period before playbooks were enabled), remediation coverage, alert "
        "accuracy, refused requests and agent memory, each against its target, and the same "
        "figures per day (periods up to 31 days) or week. Definitions: docs/outcomes.md.",
    )
    def get(self, request):
        period = period_from(request.query_params, form=OutcomesIn, start="from", end="to")
        report = series.outcomes(period)
        if not wants_csv(request):
            return Response(report)
        name = f"medic-outcomes-{period.since:%Y%m%d}-{period.until:%Y%m%d}.csv"
        response = HttpResponse(csvout.render(report), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
