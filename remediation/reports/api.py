"""``GET /v2/reports/success-metrics``: the PRD's success metrics over a period (read scope)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from medic.errors import MedicError
from remediation.reports import selectors

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


def period_from(params, *, now=None) -> selectors.Period:
    """A Period from since/until/team (until defaults to now, since to 30 days before until);
    raises InvalidPeriod with the fields at fault."""
    unknown = sorted(set(params) - set(PeriodIn().fields))
    data = PeriodIn(data={k: v for k, v in params.items() if k in PeriodIn().fields})
    errors = {name: ["Unknown parameter."] for name in unknown}
    if not data.is_valid():
        errors.update({name: [str(m) for m in msgs] for name, msgs in data.errors.items()})
    if errors:
        raise InvalidPeriod(fields=errors)
    v = data.validated_data
    until = v.get("until") or now or timezone.now()
    since = v.get("since") or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise InvalidPeriod(fields={"until": ["Must be later than since."]})
    if until - since > timedelta(days=MAX_DAYS):
        raise InvalidPeriod(fields={"since": [f"The period is at most {MAX_DAYS} days."]})
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
        description="MTTR by how alerts ended (with the same-length period before playbooks "
        "were enabled), remediation coverage, alert accuracy and refused requests, each against "
        "its PRD target. Definitions: docs/success-metrics.md.",
    )
    def get(self, request):
        return Response(selectors.success_metrics(period_from(request.query_params)))
