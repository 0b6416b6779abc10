"""v2 API: approve / decline a parked execution, list approval requests, start a playbook."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from medic.errors import InvalidInput
from medic.models import actor_label
from medic.pagination import CursorPage, NumberedPage
from remediation.approvals import hooks, services, triggers
from remediation.approvals.models import (
    ApprovalRequest,
    ApprovalState,
    Channel,
    HookFormat,
    InboundHook,
)
from remediation.playbooks import selectors as playbook_selectors
from remediation.playbooks.api import ExecutionDetailOut

_ID = OpenApiParameter("execution_id", int, OpenApiParameter.PATH, description="Execution id.")


class ApprovalOut(serializers.ModelSerializer):
    execution = serializers.IntegerField(source="execution_id")
    playbook = serializers.CharField(source="execution.playbook.name")
    version = serializers.IntegerField(source="execution.version.version")
    service = serializers.CharField(source="execution.service_name")
    alert = serializers.IntegerField(source="execution.alert_id", allow_null=True)
    execution_state = serializers.CharField(source="execution.state")

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "execution",
            "playbook",
            "version",
            "service",
            "alert",
            "execution_state",
            "mode",
            "state",
            "why",
            "requested_by",
            "four_eyes",
            "approvers_needed",
            "approvals",
            "created_at",
            "deadline_at",
            "decided_at",
            "decided_by",
            "channel",
            "reason",
        ]


class DecisionIn(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class ExecuteIn(serializers.Serializer):
    service = serializers.CharField(max_length=255)
    variables = serializers.DictField(required=False, default=dict)
    dry_run = serializers.BooleanField(required=False, default=False)


class ApprovalList(APIView):
    @extend_schema(
        operation_id="approvals_list",
        parameters=[
            OpenApiParameter(
                "state", str, enum=ApprovalState.values, description="Default: pending."
            ),
            OpenApiParameter("service", str, description="Service heartbeat name."),
        ],
        responses=ApprovalOut(many=True),
    )
    def get(self, request):
        state = request.query_params.get("state", ApprovalState.PENDING)
        if state not in ApprovalState.values:  # "" too: a blank filter is not the default
            raise InvalidInput(fields={"state": [f"One of {', '.join(ApprovalState.values)}."]})
        qs = ApprovalRequest.objects.filter(state=state).select_related(
            "execution", "execution__playbook", "execution__version"
        )
        if request.query_params.get("service"):
            qs = qs.filter(execution__service_name=request.query_params["service"])
        paginator = CursorPage()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ApprovalOut(page, many=True).data)


class _Decide(APIView):
    required_scope = "write"
    approve = True

    def post(self, request, execution_id: int):
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.approval_decide(
            execution_id=execution_id,
            actor=actor_label(request.auth),
            approve=self.approve,
            channel=Channel.API,
            reason=data.validated_data["reason"],
        )
        approval.refresh_from_db()
        return Response(ApprovalOut(approval).data)


class ExecutionApprove(_Decide):
    approve = True

    @extend_schema(
        operation_id="executions_approve",
        parameters=[_ID],
        request=DecisionIn,
        responses=ApprovalOut,
        description="Approves a run waiting in pending_approval; it starts at once (or, with "
        "`approvers: 2`, when a second, different approver approves). 409 "
        "`approval_already_decided` names who decided; 403 `four_eyes` when the requester "
        "approves their own run.",
    )
    def post(self, request, execution_id: int):
        return super().post(request, execution_id)


class ExecutionDecline(_Decide):
    approve = False

    @extend_schema(
        operation_id="executions_decline",
        parameters=[_ID],
        request=DecisionIn,
        responses=ApprovalOut,
        description="Declines a run waiting in pending_approval: it is cancelled, nothing runs.",
    )
    def post(self, request, execution_id: int):
        return super().post(request, execution_id)


class PlaybookExecute(APIView):
    required_scope = "write"

    @extend_schema(
        operation_id="playbooks_execute",
        parameters=[
            OpenApiParameter(
                "name", str, OpenApiParameter.PATH, description="Playbook id or name."
            ),
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="The same key twice (same caller) returns the first execution.",
            ),
        ],
        request=ExecuteIn,
        responses={201: ExecutionDetailOut, 200: ExecutionDetailOut},
        description="Starts the playbook for a service: 201 with the execution (state "
        "`pending_approval` when the playbook needs approval, `running` otherwise). A repeated "
        "Idempotency-Key answers 200 with the first execution. 409 when remediation is stopped, "
        "a run is already open, a circuit breaker is open or a limit is reached. `dry_run` "
        "records what each step would do and calls nothing.",
    )
    def post(self, request, name: str):
        data = ExecuteIn(data=request.data)
        data.is_valid(raise_exception=True)
        started = triggers.playbook_execute(
            playbook=name,
            service=data.validated_data["service"],
            variables=data.validated_data["variables"],
            dry_run=data.validated_data["dry_run"],
            actor=actor_label(request.auth),
            channel=Channel.API,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        body = ExecutionDetailOut(playbook_selectors.execution_get(started.execution.pk)).data
        code = status.HTTP_200_OK if started.replayed else status.HTTP_201_CREATED
        response = Response(body, status=code)
        if started.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


# --- Inbound webhooks -------------------------------------------------------------------------


class HookIn(serializers.Serializer):
    name = serializers.RegexField(r"^[a-z0-9][a-z0-9\-_.]{0,99}$")
    playbook = serializers.CharField(max_length=100, help_text="Playbook id or name.")
    format = serializers.ChoiceField(choices=HookFormat.choices, default=HookFormat.GENERIC)
    mapping = serializers.DictField(required=False, default=dict)


class HookOut(serializers.ModelSerializer):
    playbook = serializers.CharField(source="playbook.name")

    class Meta:
        model = InboundHook
        fields = [
            "id",
            "name",
            "playbook",
            "format",
            "mapping",
            "enabled",
            "created_by",
            "created_at",
            "last_used_at",
        ]


class HookList(APIView):
    @property
    def required_scope(self) -> str | None:
        return "write" if self.request.method == "POST" else None

    @extend_schema(operation_id="hooks_list", responses=HookOut(many=True))
    def get(self, request):
        paginator = NumberedPage()
        page = paginator.paginate_queryset(
            InboundHook.objects.select_related("playbook"), request, view=self
        )
        return paginator.get_paginated_response(HookOut(page, many=True).data)

    @extend_schema(
        operation_id="hooks_create",
        request=HookIn,
        responses={201: HookOut},
        description="Creates an inbound webhook bound to one playbook. The answer carries the "
        "URL (with its secret token) and the HMAC-SHA256 signing secret: both are shown once.",
    )
    def post(self, request):
        data = HookIn(data=request.data)
        data.is_valid(raise_exception=True)
        created = hooks.hook_create(actor=actor_label(request.auth), **data.validated_data)
        body = HookOut(created.hook).data
        body["url"] = f"{settings.MEDIC_BASE_URL}/hooks/{created.token}"
        body["signing_secret"] = created.signing_secret
        return Response(body, status=status.HTTP_201_CREATED)


class HookReceive(APIView):
    """Called by other systems: the token in the URL and the signature are the credentials."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []

    @extend_schema(
        operation_id="hooks_receive",
        request={"application/json": {"type": "object"}},
        responses={202: OpenApiTypes.OBJECT},
        description="Signed with X-Medic-Timestamp and X-Medic-Signature (v1=HMAC-SHA256 of "
        "'<timestamp>.<body>'). 202 lists the executions started and the services refused.",
    )
    def post(self, request, token: str):
        result = hooks.hook_receive(
            token=token,
            timestamp=request.headers.get("X-Medic-Timestamp", ""),
            signature=request.headers.get("X-Medic-Signature", ""),
            body=request.body,
        )
        return Response(result, status=status.HTTP_202_ACCEPTED)
